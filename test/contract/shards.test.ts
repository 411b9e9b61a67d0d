import { describe, expect, it } from 'vitest';
import { planShards, type ShardRequest } from '../../contract/shards.js';

/** Shard sizes, in order: the shape of a plan at a glance. */
function sizes(files: number, request: ShardRequest): number[] {
  const plan = planShards(files, request);
  const counts = new Array<number>(plan.shards).fill(0);
  for (let i = 0; i < files; i++) counts[plan.shardOf(i)]! += 1;
  return counts;
}

describe('planShards', () => {
  it.each<[string, number, ShardRequest, number[]]>([
    ['files per shard, exact', 6, { filesPerShard: 3 }, [3, 3]],
    ['files per shard, remainder in the last shard', 7, { filesPerShard: 3 }, [3, 3, 1]],
    ['files per shard larger than the corpus', 2, { filesPerShard: 500 }, [2]],
    ['shard count, balanced to within one file', 10, { shards: 3 }, [4, 3, 3]],
    ['shard count above the file count: one file each, no empty shards', 2, { shards: 5 }, [1, 1]],
    ['empty corpus', 0, { shards: 4 }, []],
    ['empty corpus by files per shard', 0, { filesPerShard: 10 }, []],
  ])('%s', (_name, files, request, expected) => {
    expect(sizes(files, request)).toEqual(expected);
  });

  it('keeps shards contiguous in listing order', () => {
    const plan = planShards(100, { shards: 7 });
    const order = Array.from({ length: 100 }, (_, i) => plan.shardOf(i));
    expect(order).toEqual([...order].sort((a, b) => a - b));
  });

  it.each<[string, number, ShardRequest]>([
    ['zero files per shard', 5, { filesPerShard: 0 }],
    ['fractional shard count', 5, { shards: 1.5 }],
    ['negative file count', -1, { shards: 1 }],
  ])('refuses %s', (_name, files, request) => {
    expect(() => planShards(files, request)).toThrow(RangeError);
  });
});
