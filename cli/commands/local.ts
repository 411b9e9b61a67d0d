import type { CommandModule } from 'yargs';
import { DEFAULT_DATA_DIR } from '../../job-runner/local/data-dir.js';
import {
  checkDatabaseUrl,
  databaseUrl,
  nonEmpty,
  port,
  readableDirectory,
  wholeNumber,
  writableDirectory,
} from '../../common/flags.js';
import { describeError } from '../../contract/describe-error.js';
import { EXIT_USAGE } from '../../contract/exit-codes.js';
import { CAP_OPTIONS, capSettingsFrom } from '../../contract/cap-options.js';
import { withTlsFiles } from '../../contract/database-tls.js';
import { checkDatabaseTls, TLS_OPTIONS, tlsFilesFrom, type TlsArgs } from '../../contract/tls-options.js';
import { POOL_OPTIONS, poolTuningFrom, type PoolArgs } from '../../contract/pool-options.js';
import { exitCodeFor } from '../../job-runner/runner/errors.js';
import { DEFAULT_INCLUDE } from '../../job-runner/runner/list.js';
import { installShutdownHandlers } from '../../job-runner/runner/shutdown.js';
import { RUN_SHARD_DEFAULTS } from '../../job-runner/runner/defaults.js';

interface LocalArgs extends PoolArgs, TlsArgs {
  dir: string;
  corpus?: string;
  'database-url'?: string;
  'data-dir': string;
  port?: number;
  include?: string[];
  'files-per-shard'?: number;
  shards?: number;
  'cpu-millis-per-runner': number;
  'max-runners'?: number;
  'max-connections'?: number;
  reserved?: number;
  headroom: number;
  'ledger-database': string;
  'max-file-bytes'?: number;
  'file-timeout-ms'?: number;
  'split-output'?: string;
  'shard-attempts': number;
  'retry-failed': boolean;
  json: boolean;
}

/** `midi-corpus local <dir>`: scan and analyse a corpus on this machine, as the cluster would. */
export const localCommand: CommandModule<object, LocalArgs> = {
  command: 'local <dir>',
  describe: 'Ingest a corpus directory on this machine (embedded Postgres unless --database-url), as the cluster would',
  builder: (y) =>
    y
      // Every flag, the directory and the URL are checked here, at parse time: a mistake costs one line and exit 64,
      // never an embedded Postgres started (or a server contacted) for a run that cannot happen.
      .positional('dir', {
        type: 'string',
        demandOption: true,
        describe: 'Corpus directory',
        coerce: readableDirectory('<dir>'),
      })
      .option('corpus', {
        type: 'string',
        describe: "Corpus key in the database (default: the directory's absolute path)",
        coerce: nonEmpty('--corpus'),
      })
      .option('database-url', {
        type: 'string',
        describe: 'Use this PostgreSQL instead of the embedded one (default: env DATABASE_URL when set)',
        coerce: databaseUrl('--database-url'),
      })
      .option('data-dir', {
        type: 'string',
        default: DEFAULT_DATA_DIR,
        describe: 'Embedded Postgres data and runner logs (kept between runs)',
        coerce: writableDirectory('--data-dir'),
      })
      .option('port', { describe: 'Port for the embedded Postgres (default: a free one)', coerce: port('--port') })
      .option('include', {
        type: 'string',
        array: true,
        describe: `Globs of files to include (default ${DEFAULT_INCLUDE.join(' ')})`,
      })
      .option('files-per-shard', {
        describe: 'Files per shard (default: at most one shard per runner, 2000 to 4000 files each)',
        coerce: wholeNumber('--files-per-shard', { min: 1 }),
      })
      .option('shards', {
        describe: 'Number of shards instead of --files-per-shard',
        coerce: wholeNumber('--shards', { min: 1 }),
      })
      .conflicts('files-per-shard', 'shards')
      .option('cpu-millis-per-runner', {
        default: RUN_SHARD_DEFAULTS.cpuMillis,
        describe: 'CPU per runner process, in millicores: its parse workers and pool follow',
        coerce: wholeNumber('--cpu-millis-per-runner', { min: 1 }),
      })
      .option('max-runners', {
        describe: 'Most runner processes at once (default: CPUs × 1000 / cpu-millis-per-runner)',
        coerce: wholeNumber('--max-runners', { min: 1 }),
      })
      .options(POOL_OPTIONS)
      .options(CAP_OPTIONS)
      .option('max-file-bytes', {
        describe: `Per-file size limit (default ${RUN_SHARD_DEFAULTS.maxFileBytes})`,
        coerce: wholeNumber('--max-file-bytes', { min: 1 }),
      })
      .option('file-timeout-ms', {
        describe: `Per-file analysis time limit (default ${RUN_SHARD_DEFAULTS.fileTimeoutMs})`,
        coerce: wholeNumber('--file-timeout-ms', { min: 1 }),
      })
      .option('split-output', {
        type: 'string',
        describe: 'Write each track of multi-track files under this directory',
        coerce: writableDirectory('--split-output'),
      })
      .option('shard-attempts', {
        default: 5,
        describe: 'Runs of a shard whose runner exits 75 or crashes, before giving up on it',
        coerce: wholeNumber('--shard-attempts', { min: 1 }),
      })
      .option('retry-failed', {
        type: 'boolean',
        default: false,
        describe: 'Analyse failed files again even if unchanged (after raising a limit)',
      })
      .option('json', {
        type: 'boolean',
        default: false,
        describe: 'Print the summary as one JSON object, the last line of stdout',
      })
      .options(TLS_OPTIONS)
      .check(
        (a) =>
          checkDatabaseUrl(a['database-url'], { required: false }) &&
          checkDatabaseTls(a['database-url'] ?? process.env.DATABASE_URL, a),
      ),
  handler: async (args) => {
    process.exitCode = await localCli(args);
    process.exit();
  },
};

/**
 * The database a local run uses, with the certificate files given by flag in its URL (its runners get them that way);
 * undefined for the embedded one, which has no TLS.
 */
function databaseUrlWithTls(args: LocalArgs): string | undefined {
  const url = args['database-url'] ?? (process.env.DATABASE_URL || undefined);
  return url === undefined ? undefined : withTlsFiles(url, tlsFilesFrom(args));
}

async function localCli(args: LocalArgs): Promise<number> {
  // Loaded once the flags are known good: pg, pino, the embedded server and the progress bar are most of the start-up.
  const [{ createLogger }, { runLocal }, { humanSummary }] = await Promise.all([
    import('../../common/log.js'),
    import('../../job-runner/local/run-local.js'),
    import('../../job-runner/local/report.js'),
  ]);
  // On a terminal the progress bar and the summary say what matters; info lines would scroll the bar away.
  const tty = process.stderr.isTTY === true;
  const log = createLogger({ base: { component: 'local' }, level: process.env.LOG_LEVEL ?? (tty ? 'warn' : 'info') });
  const signal = installShutdownHandlers(log, {
    graceMs: null,
    message: 'stopping: runners finish their batches in flight (press again to quit at once)',
  });
  try {
    const { report, lookAt, exitCode } = await runLocal(
      {
        dir: args.dir,
        corpus: args.corpus,
        databaseUrl: databaseUrlWithTls(args),
        dataDir: args['data-dir'],
        port: args.port,
        include: args.include,
        filesPerShard: args['files-per-shard'],
        shards: args.shards,
        cpuMillisPerRunner: args['cpu-millis-per-runner'],
        maxRunners: args['max-runners'],
        tuning: poolTuningFrom(args),
        cap: capSettingsFrom(args),
        maxFileBytes: args['max-file-bytes'],
        fileTimeoutMs: args['file-timeout-ms'],
        splitOutput: args['split-output'],
        shardAttempts: args['shard-attempts'],
        retryFailed: args['retry-failed'],
        tty,
      },
      log,
      signal,
    );
    // The summary is for the person at the terminal (stderr); with --json, stdout's last line is the machine's copy.
    await new Promise((resolve) => process.stderr.write(humanSummary(report, lookAt), resolve));
    // Written before the explicit exit: where stdout is an asynchronous pipe (macOS), exit would cut it short.
    if (args.json) await new Promise((resolve) => process.stdout.write(`${JSON.stringify(report)}\n`, resolve));
    return exitCode;
  } catch (err) {
    const code = exitCodeFor(err);
    // A configuration error found once the server answered (a budget that fits no runner, a wrong password): the
    // same one line as a usage error, since the person must change the command, not read a log.
    if (code === EXIT_USAGE) process.stderr.write(`midi-corpus local: ${describeError(err)}\n`);
    else log.error({ err: describeError(err), exitCode: code }, 'local run failed');
    return code;
  }
}
