import {
  connectionAllowance,
  poolSizeFor,
  runnersThatFit,
  type PoolSize,
  type PoolTuning,
} from '../../contract/pool-sizing.js';
import type { ShardRequest } from '../../contract/shards.js';

/**
 * Local mode's plan: how many runner processes run at once, from the connection budget and the machine's CPUs,
 * with the very functions the controller uses (contract/pool-sizing.ts). Pure.
 *
 * The budget is the server's cap (contract/ledger.ts), which everyone on the server shares: other applications, other
 * local runs, the operator's pods. What they hold is subtracted when the run starts, so it starts only the runners that
 * fit beside them, and again whenever a slot is about to start its next runner (runnersAllowed), so the run shrinks
 * while others grow and grows back, up to `slots`, when they leave. A runner started into room that another took
 * meanwhile is not a failure: the server ledger holds it until there is room.
 */

export interface LocalPlanInput {
  /** CPUs of this machine (os.availableParallelism()). */
  cpus: number;
  /** CPU given to each runner; its pool follows from it through poolSizeFor. */
  cpuMillisPerRunner: number;
  tuning: PoolTuning;
  /** Explicit cap on runners at once; by default the CPUs decide. */
  maxRunners?: number;
  /** The server's max_connections, or --max-connections when that is lower. */
  maxConnections: number;
  /** superuser_reserved_connections + reserved_connections, or --reserved. */
  reserved: number;
  headroom: number;
  /** Connections local mode itself holds while runners run (its control connection). */
  ownConnections: number;
  /** Connections others hold on the server when the run starts (inUseByOthers). Default 0. */
  others?: number;
}

export interface LocalPlan {
  perRunner: PoolSize;
  /** Connections this run may hold in all: max_connections − reserved − headroom. Local mode's own count in it. */
  budget: number;
  /** What is left for runners once local mode's own connections are counted (before others' are). */
  allowance: number;
  cpuCap: number;
  /** Runners that fit the allowance with nobody else on the server. */
  budgetCap: number;
  /** Most runner processes at once, should the others leave: min(cpuCap, budgetCap). */
  slots: number;
  /** Others' connections at the start, as given. */
  others: number;
  /** Runner processes at once at the start (before the shard count caps it): runnersAllowed(plan, others). */
  runners: number;
}

/** Thrown when not even one runner fits: the message says which knob to turn. */
export class BudgetTooSmallError extends Error {
  override readonly name = 'BudgetTooSmallError';
}

export function planLocalRun(input: LocalPlanInput): LocalPlan {
  const perRunner = poolSizeFor(input.cpuMillisPerRunner, input.tuning);
  const budget = connectionAllowance({
    maxConnections: input.maxConnections,
    reservedConnections: input.reserved,
    headroom: input.headroom,
  });
  const allowance = connectionAllowance({
    maxConnections: input.maxConnections,
    reservedConnections: input.reserved,
    headroom: input.headroom,
    otherConnections: input.ownConnections,
  });
  // Each runner gets cpuMillisPerRunner of the machine; at least one runs even on a small machine.
  const cpuCap = input.maxRunners ?? Math.max(1, Math.floor((input.cpus * 1000) / input.cpuMillisPerRunner));
  const budgetCap = runnersThatFit(allowance, perRunner.max);
  const slots = Math.min(cpuCap, budgetCap);
  // Only the cap itself can make the run impossible: room that others hold comes back when they leave.
  if (slots < 1) {
    throw new BudgetTooSmallError(
      `no runner fits the connection budget: max_connections ${input.maxConnections} − reserved ${input.reserved} − headroom ${input.headroom} ` +
        `− ${input.ownConnections} for local mode itself leaves ${allowance}, and one runner needs ${perRunner.max} ` +
        `(${perRunner.workers} parse worker(s) at ${input.cpuMillisPerRunner}m). Raise --max-connections (or the server's max_connections), ` +
        'lower --headroom or --reserved, or shrink each runner with --cpu-millis-per-runner or --max-per-pod.',
    );
  }
  const others = input.others ?? 0;
  const plan = { perRunner, budget, allowance, cpuCap, budgetCap, slots, others };
  return { ...plan, runners: runnersAllowed(plan, others) };
}

/**
 * Runners that may run at once while others hold `others` connections: those that fit beside them, at least one (it
 * waits in the server ledger for room rather than the run failing), at most the plan's slots.
 */
export function runnersAllowed(plan: Pick<LocalPlan, 'allowance' | 'perRunner' | 'slots'>, others: number): number {
  const fit = runnersThatFit(Math.max(0, plan.allowance - others), plan.perRunner.max);
  return Math.min(plan.slots, Math.max(1, fit));
}

/**
 * Most files in a shard of a local run by default: a shard rerun after a crash stays cheap, and a large corpus still
 * gets enough shards for every runner to have several.
 */
export const LOCAL_MAX_FILES_PER_SHARD = 4000;

/**
 * Fewest files in a shard of a local run by default. Every shard is a process of its own that pays start-up,
 * admission, its pool's connections and its parse workers (`npm run bench` (h)), and a runner started beside a busy
 * one pays it slowly: on the 2-core development machine, 2 to 5 s against 3 to 4 ms a real-world-like file, so a
 * second runner only pays for itself past about a thousand files of its own. Measured there on 2000 such files with
 * bench (j)'s sweep: 1 shard 8.9 s, 2 shards 16.0 s (the second runner started as the first was half-way), 4 14.7 s,
 * 8 the slowest; on 200 files 1 shard 25 s, 2 27 s, 4 30 s, 8 48 s (under heavy load from elsewhere).
 */
export const LOCAL_MIN_FILES_PER_SHARD = 2000;

/**
 * Shards for a local run when none are asked for: at most one per runner slot while shards stay under
 * LOCAL_MAX_FILES_PER_SHARD, more beyond it and then a multiple of the slots (so that no shard runs alone at the end),
 * and never fewer than LOCAL_MIN_FILES_PER_SHARD files a shard. Four shards per runner, the rule before, paid every
 * runner's fixed cost four times: 8 shards were 2.7 times as slow as one on 2,080 real files (issue 11).
 */
export function localShardRequest(files: number, runners: number): ShardRequest {
  const slots = Math.max(1, runners);
  const wanted = Math.ceil(Math.ceil(files / LOCAL_MAX_FILES_PER_SHARD) / slots) * slots;
  return { shards: Math.max(1, Math.min(wanted, Math.floor(files / LOCAL_MIN_FILES_PER_SHARD))) };
}
