import type { CommandModule } from 'yargs';
import { DEFAULT_DATA_DIR } from '../../job-runner/local/data-dir.js';
import { port } from '../../common/flags.js';
import { describeError } from '../../contract/describe-error.js';
import { EXIT_BUG, EXIT_USAGE } from '../../contract/exit-codes.js';

interface DbArgs {
  'data-dir': string;
  port?: number;
}

/**
 * `midi-corpus db`: starts local mode's embedded Postgres again (it stops when a local run ends) and prints a psql
 * command for it, until Ctrl-C. The command reads the password from the data directory's password file: the password
 * itself is never printed.
 */
export const dbCommand: CommandModule<object, DbArgs> = {
  command: 'db',
  describe: "Start local mode's embedded Postgres (until Ctrl-C) and print a psql command to look at the results",
  builder: (y) =>
    y
      .option('data-dir', { type: 'string', default: DEFAULT_DATA_DIR, describe: 'The data directory local mode used' })
      .option('port', { describe: 'Port to listen on (default: a free one)', coerce: port('--port') }),
  handler: async (args) => {
    const [{ createLogger }, { NoLocalDatabaseError, openLocalDatabase, psqlCommand }] = await Promise.all([
      import('../../common/log.js'),
      import('../../job-runner/local/database.js'),
    ]);
    const log = createLogger({ base: { component: 'db' } });
    try {
      // Only a cluster local mode made: a mistyped --data-dir would otherwise become a new, empty database.
      const db = await openLocalDatabase({ dataDir: args['data-dir'], port: args.port, existingOnly: true });
      process.stdout.write(`Embedded Postgres is running (Ctrl-C stops it). Connect with:\n  ${psqlCommand(db)}\n`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await db.stop();
    } catch (err) {
      if (err instanceof NoLocalDatabaseError) {
        process.stderr.write(`midi-corpus db: ${err.message}\n`);
        process.exitCode = EXIT_USAGE;
        return;
      }
      log.error({ err: describeError(err) }, 'could not start the embedded Postgres');
      process.exitCode = EXIT_BUG;
    }
  },
};
