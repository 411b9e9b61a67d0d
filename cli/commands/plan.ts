import type { CommandModule } from 'yargs';
import { parsedBy, wholeNumber } from '../../common/flags.js';
import { EXIT_USAGE } from '../../contract/exit-codes.js';
import { POOL_OPTIONS, poolTuningFrom, type PoolArgs } from '../../contract/pool-options.js';
import { MAX_SHARDS, midiCorpusSpecSchema } from '../../controller/api/v1alpha1/midicorpus.js';
import { cpuMillis } from '../../controller/plan/cpu.js';
import type { DryRun } from '../../controller/plan/dry-run.js';

interface PlanArgs extends PoolArgs {
  files: number;
  'files-per-shard'?: number;
  shards?: number;
  /** --cpu, in millicores. */
  cpu?: number;
  'cpu-millis'?: number;
  'max-connections': number;
  reserved: number;
  headroom: number;
  'max-parallelism': number;
  json: boolean;
}

// The CLI's defaults are the CRD's defaults, read from the one schema, so `plan` answers for what `kubectl apply` gets.
const db = midiCorpusSpecSchema.openapi.properties!.database!.properties!;
const runner = midiCorpusSpecSchema.openapi.properties!.runner!.properties!;
const DEFAULT_RESERVED = db.reservedConnections!.default as number;
const DEFAULT_HEADROOM = db.headroom!.default as number;
const DEFAULT_MAX_PARALLELISM = runner.maxParallelism!.default as number;
const sharding = midiCorpusSpecSchema.openapi.properties!.sharding!.properties!;
const MAX_FILES_PER_SHARD = sharding.filesPerShard!.maximum!;
const MAX_CONNECTIONS = db.maxConnections!.maximum!;

/** `midi-corpus plan`: a dry run of the connection budget, with no cluster and no database. */
export const planCommand: CommandModule<object, PlanArgs> = {
  command: 'plan',
  describe: 'Dry run: shards, per-pod pool, parallelism and peak connections for a corpus (no cluster needed)',
  builder: (y) =>
    y
      .usage(
        [
          '$0 plan --files N (--files-per-shard N | --shards N) (--cpu CORES | --cpu-millis N) --max-connections N [options]',
          '',
          'Answers "how would the operator run this corpus?" with the same code the controller uses:',
          '  shards       = files / files-per-shard (or --shards, at most one per file)',
          '  perPod.max   = connections one runner pod may hold (one writer per whole CPU + 1, capped by --max-per-pod)',
          "  allowance    = max-connections − reserved − headroom − 1 (the operator's own connection)",
          '  parallelism  = min(max-parallelism, shards, floor(allowance / perPod.max))',
          '  peakConnections = parallelism × perPod.max (never above the allowance)',
        ].join('\n'),
      )
      .option('files', {
        demandOption: true,
        describe: 'Files in the corpus',
        coerce: wholeNumber('--files', { min: 0 }),
      })
      .option('files-per-shard', {
        describe: 'Files per shard (one pod run each)',
        coerce: wholeNumber('--files-per-shard', { min: 1, max: MAX_FILES_PER_SHARD }),
      })
      .option('shards', {
        describe: 'Number of shards instead of --files-per-shard',
        coerce: wholeNumber('--shards', { min: 1, max: MAX_SHARDS }),
      })
      .conflicts('files-per-shard', 'shards')
      .option('cpu', {
        type: 'string',
        describe: 'CPU request of a runner pod, as in Kubernetes: 2, 1.5, 500m',
        coerce: parsedBy('--cpu', cpuMillis, 'a positive CPU quantity such as 2, 1.5 or 500m'),
      })
      .option('cpu-millis', {
        describe: 'CPU request in millicores instead of --cpu',
        coerce: wholeNumber('--cpu-millis', { min: 1 }),
      })
      .conflicts('cpu', 'cpu-millis')
      .option('max-connections', {
        demandOption: true,
        describe: "The server's max_connections",
        coerce: wholeNumber('--max-connections', { min: 1, max: MAX_CONNECTIONS }),
      })
      .option('reserved', {
        default: DEFAULT_RESERVED,
        describe: 'Connections runners must leave alone (superuser slots, other applications)',
        coerce: wholeNumber('--reserved', { min: 0 }),
      })
      .option('headroom', {
        default: DEFAULT_HEADROOM,
        describe: 'Safety margin on top of reserved',
        coerce: wholeNumber('--headroom', { min: 0 }),
      })
      .option('max-parallelism', {
        default: DEFAULT_MAX_PARALLELISM,
        describe: 'Most runner pods at once',
        coerce: wholeNumber('--max-parallelism', { min: 1, max: MAX_SHARDS }),
      })
      .options(POOL_OPTIONS)
      .option('json', { type: 'boolean', default: false, describe: 'Print one JSON object instead of a table' })
      .example('$0 plan --files 3000000 --files-per-shard 1000 --cpu 2 --max-connections 100 --reserved 10 --json', '')
      .check((a) => {
        if (a['files-per-shard'] === undefined && a.shards === undefined)
          throw new Error('give --files-per-shard or --shards');
        if (a.cpu === undefined && a['cpu-millis'] === undefined) throw new Error('give --cpu or --cpu-millis');
        return true;
      }),
  handler: async (args) => {
    // The planners (and the status code behind them) only for a plan: every other command imports this module's flags.
    const { dryRun } = await import('../../controller/plan/dry-run.js');
    const millis = (args['cpu-millis'] ?? args.cpu)!;
    const result = dryRun({
      files: args.files,
      sharding: args.shards !== undefined ? { shards: args.shards } : { filesPerShard: args['files-per-shard']! },
      cpuMillis: millis,
      maxConnections: args['max-connections'],
      reservedConnections: args.reserved,
      headroom: args.headroom,
      maxParallelism: args['max-parallelism'],
      pool: poolTuningFrom(args),
    });
    // The plan goes to stdout even when it cannot run (its figures say why); what stops it is one line on stderr.
    process.stdout.write(args.json ? `${JSON.stringify(result)}\n` : table(result, millis));
    const problems = planProblems(result);
    if (problems.length > 0) {
      process.stderr.write(`midi-corpus plan: ${problems.join('; ')}\n`);
      process.exitCode = EXIT_USAGE;
    }
  },
};

/** Whether no runner pod fits: there are shards to run and the budget allows not one pod for them. */
export function noRunnerFits(r: DryRun): boolean {
  return r.shards > 0 && r.parallelism === 0;
}

/** What would stop the operator from running this plan: too many shards, or no runner pod that fits the budget. */
function planProblems(r: DryRun): string[] {
  return [...r.errors, ...(noRunnerFits(r) ? [r.note ?? 'no runner pod fits the connection budget'] : [])];
}

function table(r: DryRun, millis: number): string {
  const c = r.connections;
  const lines = [
    `shards            ${r.shards}`,
    `per pod           ${r.perPod.workers} parse workers for ${millis}m CPU; pool max ${r.perPod.max}, warm ${r.perPod.warm}`,
    `allowance         ${c.allowance} = max_connections ${c.limit} − reserved ${c.reserved} − headroom ${c.headroom} − operator ${c.operator}`,
    `parallelism       ${r.parallelism} pods`,
    `peak connections  ${r.peakConnections} (of ${c.allowance} allowed)`,
    `waves             ${r.waves ?? 'none: nothing runs'}`,
  ];
  // When nothing fits the note is the error, printed on stderr.
  if (r.note && !noRunnerFits(r)) lines.push('', r.note);
  return `${lines.join('\n')}\n`;
}
