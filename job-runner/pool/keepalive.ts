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

/**
 * The session settings a runner connection sets after connecting, as one statement: server keepalives (keepalive.ts)
 * and client_connection_check_interval, which exists from PostgreSQL 14 on (older servers skip it). Undefined when
 * there is nothing to set. Every setting is the session's own (is_local false) and any role may set it.
 */
export function sessionSettings(
  keepalive: ServerKeepalive | false,
  connectionCheckIntervalMs: number,
): { text: string; values: string[] } | undefined {
  const parts: string[] = [];
  const values: string[] = [];
  if (keepalive) {
    for (const [name, value] of [
      ['tcp_keepalives_idle', keepalive.idleSeconds],
      ['tcp_keepalives_interval', keepalive.intervalSeconds],
      ['tcp_keepalives_count', keepalive.count],
      ['tcp_user_timeout', keepalive.userTimeoutMs],
    ] as const) {
      values.push(String(value));
      parts.push(`set_config('${name}', $${values.length}, false)`);
    }
  }
  if (connectionCheckIntervalMs > 0) {
    values.push(`${connectionCheckIntervalMs}ms`);
    parts.push(
      `CASE WHEN current_setting('server_version_num')::int >= 140000 THEN set_config('client_connection_check_interval', $${values.length}, false) END`,
    );
  }
  return parts.length === 0 ? undefined : { text: `SELECT ${parts.join(', ')}`, values };
}
