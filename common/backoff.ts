/**
 * Exponential backoff, the one formula behind every retry of the operator: the controller's work queue and informer
 * restarts, the runner's pool and batch writes, local mode's runner retries. Each caller keeps its own policy.
 */

export interface BackoffPolicy {
  /** The delay of attempt 0. */
  baseMs: number;
  /** No delay exceeds this. */
  maxMs: number;
}

/** Turns the exponential step of an attempt into the delay waited. */
export type Jitter = (stepMs: number) => number;

/** The step itself: for a lone caller (the controller, local mode's supervisor), with no crowd to spread out. */
export const noJitter: Jitter = (stepMs) => stepMs;

/**
 * "Equal jitter": between half and all of the step, from `random` (0 ≤ r ≤ 1), so that the runners of a whole corpus
 * do not knock on a restarted server in lockstep, and none retries much sooner than its step.
 */
export function equalJitter(random: () => number): Jitter {
  return (stepMs) => Math.round(stepMs / 2 + (stepMs / 2) * random());
}

/** The delay before retry number `attempt` (0-based): base·2^attempt, capped at max, then jittered. */
export function backoffDelay(attempt: number, policy: BackoffPolicy, jitter: Jitter = noJitter): number {
  // The exponent is bounded so that an absurd attempt number gives the cap, not Infinity × 0 = NaN for a base of 0.
  return jitter(Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(attempt, 30)));
}
