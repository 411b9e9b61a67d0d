import { existsSync, statSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import type { CommandModule } from 'yargs';
import { createLogger } from '../../common/log.js';
import { checkWholeNumbers } from '../../common/whole-number.js';
import { applicationNameFor } from '../../contract/application-name.js';
import { describeDatabaseUrl, describeError } from '../../contract/describe-error.js';
import { EXIT_OK, EXIT_TEMPFAIL } from '../../contract/exit-codes.js';
import { DEFAULT_DATA_DIR, openLocalDatabase, type LocalDatabase } from '../../job-runner/local/database.js';
import { renderReport } from '../../job-runner/report/html.js';
import { readReportModel } from '../../job-runner/report/query.js';
import { exitCodeFor, UsageError } from '../../job-runner/runner/errors.js';

interface ReportArgs {
  'database-url'?: string;
  'data-dir': string;
  port?: number;
  corpus?: string;
  output: string;
}

export const DEFAULT_REPORT_FILE = 'midi-corpus-report.html';

/** How long to wait for the database to answer: a report is read by a person waiting for it, not retried by a Job. */
const CONNECT_TIMEOUT_MS = 15_000;

/**
 * `midi-corpus report`: one self-contained HTML page about a corpus (status and failure reasons, keys, tempi, meters,
 * durations, note density, instrument families, drums), from local mode's embedded database or any other. Read-only,
 * over one connection that claims nothing in the server ledger: a person's occasional look, like `psql`.
 */
export const reportCommand: CommandModule<object, ReportArgs> = {
  command: 'report',
  describe:
    'Write one self-contained HTML report of a corpus (charts of status, failures, keys, tempi, instruments...)',
  builder: (y) =>
    y
      .option('database-url', {
        type: 'string',
        describe: "Read this PostgreSQL (a cluster's) instead of local mode's embedded one (default: env DATABASE_URL)",
      })
      .option('data-dir', { type: 'string', default: DEFAULT_DATA_DIR, describe: 'The data directory local mode used' })
      .option('port', { type: 'number', describe: 'Port for the embedded Postgres (default: a free one)' })
      .option('corpus', { type: 'string', describe: 'Corpus key, when the database holds several' })
      .option('output', {
        alias: 'o',
        type: 'string',
        default: DEFAULT_REPORT_FILE,
        describe: 'The HTML file to write (replaced if it exists)',
      })
      // As local and db do; the shared option validator of issue 10 replaces this when it lands.
      .check((a) => checkWholeNumbers(a, { port: 1 })),
  handler: async (args) => {
    process.exitCode = await report(args);
  },
};

async function report(args: ReportArgs): Promise<number> {
  const log = createLogger({ base: { component: 'report' } });
  let db: LocalDatabase | null = null;
  try {
    const url = args['database-url'] ?? process.env.DATABASE_URL;
    // Everything a person can get wrong is checked before a database is started.
    const output = checkOutput(args.output);
    if (url !== undefined) checkDatabaseUrl(url);
    else checkLocalDatabase(args['data-dir']);

    if (url === undefined) {
      stopOnSignal(() => db);
      db = await openLocalDatabase({ dataDir: args['data-dir'], port: args.port });
    }
    const connectionString = url ?? db!.url;
    const database = describeDatabaseUrl(connectionString);
    const client = new pg.Client({
      connectionString,
      application_name: applicationNameFor({ role: 'report', corpus: args.corpus }),
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    });
    await client.connect();
    let html: string;
    let summary: string;
    try {
      const model = await readReportModel(client, { corpus: args.corpus, database });
      html = renderReport(model);
      summary = `corpus ${model.corpus}: ${model.totalFiles.toLocaleString('en-US')} files`;
    } finally {
      await client.end().catch(() => {});
    }
    // Written next to its final name and renamed: a browser never opens half a report.
    const partial = `${output}.partial-${process.pid}`;
    await writeFile(partial, html);
    await rename(partial, output);
    process.stderr.write(
      `Wrote the report of ${summary} to ${path.relative(process.cwd(), output) || output} ` +
        `(${Math.ceil(Buffer.byteLength(html) / 1024)} KiB): open it in a browser; it needs no network.\n`,
    );
    return EXIT_OK;
  } catch (err) {
    log.error({ err: describeError(err) }, 'report failed');
    return exitCodeFor(err);
  } finally {
    await db?.stop().catch(() => {});
  }
}

/** The output's directory must exist: the report creates a file, not a tree someone mistyped. */
function checkOutput(output: string): string {
  const file = path.resolve(output);
  const dir = path.dirname(file);
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw new UsageError(`--output ${output}: the directory ${dir} does not exist`);
  if (existsSync(file) && statSync(file).isDirectory())
    throw new UsageError(`--output ${output}: is a directory; name the HTML file to write`);
  return file;
}

/** A URL that is not one fails here with a message that does not repeat it (it may hold a password). */
function checkDatabaseUrl(url: string): void {
  let protocol: string;
  try {
    protocol = new URL(url).protocol;
  } catch {
    throw new UsageError('--database-url (or DATABASE_URL): not a URL; expected postgres://USER@HOST:PORT/DATABASE');
  }
  if (protocol !== 'postgres:' && protocol !== 'postgresql:')
    throw new UsageError(
      `--database-url (or DATABASE_URL): scheme ${protocol} is not postgres: or postgresql:; expected postgres://USER@HOST:PORT/DATABASE`,
    );
}

/**
 * Local mode's data directory must hold a cluster: starting the embedded server on an empty one would initialise a
 * new, empty database and report nothing, far from the results the user meant.
 */
function checkLocalDatabase(dataDir: string): void {
  if (!existsSync(path.join(dataDir, 'pgdata', 'PG_VERSION')))
    throw new UsageError(
      `--data-dir ${dataDir}: holds no local-mode database; run midi-corpus local <dir> first, ` +
        'or pass --database-url to read another database',
    );
}

/** Ctrl-C while the embedded server runs: stop it (the data stays) rather than leave it behind, then exit 75. */
function stopOnSignal(db: () => LocalDatabase | null): void {
  const onSignal = () => {
    void (db()?.stop() ?? Promise.resolve()).catch(() => {}).finally(() => process.exit(EXIT_TEMPFAIL));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
}
