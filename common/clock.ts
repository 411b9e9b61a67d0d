/** Time, injected: everything that reads the time or waits takes a Clock, so tests drive it by hand and never sleep. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  /** `unref`: the timer alone does not keep the process alive (a periodic log line must not hold up an exit). */
  setInterval(fn: () => void, ms: number, options?: { unref?: boolean }): unknown;
  clearInterval(handle: unknown): void;
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
  setInterval: (fn, ms, options) => {
    const timer = setInterval(fn, ms);
    if (options?.unref) timer.unref();
    return timer;
  },
  clearInterval: (handle) => clearInterval(handle as NodeJS.Timeout),
};

/**
 * Waits `ms` on `clock`, or until `signal` aborts, whichever comes first. Never rejects: a caller woken by the signal
 * looks at it (or at its own "stopping" state) to tell the two apart.
 */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const wake = () => {
      clock.clearTimeout(timer);
      signal?.removeEventListener('abort', wake);
      resolve();
    };
    const timer = clock.setTimeout(wake, ms);
    signal?.addEventListener('abort', wake, { once: true });
  });
}
