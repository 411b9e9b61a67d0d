import type { Options } from 'yargs';
import { numberAbove, wholeNumber } from '../common/flags.js';
import { DEFAULT_POOL_TUNING, type PoolTuning } from './pool-sizing.js';

/**
 * The pool knobs on a command line: one flag per PoolTuning field, the same on `run-shard`, `local` and `plan`, so
 * the pool the controller (or local mode, or a dry run) counted is the pool the runner opens.
 */

/** Each PoolTuning field and its flag. */
const POOL_FLAGS = {
  connectionsPerWorker: 'connections-per-worker',
  extraConnections: 'extra-connections',
  maxPerPod: 'max-per-pod',
  warmFraction: 'warm-fraction',
} as const satisfies { [K in keyof Required<PoolTuning>]: string };

/**
 * The yargs options of the pool flags (`y.options(POOL_OPTIONS)`). Absent flags leave the default of pool-sizing.ts.
 * The ranges are poolSizeFor's own (and the CRD's spec.runner.pool): a flag out of range is a one-line usage error
 * at parse time, not poolSizeFor's RangeError with a stack in the middle of a command.
 */
export const POOL_OPTIONS = {
  [POOL_FLAGS.connectionsPerWorker]: {
    coerce: numberAbove('--connections-per-worker', 0),
    describe: `Pool tuning: writer connections per parse worker (spec.runner.pool.connectionsPerWorker, default ${DEFAULT_POOL_TUNING.connectionsPerWorker})`,
  },
  [POOL_FLAGS.extraConnections]: {
    coerce: wholeNumber('--extra-connections', { min: 0 }),
    describe: `Pool tuning: connections beyond the writers (spec.runner.pool.extraConnections, default ${DEFAULT_POOL_TUNING.extraConnections})`,
  },
  [POOL_FLAGS.maxPerPod]: {
    coerce: wholeNumber('--max-per-pod', { min: 1 }),
    describe: `Pool tuning: hard cap on one runner's connections (spec.runner.pool.maxPerPod, default ${DEFAULT_POOL_TUNING.maxPerPod})`,
  },
  [POOL_FLAGS.warmFraction]: {
    coerce: numberAbove('--warm-fraction', 0, 1),
    describe: `Pool tuning: share of a runner's pool opened before its first file (spec.runner.pool.warmFraction, default ${DEFAULT_POOL_TUNING.warmFraction})`,
  },
} as const satisfies Record<string, Options>;

/** The parsed pool flags, as yargs hands them to a command. */
export type PoolArgs = { [F in keyof typeof POOL_OPTIONS]?: number };

const FIELDS = Object.entries(POOL_FLAGS) as [keyof PoolTuning, keyof PoolArgs][];

/** The PoolTuning the flags ask for; a field whose flag is absent is undefined (poolSizeFor takes its default). */
export function poolTuningFrom(args: PoolArgs): PoolTuning {
  return Object.fromEntries(FIELDS.map(([field, flag]) => [field, args[flag]])) as PoolTuning;
}

/** The flags that ask for `tuning` (the inverse of poolTuningFrom): one pair per field that is set, in a fixed order. */
export function poolFlags(tuning: PoolTuning): string[] {
  return FIELDS.flatMap(([field, flag]) => (tuning[field] === undefined ? [] : [`--${flag}`, String(tuning[field])]));
}
