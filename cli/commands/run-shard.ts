import os from 'node:os';
import type { CommandModule } from 'yargs';
import {
  checkDatabaseUrl,
  checkFlagOrEnv,
  databaseUrl,
  nonEmpty,
  readableDirectory,
  wholeNumber,
} from '../../common/flags.js';
import { describeDatabaseUrl, describeError } from '../../contract/describe-error.js';
import { EXIT_OK } from '../../contract/exit-codes.js';
import { CAP_OPTIONS, capSettingsFrom, type CapArgs } from '../../contract/cap-options.js';
import { POOL_OPTIONS, poolTuningFrom, type PoolArgs } from '../../contract/pool-options.js';
import { ADMITTED_MESSAGE } from '../../contract/run-shard-command.js';
import { withTlsFiles } from '../../contract/database-tls.js';
import { checkDatabaseTls, TLS_OPTIONS, tlsFilesFrom, type TlsArgs } from '../../contract/tls-options.js';
import { exitCodeFor } from '../../job-runner/runner/errors.js';
import { RUN_SHARD_DEFAULTS } from '../../job-runner/runner/defaults.js';
import { DEFAULT_SHUTDOWN_GRACE_MS, installShutdownHandlers } from '../../job-runner/runner/shutdown.js';
import { podMemoryLimit } from '../../job-runner/runner/memory.js';

interface RunShardArgs extends PoolArgs, CapArgs, TlsArgs {
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
      .option('corpus', {
        type: 'string',
        demandOption: true,
        describe: 'Corpus key (as given to scan)',
        coerce: nonEmpty('--corpus'),
      })
      .option('root', {
        type: 'string',
        demandOption: true,
        describe: 'Corpus directory (as given to scan)',
        coerce: readableDirectory('--root'),
      })
      .option('shard', {
        describe: 'Shard number (default: env JOB_COMPLETION_INDEX)',
        coerce: wholeNumber('--shard', { min: 0 }),
      })
      .option('split-output', {
        type: 'string',
        describe: 'Write each track of multi-track files under this directory',
        coerce: nonEmpty('--split-output'),
      })
      .option('cpu-millis', {
        describe: `CPU request in millicores (default: env CPU_REQUEST_MILLIS, else ${RUN_SHARD_DEFAULTS.cpuMillis})`,
        coerce: wholeNumber('--cpu-millis', { min: 1 }),
      })
      .options(POOL_OPTIONS)
      .options(CAP_OPTIONS)
      .option('max-file-bytes', {
        default: RUN_SHARD_DEFAULTS.maxFileBytes,
        describe: 'Larger files are recorded as failed, unread',
        coerce: wholeNumber('--max-file-bytes', { min: 1 }),
      })
      .option('file-timeout-ms', {
        default: RUN_SHARD_DEFAULTS.fileTimeoutMs,
        describe: 'Per-file analysis time limit',
        coerce: wholeNumber('--file-timeout-ms', { min: 1 }),
      })
      .option('batch-files', {
        default: RUN_SHARD_DEFAULTS.batchFiles,
        describe: 'Results per batch (one transaction each)',
        coerce: wholeNumber('--batch-files', { min: 1 }),
      })
      .option('batch-delay-ms', {
        default: RUN_SHARD_DEFAULTS.batchDelayMs,
        describe: 'Longest a result waits for its batch',
        coerce: wholeNumber('--batch-delay-ms', { min: 0 }),
      })
      .option('write-deadline-ms', {
        default: RUN_SHARD_DEFAULTS.writeDeadlineMs,
        describe: 'How long a batch write retries through an outage before exit 75',
        coerce: wholeNumber('--write-deadline-ms', { min: 1 }),
      })
      .option('shutdown-grace-ms', {
        default: DEFAULT_SHUTDOWN_GRACE_MS,
        describe: 'After SIGTERM, how long batches in flight may take',
        coerce: wholeNumber('--shutdown-grace-ms', { min: 0 }),
      })
      .option('retry-failed', {
        type: 'boolean',
        default: false,
        describe: 'Analyse failed files again even if unchanged (after raising a limit)',
      })
      .option('json', { type: 'boolean', default: false, describe: 'Print a JSON summary as the last stdout line' })
      .option('database-url', {
        type: 'string',
        describe: 'PostgreSQL URL (default: env DATABASE_URL)',
        coerce: databaseUrl('--database-url'),
      })
      .options(TLS_OPTIONS)
      // In a pod the shard and the CPU request come from the environment (the Job's completion index, the Downward
      // API): checked here like the flags they stand in for, before anything starts.
      .check(
        (a) =>
          checkFlagOrEnv('--shard', a.shard, 'JOB_COMPLETION_INDEX', { min: 0 }, { required: true }) &&
          checkFlagOrEnv('--cpu-millis', a['cpu-millis'], 'CPU_REQUEST_MILLIS', { min: 1 }, { required: false }) &&
          checkDatabaseUrl(a['database-url'], { required: true }) &&
          checkDatabaseTls(a['database-url'] ?? process.env.DATABASE_URL, a),
      ),
  handler: async (args) => {
    process.exitCode = await runShardCli(args);
    // Worker threads and sockets are closed by now; exit explicitly so that no stray timer keeps a finished pod alive.
    process.exit();
  },
};

async function runShardCli(args: RunShardArgs): Promise<number> {
  // Loaded once the flags are known good: a runner given a wrong flag answers at once, without loading pg and pino.
  const [{ createLogger }, { runShard }] = await Promise.all([
    import('../../common/log.js'),
    import('../../job-runner/runner/run-shard.js'),
  ]);
  // Valid by now: the builder's coercers and check() looked at the flags and the variables that stand in for them.
  const shard = args.shard ?? Number(process.env.JOB_COMPLETION_INDEX);
  const cpuMillis = args['cpu-millis'] ?? Number(process.env.CPU_REQUEST_MILLIS || RUN_SHARD_DEFAULTS.cpuMillis);
  const url = withTlsFiles((args['database-url'] ?? process.env.DATABASE_URL)!, tlsFilesFrom(args));
  const pod = process.env.POD_NAME;
  const log = createLogger({ base: { component: 'runner', corpus: args.corpus, shard, ...(pod ? { pod } : {}) } });
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
