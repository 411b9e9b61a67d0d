import { describe, expect, it } from 'vitest';
import type { SessionRow } from '../../../contract/ledger.js';
import { RunMonitor } from '../../../job-runner/local/monitor.js';
import { isRunsOwn } from '../../../job-runner/local/run-names.js';
import type { RunnerPool } from '../../../job-runner/pool/pool.js';
import { ManualClock } from '../../support/manual-clock.js';
import { settled } from '../../support/wait.js';

const NAMES = { controlName: 'mco local/1 /music h-42', runId: 'local42' };
const mine = isRunsOwn(NAMES);

let nextPid = 1000;
function session(applicationName: string | null, backendType: string | null = 'client backend'): SessionRow {
  return {
    pid: nextPid++,
    has_database: true,
    has_role: true,
    application_name: applicationName,
    backend_type: backendType,
  };
}
/** `n` connections of this run's runner in `slot`, claiming 2 each. */
function ourRunner(slot: number, n: number, shard = slot): SessionRow[] {
  return Array.from({ length: n }, () => session(`mco run/2 /music s${shard} local42-r${slot}`));
}
/** `n` sessions of another application. */
function foreign(n: number, backendType: string | null = 'client backend'): SessionRow[] {
  return Array.from({ length: n }, () => session('psql', backendType));
}

/** A control pool that answers the next of `pictures` to each look at pg_stat_activity (the last one thereafter). */
function controlAnswering(pictures: SessionRow[][], gone: number[] = []): RunnerPool {
  const counts = { total: '0', ok: '0', failed: '0', skipped: '0', pending: '0' };
  const client = {
    query: async (sql: string) => {
      if (sql.includes('LIKE')) return { rows: [{ n: gone.shift() ?? 0 }] };
      if (sql.includes('pg_stat_activity')) return { rows: pictures.length > 1 ? pictures.shift()! : pictures[0]! };
      return { rows: [counts] };
    },
  };
  return { use: async (fn: (c: typeof client) => Promise<unknown>) => fn(client) } as unknown as RunnerPool;
}

describe('isRunsOwn', () => {
  it.each<[string, string, boolean]>([
    ['its control connection', NAMES.controlName, true],
    ['a runner of one of its slots, any shard', 'mco run/2 /music s17 local42-r3', true],
    ['a runner whose corpus name was cut', 'mco run/2 /a-very-long-~ s17 local42-r3', true],
    ["another run's runner on this machine", 'mco run/2 /music s1 local420-r3', false],
    ["another run's control connection", 'mco local/1 /music h-43', false],
    ['a pod of the operator', 'mco run/2 ns/music s1 music-run-1-x7k2q', false],
    ['a scan under a name like a runner', 'mco scan/1 /music local42-r3', false],
    ['another application', 'psql', false],
  ])('%s: %s', (_name, applicationName, expected) => {
    expect(mine(applicationName)).toBe(expected);
  });
});

describe('RunMonitor', () => {
  it("samples the run's connections and everyone else's every sampleMs on its clock, keeping the peaks", async () => {
    const clock = new ManualClock();
    const control = controlAnswering([
      [...ourRunner(0, 1), ...foreign(2)],
      [...ourRunner(0, 2), ...ourRunner(1, 2), ...foreign(4), session('mco run/2 other s0 local7-r0')],
      [...ourRunner(1, 2), ...foreign(3)],
    ]);
    const monitor = new RunMonitor(control, 1, { mine, sampleMs: 100, countsMs: 60_000, clock });
    monitor.start();
    await settled();
    // The control connection (the reader, which the query leaves out) and the runner's one.
    expect({ samples: monitor.samples, current: monitor.current }).toEqual({ samples: 1, current: 2 });
    clock.advance(99);
    await settled();
    expect(monitor.samples).toBe(1);
    clock.advance(1);
    await settled();
    clock.advance(100);
    await settled();
    expect({
      samples: monitor.samples,
      current: monitor.current,
      peak: monitor.peak,
      foreign: monitor.foreign,
      // The other run's runner counts its claim, 2, in what others hold.
      others: monitor.others,
      exact: monitor.exact,
    }).toEqual({
      samples: 3,
      current: 3,
      peak: 5,
      foreign: { last: 3, peak: 4 },
      others: { last: 3, peak: 6 },
      exact: true,
    });
    await monitor.stop();
  });

  it('starts its peaks from what the run saw before it, and says when a look was an upper bound', async () => {
    const clock = new ManualClock();
    const monitor = new RunMonitor(controlAnswering([[...ourRunner(0, 2), ...foreign(1, null)]]), 1, {
      mine,
      start: { own: 1, others: 5, foreign: 5, exact: true },
      clock,
    });
    monitor.start();
    await settled();
    expect({ foreign: monitor.foreign, others: monitor.others, exact: monitor.exact }).toEqual({
      foreign: { last: 1, peak: 5 },
      others: { last: 1, peak: 5 },
      exact: false,
    });
    await monitor.stop();
  });

  it('waits until the backends of a finished runner are gone, polling on its clock', async () => {
    const clock = new ManualClock();
    const monitor = new RunMonitor(controlAnswering([[]], [2, 1, 0]), 1, { mine, clock });
    let gone = false;
    const waiting = monitor.waitUntilGone('r0').then(() => (gone = true));
    for (const _poll of [1, 2]) {
      await settled();
      expect(gone).toBe(false);
      clock.advance(20);
    }
    await waiting;
    expect(gone).toBe(true);
  });
});
