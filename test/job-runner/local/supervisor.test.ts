import { describe, expect, it } from 'vitest';
import { afterRunnerExit, type AfterExit, type RunnerExit } from '../../../job-runner/local/supervisor.js';

describe('afterRunnerExit', () => {
  it.each<[string, RunnerExit, number, AfterExit]>([
    ['done', { code: 0, signal: null }, 1, { action: 'done' }],
    ['retry me (75), first attempt: back off 1 s', { code: 75, signal: null }, 1, { action: 'retry', delayMs: 1000 }],
    ['retry me (75), third attempt: back off 4 s', { code: 75, signal: null }, 3, { action: 'retry', delayMs: 4000 }],
    ['killed (OOM, SIGKILL): run it again', { code: null, signal: 'SIGKILL' }, 1, { action: 'retry', delayMs: 1000 }],
    ['a bug (1): run it again, bounded', { code: 1, signal: null }, 2, { action: 'retry', delayMs: 2000 }],
    [
      'bad configuration (64): stop the whole run',
      { code: 64, signal: null },
      1,
      {
        action: 'fail-run',
        reason: 'a runner exited with code 64 (bad arguments or configuration): retrying cannot help',
      },
    ],
    [
      'out of attempts',
      { code: 75, signal: null },
      5,
      { action: 'give-up', reason: 'runner exited with code 75 on each of 5 attempts' },
    ],
  ])('%s', (_name, exit, attempt, expected) => {
    expect(afterRunnerExit(exit, attempt, 5)).toEqual(expected);
  });

  it('caps the backoff', () => {
    expect(afterRunnerExit({ code: 75, signal: null }, 9, 20)).toEqual({ action: 'retry', delayMs: 15_000 });
  });
});
