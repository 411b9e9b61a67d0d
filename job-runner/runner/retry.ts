import { realClock, sleep, type Clock } from '../../common/clock.js';
import { DatabaseUnavailableError, isTransientDatabaseError } from '../pool/errors.js';
import { databaseRetryDelay } from '../pool/timing.js';

/**
 * Retrying a batch write through a database outage.
 *
 * A Postgres that restarts (failover, upgrade, OOM kill) refuses connections for seconds to minutes and kills the
 * sessions it had. The runner keeps its parsed batch and tries again (the pool's own backoff, with jitter so that a
 * whole corpus of runners does not knock in lockstep), up to a deadline; past it, it gives up with "retry me"
 * (exit 75) so Kubernetes or local mode runs the shard again later. Nothing is lost either way: a file whose batch
 * did not commit is analysed again on the next run.
 */

export interface RetryOptions {
  /** Give up once this much time has passed since the first try. Default 2 minutes. */
  deadlineMs?: number;
  /** Injected for tests. */
  clock?: Clock;
  random?: () => number;
  /** Called before each wait, for the log. */
  onRetry?: (attempt: number, delayMs: number, error: unknown) => void;
  /** Shutdown: stop retrying and throw the last error at once. */
  stopped?: () => boolean;
}

export const DEFAULT_WRITE_DEADLINE_MS = 120_000;

/** Runs `fn`, retrying transient database errors with backoff until the deadline; other errors are thrown at once. */
export async function withRetry<T>(fn: () => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const clock = options.clock ?? realClock;
  const deadlineMs = options.deadlineMs ?? DEFAULT_WRITE_DEADLINE_MS;
  const started = clock.now();
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if (!isTransientDatabaseError(e) || options.stopped?.()) throw e;
      const waited = clock.now() - started;
      if (waited >= deadlineMs) throw new DatabaseUnavailableError(attempt, waited, e);
      const delay = Math.min(databaseRetryDelay(attempt - 1, options.random ?? Math.random), deadlineMs - waited);
      options.onRetry?.(attempt, delay, e);
      await sleep(clock, delay);
    }
  }
}
