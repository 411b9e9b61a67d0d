import os from 'node:os';
import type { CommandModule } from 'yargs';
import { createLogger } from '../../common/log.js';
import { wholeNumber } from '../../common/whole-number.js';
import { describeDatabaseUrl, describeError } from '../../contract/describe-error.js';
import { EXIT_OK, EXIT_USAGE } from '../../contract/exit-codes.js';
import { CAP_OPTIONS, capSettingsFrom, type CapArgs } from '../../contract/cap-options.js';
import { POOL_OPTIONS, poolTuningFrom, type PoolArgs } from '../../contract/pool-options.js';
import { ADMITTED_MESSAGE } from '../../contract/run-shard-command.js';
import { exitCodeFor } from '../../job-runner/runner/errors.js';
import { RUN_SHARD_DEFAULTS, runShard } from '../../job-runner/runner/run-shard.js';
import { DEFAULT_SHUTDOWN_GRACE_MS, installShutdownHandlers } from '../../job-runner/runner/shutdown.js';
import { podMemoryLimit } from '../../job-runner/runner/memory.js';

interface RunShardArgs extends PoolArgs, CapArgs {
  corpus: string;
  root: string;
  shard?: number;
  'split-output'?: string;
  'cpu-millis'?: number;
  'max-file-bytes': number;
  'file-timeout-ms': number;
  'batch-files': number;
  'batch-delay-ms': number;
  'write-deadline-ms': number;
  'shutdown-grace-ms': number;
  'retry-failed': boolean;
  json: boolean;
  'database-url'?: string;
}

/** `midi-corpus run-shard`: the runner. One process per shard: a Kubernetes Job index, or one of local mode's children. */
export const runShardCommand: CommandModule<object, RunShardArgs> = {
  command: 'run-shard',
  describe: 'Analyse one shard of a scanned corpus and record every file (exit 75 = run me again)',
  builder: (y) =>
    y
      .option('corpus', { type: 'string', demandOption: true, describe: 'Corpus key (as given to scan)' })
      .option('root', { type: 'string', demandOption: true, describe: 'Corpus directory (as given to scan)' })
      .option('shard', { type: 'number', describe: 'Shard number (default: env JOB_COMPLETION_INDEX)' })
      .option('split-output', {
        type: 'string',
        describe: 'Write each track of multi-track files under this directory',
      })
      .option('cpu-millis', {
        type: 'number',
        describe: `CPU request in millicores (default: env CPU_REQUEST_MILLIS, else ${RUN_SHARD_DEFAULTS.cpuMillis})`,
      })
      .options(POOL_OPTIONS)
      .options(CAP_OPTIONS)
      .option('max-file-bytes', {
        type: 'number',
        default: RUN_SHARD_DEFAULTS.maxFileBytes,
        describe: 'Larger files are recorded as failed, unread',
      })
      .option('file-timeout-ms', {
        type: 'number',
        default: RUN_SHARD_DEFAULTS.fileTimeoutMs,
        describe: 'Per-file analysis time limit',
      })
      .option('batch-files', {
        type: 'number',
        default: RUN_SHARD_DEFAULTS.batchFiles,
        describe: 'Results per batch (one transaction each)',
      })
      .option('batch-delay-ms', {
        type: 'number',
        default: RUN_SHARD_DEFAULTS.batchDelayMs,
        describe: 'Longest a result waits for its batch',
      })
      .option('write-deadline-ms', {
        type: 'number',
        default: RUN_SHARD_DEFAULTS.writeDeadlineMs,
        describe: 'How long a batch write retries through an outage before exit 75',
      })
      .option('shutdown-grace-ms', {
        type: 'number',
        default: DEFAULT_SHUTDOWN_GRACE_MS,
        describe: 'After SIGTERM, how long batches in flight may take',
      })
      .option('retry-failed', {
        type: 'boolean',
        default: false,
        describe: 'Analyse failed files again even if unchanged (after raising a limit)',
      })
      .option('json', { type: 'boolean', default: false, describe: 'Print a JSON summary as the last stdout line' })
      .option('database-url', { type: 'string', describe: 'PostgreSQL URL (default: env DATABASE_URL)' }),
  handler: async (args) => {
    process.exitCode = await runShardCli(args);
    // Worker threads and sockets are closed by now; exit explicitly so that no stray timer keeps a finished pod alive.
    process.exit();
  },
};

async function runShardCli(args: RunShardArgs): Promise<number> {
  const shard = wholeNumber('--shard (or JOB_COMPLETION_INDEX)', args.shard ?? process.env.JOB_COMPLETION_INDEX, 0);
  const cpuMillis = wholeNumber(
    '--cpu-millis (or CPU_REQUEST_MILLIS)',
    args['cpu-millis'] ?? process.env.CPU_REQUEST_MILLIS ?? RUN_SHARD_DEFAULTS.cpuMillis,
    1,
  );
  const pod = process.env.POD_NAME;
  const log = createLogger({
    base: {
      component: 'runner',
      corpus: args.corpus,
      shard: typeof shard === 'number' ? shard : null,
      ...(pod ? { pod } : {}),
    },
  });
  const url = args['database-url'] ?? process.env.DATABASE_URL;
  const problems = [
    ...(url ? [] : ['no database: pass --database-url or set DATABASE_URL']),
    ...[shard, cpuMillis].filter((x): x is string => typeof x === 'string'),
    ...(['max-file-bytes', 'file-timeout-ms', 'batch-files', 'batch-delay-ms', 'write-deadline-ms'] as const)
      .map((k) => wholeNumber(`--${k}`, args[k], k === 'batch-delay-ms' ? 0 : 1))
      .filter((x): x is string => typeof x === 'string'),
  ];
  if (problems.length > 0 || typeof shard !== 'number' || typeof cpuMillis !== 'number' || !url) {
    for (const p of problems) log.error(p);
    return EXIT_USAGE;
  }
  const signal = installShutdownHandlers(log, { graceMs: args['shutdown-grace-ms'] });
  try {
    const summary = await runShard(
      {
        corpus: args.corpus,
        root: args.root,
        shard,
        databaseUrl: url,
        cpuMillis,
        tuning: poolTuningFrom(args),
        cap: capSettingsFrom(args),
        maxFileBytes: args['max-file-bytes'],
        fileTimeoutMs: args['file-timeout-ms'],
        splitOutput: args['split-output'] ?? null,
        pod,
        batchFiles: args['batch-files'],
        batchDelayMs: args['batch-delay-ms'],
        writeDeadlineMs: args['write-deadline-ms'],
        progressIntervalMs: RUN_SHARD_DEFAULTS.progressIntervalMs,
        retryFailed: args['retry-failed'],
        memoryLimitBytes: podMemoryLimit(process.env, process.constrainedMemory(), os.totalmem()),
        onAdmitted: tellLocalModeAdmitted,
      },
      log,
      signal,
    );
    const { corpus: _corpus, shard: _shard, ...figures } = summary;
    log.info(figures, 'shard done');
    // Written before the explicit exit: where stdout is an asynchronous pipe (macOS), exit would cut it short.
    if (args.json) await new Promise((resolve) => process.stdout.write(`${JSON.stringify(summary)}\n`, resolve));
    return EXIT_OK;
  } catch (err) {
    const code = exitCodeFor(err);
    log.error({ database: describeDatabaseUrl(url), err: describeError(err), exitCode: code }, 'shard not finished');
    return code;
  }
}

/** Local mode's runners have an IPC channel to it; a pod's runner has none, and says nothing. */
function tellLocalModeAdmitted(): void {
  // A closed channel (local mode gone) is the shutdown handler's business: the callback keeps send from throwing.
  if (process.send && process.connected) process.send(ADMITTED_MESSAGE, undefined, {}, () => {});
}
