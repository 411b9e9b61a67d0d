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

/** Polls `condition` until it holds; throws naming `what` once `timeoutMs` has passed without it. */
export async function waitUntil(what: string, condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
