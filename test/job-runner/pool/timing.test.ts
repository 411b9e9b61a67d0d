import { describe, expect, it } from 'vitest';
import { backoffDelay, equalJitter } from '../../../common/backoff.js';
import { databaseRetryDelay, needsPing, retirementTime } from '../../../job-runner/pool/timing.js';

describe('retirementTime', () => {
  const table = [
    { name: 'the low end of the spread', random: 0, want: 1000 + 27 * 60_000 },
    { name: 'the middle is the nominal lifetime', random: 0.5, want: 1000 + 30 * 60_000 },
    { name: 'the high end of the spread', random: 1, want: 1000 + 33 * 60_000 },
  ];
  for (const row of table) {
    it(`spreads a 30 min lifetime by ±10%: ${row.name}`, () => {
      expect(retirementTime(1000, 30 * 60_000, 0.1, () => row.random)).toBe(row.want);
    });
  }
  it('never retires when the lifetime is 0', () => {
    expect(retirementTime(1000, 0, 0.1, () => 0.5)).toBe(Number.POSITIVE_INFINITY);
  });
  it('gives connections opened together different deadlines', () => {
    const randoms = [0.1, 0.4, 0.9];
    const deadlines = randoms.map((r) => retirementTime(0, 60_000, 0.1, () => r));
    expect(new Set(deadlines).size).toBe(3);
  });
});

describe('databaseRetryDelay', () => {
  it('doubles from the base up to the cap when the random source gives its maximum', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7].map((a) => databaseRetryDelay(a, () => 1))).toEqual([
      100, 200, 400, 800, 1600, 3200, 5000, 5000,
    ]);
  });
  it('waits at least half of each step', () => {
    expect([0, 1, 2, 6].map((a) => databaseRetryDelay(a, () => 0))).toEqual([50, 100, 200, 2500]);
  });
});

describe('backoffDelay', () => {
  it('stays capped for absurd attempt numbers', () => {
    expect(
      backoffDelay(
        10_000,
        { baseMs: 10, maxMs: 700 },
        equalJitter(() => 1),
      ),
    ).toBe(700);
  });
});

describe('needsPing', () => {
  const table: Array<{ mode: 'always' | 'bypass-window' | 'never'; idleMs: number; want: boolean }> = [
    { mode: 'bypass-window', idleMs: 0, want: false },
    { mode: 'bypass-window', idleMs: 1000, want: false },
    { mode: 'bypass-window', idleMs: 1001, want: true },
    { mode: 'always', idleMs: 0, want: true },
    { mode: 'never', idleMs: 3_600_000, want: false },
  ];
  for (const row of table) {
    it(`${row.mode}, idle ${row.idleMs} ms with a 1000 ms window → ${row.want ? 'ping' : 'no ping'}`, () => {
      expect(needsPing(row.mode, 5_000, 5_000 + row.idleMs, 1000)).toBe(row.want);
    });
  }
});
