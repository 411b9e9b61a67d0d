import { describe, expect, it } from 'vitest';
import { connectionAllowance, poolSizeFor, runnersThatFit, workersFor } from '../../contract/pool-sizing.js';

describe('poolSizeFor', () => {
  const table: Array<{
    name: string;
    cpu: number;
    tuning?: Parameters<typeof poolSizeFor>[1];
    want: { workers: number; max: number; warm: number };
  }> = [
    {
      name: 'half a core still gets one worker and a control connection',
      cpu: 500,
      want: { workers: 1, max: 2, warm: 2 },
    },
    { name: 'one core', cpu: 1000, want: { workers: 1, max: 2, warm: 2 } },
    { name: 'fractional cores round down', cpu: 2500, want: { workers: 2, max: 3, warm: 3 } },
    { name: 'four cores', cpu: 4000, want: { workers: 4, max: 5, warm: 5 } },
    { name: 'capped per pod', cpu: 64000, want: { workers: 64, max: 16, warm: 16 } },
    {
      name: 'two writers per worker',
      cpu: 2000,
      tuning: { connectionsPerWorker: 2 },
      want: { workers: 2, max: 5, warm: 5 },
    },
    { name: 'half warm rounds up', cpu: 4000, tuning: { warmFraction: 0.5 }, want: { workers: 4, max: 5, warm: 3 } },
    { name: 'no extra connection', cpu: 1000, tuning: { extraConnections: 0 }, want: { workers: 1, max: 1, warm: 1 } },
    { name: 'explicit cap', cpu: 8000, tuning: { maxPerPod: 4 }, want: { workers: 8, max: 4, warm: 4 } },
    {
      name: 'undefined knobs fall back to defaults',
      cpu: 2000,
      tuning: { maxPerPod: undefined },
      want: { workers: 2, max: 3, warm: 3 },
    },
  ];
  for (const row of table) {
    it(row.name, () => expect(poolSizeFor(row.cpu, row.tuning)).toEqual(row.want));
  }

  it('refuses nonsense', () => {
    expect(() => poolSizeFor(0)).toThrow(RangeError);
    expect(() => poolSizeFor(Number.NaN)).toThrow(RangeError);
    expect(() => poolSizeFor(1000, { warmFraction: 0 })).toThrow(/warmFraction/);
    expect(() => poolSizeFor(1000, { maxPerPod: 0 })).toThrow(/maxPerPod/);
    expect(() => workersFor(-1)).toThrow(RangeError);
  });
});

describe('connection budget', () => {
  it('subtracts reserved, headroom and other holders, never below zero', () => {
    expect(connectionAllowance({ maxConnections: 100, reservedConnections: 10, headroom: 5 })).toBe(85);
    expect(
      connectionAllowance({ maxConnections: 100, reservedConnections: 10, headroom: 5, otherConnections: 2 }),
    ).toBe(83);
    expect(connectionAllowance({ maxConnections: 10, reservedConnections: 10, headroom: 5 })).toBe(0);
    expect(() => connectionAllowance({ maxConnections: 10, reservedConnections: -1, headroom: 0 })).toThrow(
      /reservedConnections/,
    );
  });

  it('fits whole runners only', () => {
    expect(runnersThatFit(85, 3)).toBe(28);
    expect(runnersThatFit(85, 3, 10)).toBe(10);
    expect(runnersThatFit(2, 3)).toBe(0);
  });
});
