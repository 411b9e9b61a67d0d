import { describe, expect, it } from 'vitest';
import { backoffDelays, DatabaseUnavailableError, isTransientDatabaseError, withRetry } from '../../../job-runner/runner/retry.js';

function errorWith(fields: Record<string, unknown>): Error {
  return Object.assign(new Error(String(fields.message ?? 'boom')), fields);
}

describe('isTransientDatabaseError', () => {
  it.each<[string, unknown, boolean]>([
    ['connection refused (server down)', errorWith({ code: 'ECONNREFUSED' }), true],
    ['admin shutdown (server restarting)', errorWith({ code: '57P01' }), true],
    ['starting up', errorWith({ code: '57P03' }), true],
    ['connection exception class 08', errorWith({ code: '08006' }), true],
    ['node-postgres losing its socket', new Error('Connection terminated unexpectedly'), true],
    ['pg-pool connect timeout', new Error('timeout exceeded when trying to connect'), true],
    ['all addresses refused (AggregateError)', new AggregateError([errorWith({ code: 'ECONNREFUSED' })]), true],
    ['an error marked transient by the pool', errorWith({ transient: true }), true],
    ['a check constraint violation', errorWith({ code: '23514' }), false],
    ['a syntax error', errorWith({ code: '42601' }), false],
    ['a plain bug', new TypeError('x is undefined'), false],
  ])('%s → %s', (_name, error, transient) => {
    expect(isTransientDatabaseError(error)).toBe(transient);
  });
});

describe('backoffDelays', () => {
  it('doubles up to the cap and stops before the deadline', () => {
    expect(backoffDelays({ deadlineMs: 10_000, initialDelayMs: 500, maxDelayMs: 2_000 })).toEqual([500, 1000, 2000, 2000, 2000, 2000]);
  });
});

describe('withRetry', () => {
  const policy = { deadlineMs: 1_000, initialDelayMs: 100, maxDelayMs: 400 };

  it('waits out transient failures and returns the result', async () => {
    const slept: number[] = [];
    let calls = 0;
    const result = await withRetry(async () => {
      if (++calls < 3) throw errorWith({ code: 'ECONNREFUSED' });
      return 'committed';
    }, policy, { sleep: async (ms) => void slept.push(ms) });
    expect({ result, calls, slept }).toEqual({ result: 'committed', calls: 3, slept: [100, 200] });
  });

  it('gives up after the deadline with an error that means "retry me later"', async () => {
    const slept: number[] = [];
    const attempt = withRetry(async () => { throw errorWith({ code: '57P03' }); }, policy, { sleep: async (ms) => void slept.push(ms) });
    await expect(attempt).rejects.toBeInstanceOf(DatabaseUnavailableError);
    expect(slept).toEqual([100, 200, 400]);
  });

  it('throws a permanent error at once', async () => {
    let calls = 0;
    await expect(withRetry(async () => { calls++; throw errorWith({ code: '23514', message: 'violates check' }); }, policy, { sleep: async () => {} })).rejects.toThrow('violates check');
    expect(calls).toBe(1);
  });
});
