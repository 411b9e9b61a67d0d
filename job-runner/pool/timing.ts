/**
 * The pool's clock arithmetic, kept pure so that tests give the random source and never wait.
 */
import { backoffDelay, equalJitter, type BackoffPolicy } from '../../common/backoff.js';

/**
 * When a connection opened at `openedAt` should retire: `lifetimeMs` spread uniformly over ±`jitter` of itself.
 * Without the spread, every connection a pod opened in its first second would also retire in the same second, and
 * reconnect together: a burst of authentication work on the server (or PgBouncer) every lifetime. 0 = never retire.
 */
export function retirementTime(openedAt: number, lifetimeMs: number, jitter: number, random: () => number): number {
  if (lifetimeMs <= 0) return Number.POSITIVE_INFINITY;
  const spread = 1 - jitter + 2 * jitter * random();
  return openedAt + Math.round(lifetimeMs * spread);
}

export const DATABASE_BACKOFF: BackoffPolicy = { baseMs: 100, maxMs: 5_000 };

/**
 * Delay before retry number `attempt` (0-based) of something the database refused (a connection, a batch write):
 * exponential from 100 ms up to 5 s, with equal jitter so that the runners of a whole corpus do not knock on a
 * restarted server in lockstep.
 */
export function databaseRetryDelay(attempt: number, random: () => number): number {
  return backoffDelay(attempt, DATABASE_BACKOFF, equalJitter(random));
}

export type ValidationMode = 'always' | 'bypass-window' | 'never';

/** Does a connection last released at `lastUsedAt` need a ping before it is handed out at `now`? */
export function needsPing(mode: ValidationMode, lastUsedAt: number, now: number, bypassWindowMs: number): boolean {
  switch (mode) {
    case 'always':
      return true;
    case 'never':
      return false;
    case 'bypass-window':
      return now - lastUsedAt > bypassWindowMs;
  }
}
