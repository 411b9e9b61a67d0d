/**
 * Server-side TCP keepalives for a session: how soon the server gives up on a client that vanished without closing its
 * socket (a lost node, a partition). The OS defaults take two hours, during which the dead client's backend holds a
 * slot that the budget has already handed out again. Set on every runner connection (pool.ts) and on the ledger's
 * probes (admission.ts); on a Unix socket the server ignores them.
 */

export interface ServerKeepalive {
  idleSeconds: number;
  intervalSeconds: number;
  count: number;
  /** tcp_user_timeout: data the server sent that is never acknowledged. */
  userTimeoutMs: number;
}

/** Idle 10 s, then 3 probes 5 s apart, and 25 s for unacknowledged data: a silent peer is given up within 30 s. */
export const DEFAULT_SERVER_KEEPALIVE: ServerKeepalive = {
  idleSeconds: 10,
  intervalSeconds: 5,
  count: 3,
  userTimeoutMs: 25_000,
};

/** Every setting is the session's own (is_local false) and any role may set it. */
export const KEEPALIVE_SQL = `SELECT set_config('tcp_keepalives_idle', $1, false), set_config('tcp_keepalives_interval', $2, false),
  set_config('tcp_keepalives_count', $3, false), set_config('tcp_user_timeout', $4, false)`;

export function keepaliveParams(k: ServerKeepalive): string[] {
  return [`${k.idleSeconds}`, `${k.intervalSeconds}`, `${k.count}`, `${k.userTimeoutMs}`];
}
