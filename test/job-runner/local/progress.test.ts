import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  formatDuration,
  formatRate,
  paceOf,
  progressDisplay,
  type ProgressState,
} from '../../../job-runner/local/progress.js';
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

/** A terminal that keeps what is drawn on it: cli-progress draws only on a TTY. */
class FakeTerminal extends Writable {
  readonly isTTY = true;
  readonly columns = 250;
  written = '';
  override _write(chunk: Buffer, _encoding: string, done: () => void): void {
    this.written += chunk.toString('utf8');
    done();
  }
}

const state = (settled: number, ok: number, failed: number, runners = 2): ProgressState => ({
  settled,
  total: 100,
  ok,
  failed,
  runners,
  connections: 5,
  budget: 7,
});

describe('paceOf', () => {
  it.each<
    [string, ProgressState, number, ProgressState, number, { filesPerSecond: number; secondsLeft: number | null }]
  >([
    ['no time yet', state(0, 0, 0), 0, state(0, 0, 0), 0, { filesPerSecond: 0, secondsLeft: null }],
    ['nothing settled yet', state(0, 0, 0), 0, state(0, 0, 0), 5_000, { filesPerSecond: 0, secondsLeft: null }],
    ['half in 10 s', state(0, 0, 0), 0, state(50, 50, 0), 10_000, { filesPerSecond: 5, secondsLeft: 10 }],
    [
      "an earlier run's files are not this run's pace",
      state(40, 40, 0),
      1_000,
      state(60, 55, 5),
      11_000,
      { filesPerSecond: 2, secondsLeft: 20 },
    ],
    ['all settled', state(0, 0, 0), 0, state(100, 90, 10), 20_000, { filesPerSecond: 5, secondsLeft: 0 }],
  ])('%s', (_name, first, startedAt, latest, now, want) => {
    expect(paceOf(first, startedAt, latest, now)).toEqual(want);
  });

  it('formats rates and durations for the bar', () => {
    expect([0, 0.25, 5, 12.345, 480.4].map(formatRate)).toEqual(['0', '0.25', '5.00', '12.3', '480']);
    expect([null, 0, 9.2, 65, 3_600, 7_800].map(formatDuration)).toEqual([
      '?',
      '0s',
      '10s',
      '1m 05s',
      '1h 00m',
      '2h 10m',
    ]);
  });
});

describe('progressDisplay on a terminal', () => {
  /** The frames drawn, without escape codes: cli-progress redraws the line after a carriage return or cursor move. */
  const frames = (t: FakeTerminal) =>
    t.written
      // eslint-disable-next-line no-control-regex
      .split(/\r|\x1b\[\d*G/)
      // eslint-disable-next-line no-control-regex
      .map((f) => f.replace(/\x1b(\[[0-9;?]*[A-Za-z]|[78])/g, '').trim())
      .filter((f) => f.includes('files'));

  it('shows the rate and the time left, and its last frame is the state it finished on', () => {
    const clock = new ManualClock();
    const terminal = new FakeTerminal();
    const display = progressDisplay({} as Logger, { tty: true, clock, stream: terminal });
    display.update(state(0, 0, 0));
    expect(frames(terminal).at(-1)).toContain('0/100 files: 0 ok, 0 failed | 0 files/s, ? left | 2 runner(s)');
    clock.advance(10_000);
    display.update(state(50, 48, 2));
    clock.advance(10_000);
    display.finish(state(100, 90, 10, 0));
    expect(frames(terminal).at(-1)).toMatch(
      /100% \| 100\/100 files: 90 ok, 10 failed \| 5\.00 files\/s, 0s left \| 0 runner\(s\), 5\/7 connections \| 20s$/,
    );
    const drawn = terminal.written.length;
    display.stop();
    expect(terminal.written.length, 'a stopped bar draws nothing more').toBe(drawn);
  });
});
