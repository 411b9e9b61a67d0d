import { exitOnShutdownSignal } from '../../job-runner/runner/shutdown.js';
import type { CommandModule } from 'yargs';
import { migrate } from '../../job-runner/db/migrations.js';
import { createLogger, describeDatabaseUrl } from '../../job-runner/log.js';
import { describeError, EXIT_OK, EXIT_USAGE, exitCodeForDatabaseError } from '../../job-runner/pool/errors.js';
import { applicationNameFor } from '../../job-runner/pool/naming.js';
import { RunnerPool } from '../../job-runner/pool/pool.js';

interface MigrateArgs {
  'database-url'?: string;
  'wait-seconds': number;
}

/**
 * `midi-corpus migrate`: brings the database schema up to date. Runners and local mode migrate by themselves; this
 * command is for operators who want the schema in place (or checked) before anything runs.
 */
export const migrateCommand: CommandModule<object, MigrateArgs> = {
  command: 'migrate',
  describe: 'Apply database migrations (safe to run concurrently; waits for the database to come up)',
  builder: (y) =>
    y
      .option('database-url', { type: 'string', describe: 'PostgreSQL URL (default: env DATABASE_URL)' })
      .option('wait-seconds', { type: 'number', default: 60, describe: 'How long to retry while the database is unreachable' }),
  handler: async (args) => {
    process.exitCode = await runMigrate(args);
  },
};

async function runMigrate(args: MigrateArgs): Promise<number> {
  const log = createLogger({ base: { component: 'migrate' } });
  exitOnShutdownSignal(log);
  const url = args['database-url'] ?? process.env.DATABASE_URL;
  if (!url) {
    log.error('no database: pass --database-url or set DATABASE_URL');
    return EXIT_USAGE;
  }
  const pool = new RunnerPool({
    connectionString: url,
    size: { max: 1, warm: 1 },
    applicationName: applicationNameFor({ role: 'migrate', pod: process.env.POD_NAME }),
    openTimeoutMs: args['wait-seconds'] * 1000,
    statsIntervalMs: 0,
    log,
  });
  try {
    await pool.open();
    const result = await pool.use(migrate);
    log.info({ database: describeDatabaseUrl(url), ...result }, result.applied.length ? 'migrations applied' : 'schema already current');
    return EXIT_OK;
  } catch (err) {
    log.error({ database: describeDatabaseUrl(url), err: describeError(err) }, 'migration failed');
    return exitCodeForDatabaseError(err);
  } finally {
    await pool.close().catch(() => {});
  }
}
