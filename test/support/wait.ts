/**
 * Waiting for what a test expects, instead of sleeping and hoping it happened.
 */

/**
 * Resolves once every promise callback queued so far, and every one those queue, has run. For code under test that
 * does no I/O (fakes, a ManualClock): after it, whatever was going to happen has happened, and what has not will not.
 */
export function settled(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
