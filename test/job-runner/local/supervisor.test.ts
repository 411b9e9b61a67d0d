import type { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  afterRunnerExit,
  ROOM_RECHECK_MS,
  Supervisor,
  type AfterExit,
  type RunnerExit,
  type SupervisorOptions,
} from '../../../job-runner/local/supervisor.js';
import { createLogger } from '../../../common/log.js';
import { ManualClock } from '../../support/manual-clock.js';
import { settled } from '../../support/wait.js';
import { TransientError } from '../../../contract/error-kinds.js';
import { ADMITTED_MESSAGE } from '../../../contract/run-shard-command.js';

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

/** A runner process that exits when the test says so. */
class FakeRunner extends EventEmitter {
  readonly stdout = new PassThrough();
  readonly signals: NodeJS.Signals[] = [];

  constructor(
    readonly shard: number,
    readonly attempt: number,
  ) {
    super();
  }

  kill(signal: NodeJS.Signals): boolean {
    this.signals.push(signal);
    return true;
  }

  /** What run-shard says over its IPC channel once the server ledger admitted it. */
  admit(): void {
    this.emit('message', ADMITTED_MESSAGE);
  }

  exit(code: number): void {
    this.stdout.end();
    this.emit('close', code, null);
  }
}

function supervise(
  shards: number[],
  options: Pick<SupervisorOptions, 'parallel' | 'runnersAllowed'> = { parallel: 1 },
) {
  const clock = new ManualClock();
  const runners: FakeRunner[] = [];
  const supervisor = new Supervisor({
    shards,
    ...options,
    maxAttempts: 3,
    spawnRunner: (shard, _slot, attempt) => {
      const runner = new FakeRunner(shard, attempt);
      runners.push(runner);
      return runner as unknown as ChildProcess;
    },
    log: createLogger({ level: 'silent' }),
    clock,
  });
  return { clock, runners, supervisor, done: supervisor.run() };
}

describe('Supervisor', () => {
  it('runs a shard again once its backoff has passed on its clock, and not before', async () => {
    const { clock, runners, done } = supervise([0]);
    await settled();
    runners[0]!.exit(75);
    await settled();
    clock.advance(999);
    await settled();
    expect(runners).toHaveLength(1);
    clock.advance(1);
    await settled();
    expect(runners.map((r) => r.attempt)).toEqual([1, 2]);
    runners[1]!.exit(0);
    expect(await done).toMatchObject({ completed: [0], retries: 1, stoppedBecause: null });
  });

  it('starts a next runner only while the runners fit beside the others, and fills its slots again when they leave', async () => {
    let allowed = 1;
    const { clock, runners, done } = supervise([0, 1, 2, 3, 4], { parallel: 3, runnersAllowed: () => allowed });
    const running = () => runners.filter((r) => r.listenerCount('close') > 0).map((r) => r.shard);
    await settled();
    expect(running()).toEqual([0]);
    runners[0]!.admit();
    await settled();
    expect(running()).toEqual([0]);
    // Others left: the waiting slots see it at their next look, without a runner having to exit first.
    allowed = 3;
    clock.advance(ROOM_RECHECK_MS);
    await settled();
    expect(running()).toEqual([0, 1]);
    runners[1]!.admit();
    await settled();
    expect(running()).toEqual([0, 1, 2]);
    runners[2]!.admit();
    // Others came back: nobody running is stopped, but a slot whose runner ends waits until the run is within bounds.
    allowed = 1;
    runners[1]!.exit(0);
    await settled();
    expect(running()).toEqual([0, 2]);
    runners[0]!.exit(0);
    await settled();
    expect(running()).toEqual([2]);
    clock.advance(ROOM_RECHECK_MS);
    await settled();
    expect(running()).toEqual([2]);
    // One runner may always run: with none left, a waiting slot starts at once.
    runners[2]!.exit(0);
    await settled();
    expect(running()).toEqual([3]);
    runners[3]!.admit();
    runners[3]!.exit(0);
    await settled();
    runners[4]!.exit(0);
    expect(await done).toMatchObject({ completed: [1, 0, 2, 3, 4], stoppedBecause: null });
  });

  it('starts no runner while one it started is still waiting for room, however many fit', async () => {
    const { clock, runners, done } = supervise([0, 1, 2], { parallel: 3, runnersAllowed: () => 3 });
    const running = () => runners.filter((r) => r.listenerCount('close') > 0).map((r) => r.shard);
    await settled();
    expect(running()).toEqual([0]);
    clock.advance(10 * ROOM_RECHECK_MS);
    await settled();
    expect(running()).toEqual([0]);
    runners[0]!.admit();
    await settled();
    expect(running()).toEqual([0, 1]);
    // A runner that ends without ever being admitted (it failed at its start) no longer holds the others back.
    runners[1]!.exit(75);
    await settled();
    expect(running()).toEqual([0, 2]);
    runners[2]!.admit();
    runners[0]!.exit(0);
    runners[2]!.exit(0);
    clock.advance(1_000); // shard 1's backoff
    await settled();
    runners[3]!.exit(0);
    expect(await done).toMatchObject({ completed: [0, 2, 1], retries: 1, stoppedBecause: null });
  });

  it('a slot waiting for its turn stops at once with the run', async () => {
    const { runners, supervisor, done } = supervise([0, 1], { parallel: 2, runnersAllowed: () => 1 });
    await settled();
    expect(runners).toHaveLength(1);
    const interrupted = new TransientError('interrupted');
    supervisor.stop(interrupted);
    runners[0]!.exit(75);
    expect(await done).toMatchObject({ completed: [], stoppedBecause: interrupted });
    expect(runners).toHaveLength(1);
  });

  it('stops a slot that waits out a backoff at once, without starting the shard again', async () => {
    const { runners, supervisor, done } = supervise([0]);
    await settled();
    runners[0]!.exit(75);
    await settled();
    const interrupted = new TransientError('interrupted');
    supervisor.stop(interrupted);
    expect(await done).toMatchObject({ completed: [], retries: 1, stoppedBecause: interrupted });
    expect(runners).toHaveLength(1);
  });
});
