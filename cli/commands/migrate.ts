import type { CommandModule } from 'yargs';
import { checkDatabaseUrl, databaseUrl, wholeNumber } from '../../common/flags.js';
import { POOL_MODE_OPTIONS, type PoolMode } from '../../contract/cap-options.js';
import { checkDatabaseTls, TLS_OPTIONS, tlsFilesFrom, type TlsArgs } from '../../contract/tls-options.js';

interface MigrateArgs extends TlsArgs {
  'database-url'?: string;
  'wait-seconds': number;
  /** Absent when the handler is called without the builder's defaults (tests): direct. */
  'pool-mode'?: PoolMode;
  contract: boolean;
}

/**
 * `midi-corpus migrate`: brings the database schema up to date. Runners and local mode migrate by themselves; this
 * command is for operators who want the schema in place (or checked) before anything runs, and the only way contract
 * steps are applied (--contract), since only a person knows that no runner of an older release will start again.
 */
export const migrateCommand: CommandModule<object, MigrateArgs> = {
  command: 'migrate',
  describe: 'Apply database migrations (safe to run concurrently; waits for the database to come up)',
  builder: (y) =>
    y
      .option('database-url', {
        type: 'string',
        describe: 'PostgreSQL URL (default: env DATABASE_URL)',
        coerce: databaseUrl('--database-url'),
      })
      .option('wait-seconds', {
        default: 60,
        describe: 'How long to retry while the database is unreachable',
        coerce: wholeNumber('--wait-seconds', { min: 0 }),
      })
      .option('contract', {
        type: 'boolean',
        default: false,
        describe:
          'Also apply contract steps (they stop older releases): only once no runner of an older release is left',
      })
      .options(TLS_OPTIONS)
      .options(POOL_MODE_OPTIONS)
      .check(
        (a) =>
          checkDatabaseUrl(a['database-url'], { required: true }) &&
          checkDatabaseTls(a['database-url'] ?? process.env.DATABASE_URL, a),
      ),
  handler: async (args) => {
    process.exitCode = await runMigrate(args);
  },
};

async function runMigrate(args: MigrateArgs): Promise<number> {
  const [{ MIGRATIONS, migrate }, { runWithOneConnection }] = await Promise.all([
    import('../../job-runner/db/migrations.js'),
    import('../one-connection.js'),
  ]);
  const command = {
    role: 'migrate',
    databaseUrl: args['database-url'],
    tlsFiles: tlsFilesFrom(args),
    openTimeoutMs: args['wait-seconds'] * 1000,
    poolMode: args['pool-mode'],
  };
  return runWithOneConnection(command, async (pool, log, database) => {
    const result = await pool.use((c) => migrate(c, MIGRATIONS, { contract: args.contract }));
    log.info({ database, ...result }, result.applied.length ? 'migrations applied' : 'schema already current');
    if (result.deferred.length)
      log.warn(
        { deferred: result.deferred },
        'contract steps left out: run `midi-corpus migrate --contract` once no runner of an older release is left',
      );
  });
}
