/**
 * Retrying database writes through an outage: which errors are worth waiting out, and the backoff between tries.
 *
 * A Postgres that restarts (failover, upgrade, OOM kill) refuses connections for seconds to minutes and kills the
 * sessions it had. The runner keeps its parsed batch and tries again, up to a deadline; past it, it gives up with
 * "retry me" (exit 75) so Kubernetes (or local mode) runs the shard again later. Nothing is lost either way: a file
 * whose batch did not commit is simply analysed again on the next run.
 */

/** SQLSTATEs that say "the server or the session went away, try again", not "your statement is wrong". */
const TRANSIENT_SQLSTATES = new Set([
  '57P01', // admin_shutdown: the server is shutting down
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now: starting up or in recovery
  '53300', // too_many_connections: someone else took the slot; it frees up
  '40001', // serialization_failure
  '40P01', // deadlock_detected
]);

const TRANSIENT_NET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND']);

/** Messages node-postgres and pg-pool throw, without a code, when a connection dies or cannot be made in time. */
const TRANSIENT_MESSAGES = [
  /connection terminated/i,
  /not queryable/i,
  /timeout exceeded when trying to connect/i,
  /the database system is (starting up|shutting down|in recovery mode)/i,
  /terminating connection due to administrator command/i,
];

export function isTransientDatabaseError(e: unknown): boolean {
  if (e instanceof AggregateError) return e.errors.some(isTransientDatabaseError);
  const err = e as { code?: unknown; message?: unknown; transient?: unknown };
  if (err?.transient === true) return true;
  const code = typeof err?.code === 'string' ? err.code : '';
  if (TRANSIENT_SQLSTATES.has(code) || code.startsWith('08') || TRANSIENT_NET_CODES.has(code)) return true;
  const message = typeof err?.message === 'string' ? err.message : '';
  return TRANSIENT_MESSAGES.some((re) => re.test(message));
}

export interface RetryPolicy {
  /** Give up once this much time has passed since the first failure. */
  deadlineMs: number;
  /** First delay; each next one doubles, up to maxDelayMs. */
  initialDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { deadlineMs: 120_000, initialDelayMs: 250, maxDelayMs: 5_000 };

/** The delays between tries for a policy: [250, 500, 1000, ...] capped, until their sum reaches the deadline. */
export function backoffDelays(policy: RetryPolicy): number[] {
  const delays: number[] = [];
  let total = 0;
  let next = policy.initialDelayMs;
  while (total + next <= policy.deadlineMs) {
    delays.push(next);
    total += next;
    next = Math.min(policy.maxDelayMs, next * 2);
  }
  return delays;
}

/** Thrown when the outage outlasted the deadline: the shard should be retried later (exit 75). */
export class DatabaseUnavailableError extends Error {
  readonly transient = true;
  constructor(readonly attempts: number, readonly lastError: unknown) {
    super(`the database stayed unreachable through ${attempts} attempts: ${lastError instanceof Error ? lastError.message : String(lastError)}`);
    this.name = 'DatabaseUnavailableError';
  }
}

export interface RetryHooks {
  sleep?: (ms: number) => Promise<void>;
  /** Called before each wait, for the log. */
  onRetry?: (attempt: number, delayMs: number, error: unknown) => void;
  /** Stops waiting early (shutdown): the last error is thrown as is. */
  stopped?: () => boolean;
}

/** Runs `fn`, retrying transient database errors with backoff; other errors are thrown at once. */
export async function withRetry<T>(fn: () => Promise<T>, policy: RetryPolicy = DEFAULT_RETRY, hooks: RetryHooks = {}): Promise<T> {
  const sleep = hooks.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const delays = backoffDelays(policy);
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if (!isTransientDatabaseError(e) || e instanceof DatabaseUnavailableError) throw e;
      const delay = delays[attempt - 1];
      if (delay === undefined) throw new DatabaseUnavailableError(attempt, e);
      if (hooks.stopped?.()) throw e;
      hooks.onRetry?.(attempt, delay, e);
      await sleep(delay);
    }
  }
}
