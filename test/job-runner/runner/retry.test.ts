import { describe, expect, it } from 'vitest';
import { DatabaseUnavailableError } from '../../../job-runner/pool/errors.js';
import { withRetry, type RetryOptions } from '../../../job-runner/runner/retry.js';
import { ManualClock } from '../../support/manual-clock.js';

function errorWith(fields: Record<string, unknown>): Error {
  return Object.assign(new Error(String(fields.message ?? 'boom')), fields);
}

/** A clock that moves only when the code under test sleeps, by as long as it asked: each timer fires at once. */
class SleepThroughClock extends ManualClock {
  override setTimeout(fn: () => void, ms: number): unknown {
    const timer = super.setTimeout(fn, ms);
    queueMicrotask(() => this.advance(ms));
    return timer;
  }
}

function fakeTime(): Required<Pick<RetryOptions, 'clock' | 'random'>> & { slept: number[] } {
  const clock = new SleepThroughClock();
  return { slept: clock.delays, clock, random: () => 1 };
}

describe('withRetry', () => {
  it('waits out a database that refuses connections, then returns the result', async () => {
    const time = fakeTime();
    let calls = 0;
    const result = await withRetry(
      async () => {
        if (++calls < 4) throw errorWith({ code: 'ECONNREFUSED' });
        return 'committed';
      },
      { ...time, deadlineMs: 60_000 },
    );
    // The pool's backoff: 100, 200, 400 ms (full step with random = 1).
    expect({ result, calls, slept: time.slept }).toEqual({ result: 'committed', calls: 4, slept: [100, 200, 400] });
  });

  it('gives up at the deadline with an error that means "retry me later"', async () => {
    const time = fakeTime();
    const attempt = withRetry(
      async () => {
        throw errorWith({ code: '57P03' });
      },
      { ...time, deadlineMs: 1_000 },
    );
    await expect(attempt).rejects.toBeInstanceOf(DatabaseUnavailableError);
    expect(time.slept).toEqual([100, 200, 400, 300]);
  });

  it('throws a permanent error at once', async () => {
    const time = fakeTime();
    let calls = 0;
    const attempt = withRetry(async () => {
      calls++;
      throw errorWith({ code: '23514', message: 'violates check' });
    }, time);
    await expect(attempt).rejects.toThrow('violates check');
    expect(calls).toBe(1);
  });

  it('stops retrying once shutdown has begun', async () => {
    const time = fakeTime();
    let stopping = false;
    let calls = 0;
    const attempt = withRetry(
      async () => {
        calls++;
        stopping = true;
        throw errorWith({ code: 'ECONNRESET', message: 'reset' });
      },
      { ...time, stopped: () => stopping },
    );
    await expect(attempt).rejects.toThrow('reset');
    expect(calls).toBe(1);
  });
});
