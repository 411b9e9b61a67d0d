import { describe, expect, it } from 'vitest';
import { RunMonitor } from '../../../job-runner/local/monitor.js';
import type { RunnerPool } from '../../../job-runner/pool/pool.js';
import { ManualClock } from '../../support/manual-clock.js';
import { settled } from '../../support/wait.js';

/** A control pool that answers the next of `backends` to each count of the run's connections. */
function controlAnswering(backends: number[]): RunnerPool {
  const counts = { total: '0', ok: '0', failed: '0', skipped: '0', pending: '0' };
  const client = {
    query: async (sql: string) => ({
      rows: [sql.includes('pg_stat_activity') ? { n: backends.shift() ?? 0 } : counts],
    }),
  };
  return { use: async (fn: (c: typeof client) => Promise<unknown>) => fn(client) } as unknown as RunnerPool;
}

describe('RunMonitor', () => {
  it("samples the run's connections every sampleMs on its clock, keeping the peak", async () => {
    const clock = new ManualClock();
    const monitor = new RunMonitor(controlAnswering([2, 5, 3]), 1, { sampleMs: 100, countsMs: 60_000, clock });
    monitor.start();
    await settled();
    expect({ samples: monitor.samples, current: monitor.current }).toEqual({ samples: 1, current: 2 });
    clock.advance(99);
    await settled();
    expect(monitor.samples).toBe(1);
    clock.advance(1);
    await settled();
    clock.advance(100);
    await settled();
    expect({ samples: monitor.samples, current: monitor.current, peak: monitor.peak }).toEqual({
      samples: 3,
      current: 3,
      peak: 5,
    });
    await monitor.stop();
  });

  it('waits until the backends of a finished runner are gone, polling on its clock', async () => {
    const clock = new ManualClock();
    const monitor = new RunMonitor(controlAnswering([2, 1, 0]), 1, { clock });
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
