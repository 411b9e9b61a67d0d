import { describe, expect, it } from 'vitest';
import { dryRun, type DryRunInput } from '../../../controller/plan/dry-run.js';

const base: DryRunInput = {
  files: 3_000_000,
  sharding: { filesPerShard: 1000 },
  cpuMillis: 2000,
  maxConnections: 100,
  reservedConnections: 10,
  headroom: 2,
  maxParallelism: 50,
};

describe('dryRun', () => {
  const table: Array<{ name: string; input: Partial<DryRunInput>; want: Partial<ReturnType<typeof dryRun>> }> = [
    {
      name: 'the README example: 3000 shards, 3 connections a pod, 29 pods in 87 connections',
      input: {},
      want: {
        shards: 3000,
        perPod: { workers: 2, max: 3, warm: 3 },
        parallelism: 29,
        peakConnections: 87,
        waves: 104,
        limitedBy: 'allowance',
      },
    },
    {
      name: 'maxParallelism caps a roomy database',
      input: { maxConnections: 1000 },
      want: { parallelism: 50, peakConnections: 150 },
    },
    {
      name: 'a small corpus needs no more pods than shards',
      input: { files: 2500 },
      want: { shards: 3, parallelism: 3, peakConnections: 9, waves: 1 },
    },
    {
      name: 'an empty corpus runs nothing',
      input: { files: 0 },
      want: { shards: 0, parallelism: 0, peakConnections: 0, waves: 0 },
    },
    {
      name: 'a shard count is capped at one file per shard',
      input: { files: 10, sharding: { shards: 40 } },
      want: { shards: 10 },
    },
    {
      name: 'pool tuning changes the pod size',
      input: { pool: { connectionsPerWorker: 2, extraConnections: 0 } },
      want: { perPod: { workers: 2, max: 4, warm: 4 }, parallelism: 21, peakConnections: 84 },
    },
    {
      name: 'nothing fits: zero pods, and the note says what to change',
      input: { maxConnections: 15, cpuMillis: 8000 },
      want: { parallelism: 0, peakConnections: 0, waves: null, limitedBy: 'nothingFits' },
    },
  ];
  for (const row of table) it(row.name, () => expect(dryRun({ ...base, ...row.input })).toMatchObject(row.want));

  it('keeps peak connections within the allowance', () => {
    for (const max of [5, 17, 50, 100, 333]) {
      for (const cpu of [250, 1000, 3500, 16000]) {
        const r = dryRun({ ...base, maxConnections: max, cpuMillis: cpu });
        expect(r.peakConnections).toBeLessThanOrEqual(r.connections.allowance);
      }
    }
  });

  it('explains nothing-fits with the numbers and the knobs', () => {
    expect(dryRun({ ...base, maxConnections: 15, cpuMillis: 8000 }).note).toMatch(
      /one pod holds up to 9 connections, the allowance is 2 .*Raise max_connections/,
    );
  });

  it('flags more shards than an Indexed Job takes', () => {
    expect(dryRun({ ...base, files: 3_000_000, sharding: { filesPerShard: 10 } }).errors).toEqual([
      expect.stringMatching(/at most 100000/),
    ]);
  });
});
