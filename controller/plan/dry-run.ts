/**
 * `midi-corpus plan`: what the controller would do for a corpus of a given size, CPU request and database limit,
 * computed with the very functions the controller uses (planShards, poolSizeFor, connectionBudget). Pure.
 */
import { poolSizeFor, type PoolSize, type PoolTuning } from '../../contract/pool-sizing.js';
import { planShards, type ShardRequest } from '../../contract/shards.js';
import { MAX_SHARDS } from '../api/v1alpha1/midicorpus.js';
import { connectionBudget, type LimitKind } from '../budget/connection-budget.js';
import { budgetMessage } from './status.js';

export interface DryRunInput {
  files: number;
  sharding: ShardRequest;
  cpuMillis: number;
  maxConnections: number;
  reservedConnections: number;
  headroom: number;
  maxParallelism: number;
  pool?: PoolTuning;
}

export interface DryRun {
  shards: number;
  perPod: PoolSize;
  connections: { limit: number; reserved: number; headroom: number; operator: number; allowance: number };
  /** Runner pods at once. */
  parallelism: number;
  /** Connections all runner pods hold at most, together: parallelism × perPod.max. Never above the allowance. */
  peakConnections: number;
  /** Rounds of pods needed if every shard took as long: ⌈shards / parallelism⌉ (null when nothing runs). */
  waves: number | null;
  limitedBy?: LimitKind;
  /** What limits the run and, when nothing fits, what to change. */
  note?: string;
  /** Problems that would stop the controller (too many shards for an Indexed Job). */
  errors: string[];
}

export function dryRun(input: DryRunInput): DryRun {
  const { shards } = planShards(input.files, input.sharding);
  const perPod = poolSizeFor(input.cpuMillis, input.pool);
  const limits = {
    maxConnections: input.maxConnections,
    reservedConnections: input.reservedConnections,
    headroom: input.headroom,
  };
  const demand = Math.min(input.maxParallelism, shards);
  const key = 'plan';
  const plan = connectionBudget(limits, [
    { key, createdAt: 0, perPod: perPod.max, demand, livePods: 0, potentialPods: 0, scanPods: 0, scanPending: false },
  ]);
  const mine = plan.corpora.get(key)!;
  const out: DryRun = {
    shards,
    perPod,
    connections: {
      limit: input.maxConnections,
      reserved: input.reservedConnections,
      headroom: input.headroom,
      operator: plan.operator,
      allowance: plan.allowance,
    },
    parallelism: mine.parallelism,
    peakConnections: mine.parallelism * perPod.max,
    waves: mine.parallelism > 0 ? Math.ceil(shards / mine.parallelism) : shards === 0 ? 0 : null,
    errors:
      shards > MAX_SHARDS
        ? [`${shards} shards: an Indexed Job takes at most ${MAX_SHARDS}; raise --files-per-shard`]
        : [],
  };
  if (mine.limitedBy) {
    out.limitedBy = mine.limitedBy;
    out.note = budgetMessage({
      figures: {
        limit: limits.maxConnections,
        reserved: limits.reservedConnections,
        headroom: limits.headroom,
        operator: plan.operator,
        allowance: plan.allowance,
        share: mine.share,
        perPod: perPod.max,
        parallelism: mine.parallelism,
        inUse: 0,
      },
      demand,
      planned: mine.planned,
      limitedBy: mine.limitedBy,
      corpora: 1,
      scanWaiting: false,
    });
  }
  return out;
}
