import { describe, expect, it } from 'vitest';
import { progressDisplay, type ProgressState } from '../../../job-runner/local/progress.js';
import type { Logger } from '../../../common/log.js';
import { ManualClock } from '../../support/manual-clock.js';

describe('progressDisplay off a terminal', () => {
  it('logs the first state, then at most one line per interval on its clock, and the last state on stop', () => {
    const clock = new ManualClock();
    const lines: number[] = [];
    const log = { info: (state: ProgressState) => lines.push(state.settled) } as unknown as Logger;
    const display = progressDisplay(log, { tty: false, logEveryMs: 5_000, clock });
    const state = (settled: number): ProgressState => ({
      settled,
      total: 10,
      ok: settled,
      failed: 0,
      runners: 1,
      connections: 2,
      budget: 7,
    });
    display.update(state(1));
    clock.advance(4_999);
    display.update(state(2));
    clock.advance(1);
    display.update(state(3));
    display.update(state(4));
    display.stop();
    expect(lines).toEqual([1, 3, 4]);
  });
});
