/**
 * Shard planning: which shard each listed file belongs to. Pure.
 *
 * Shards are contiguous runs of the sorted listing, so files of one directory (often one collection, of similar
 * sizes) stay together, and the same listing always gives the same assignment — a rescan of an unchanged corpus
 * leaves every file in its shard, which keeps a half-done run's progress meaningful.
 */

export type ShardRequest = { filesPerShard: number } | { shards: number };

export interface ShardPlan {
  /** Number of shards, 0..shards-1; 0 only for an empty corpus. */
  shards: number;
  /** Shard number of the i-th file of the listing. */
  shardOf: (index: number) => number;
}

export function planShards(fileCount: number, request: ShardRequest): ShardPlan {
  if (!Number.isInteger(fileCount) || fileCount < 0)
    throw new RangeError(`file count must be a whole number ≥ 0, got ${fileCount}`);
  if ('filesPerShard' in request) {
    const per = request.filesPerShard;
    if (!Number.isInteger(per) || per < 1)
      throw new RangeError(`files per shard must be a whole number ≥ 1, got ${per}`);
    return { shards: Math.ceil(fileCount / per), shardOf: (i) => Math.floor(i / per) };
  }
  const wanted = request.shards;
  if (!Number.isInteger(wanted) || wanted < 1)
    throw new RangeError(`shard count must be a whole number ≥ 1, got ${wanted}`);
  // Never more shards than files: an empty shard would still cost a pod.
  const shards = Math.min(wanted, fileCount);
  // Balanced contiguous ranges: sizes differ by at most one file.
  return { shards, shardOf: (i) => Math.floor((i * shards) / fileCount) };
}
