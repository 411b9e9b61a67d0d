import yargs from 'yargs';
import { describe, expect, it } from 'vitest';
import { POOL_OPTIONS, poolFlags, poolTuningFrom } from '../../contract/pool-options.js';
import { DEFAULT_POOL_TUNING } from '../../contract/pool-sizing.js';

const parse = (argv: string[]) => yargs().options(POOL_OPTIONS).strict().exitProcess(false).parseSync(argv);

describe('the pool flags', () => {
  it('map onto PoolTuning, an absent flag leaving its field to the default', () => {
    expect(poolTuningFrom(parse(['--max-per-pod', '4', '--warm-fraction', '0.5']))).toEqual({
      connectionsPerWorker: undefined,
      extraConnections: undefined,
      maxPerPod: 4,
      warmFraction: 0.5,
    });
  });

  it('are written back for a tuning, every field set in a fixed order, unset ones left out', () => {
    expect(poolFlags(DEFAULT_POOL_TUNING)).toEqual([
      '--connections-per-worker',
      '1',
      '--extra-connections',
      '1',
      '--max-per-pod',
      '16',
      '--warm-fraction',
      '1',
    ]);
    expect(poolFlags({ extraConnections: 0, maxPerPod: undefined })).toEqual(['--extra-connections', '0']);
  });

  it('round-trip: what poolFlags writes, the options parse back to the same tuning', () => {
    const tuning = { connectionsPerWorker: 2, extraConnections: 0, maxPerPod: 8, warmFraction: 0.25 };
    expect(poolTuningFrom(parse(poolFlags(tuning)))).toEqual(tuning);
  });

  it('say their CRD field and default in --help', () => {
    expect(POOL_OPTIONS['max-per-pod'].describe).toContain('spec.runner.pool.maxPerPod, default 16');
  });
});
