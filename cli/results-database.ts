import type { Argv } from 'yargs';
import { checkDatabaseUrl, databaseUrl, port } from '../common/flags.js';
import { withTlsFiles } from '../contract/database-tls.js';
import { checkDatabaseTls, TLS_OPTIONS, tlsFilesFrom, type TlsArgs } from '../contract/tls-options.js';
import { DEFAULT_DATA_DIR } from '../job-runner/local/data-dir.js';

/** The flags that say which results database a command reads: local mode's embedded one, or any by URL. */
export interface ResultsDatabaseArgs extends TlsArgs {
  'database-url'?: string;
  'data-dir': string;
  port?: number;
}

/**
 * Adds the results-database flags to report, export and query, checked at parse time like every flag (one line, exit
 * 64, before a database is started); job-runner/results/database.ts opens what they name.
 */
export function resultsDatabaseOptions<T>(y: Argv<T>): Argv<T & ResultsDatabaseArgs> {
  return y
    .option('database-url', {
      type: 'string',
      describe: "The database (default: env DATABASE_URL, else local mode's embedded one)",
      coerce: databaseUrl('--database-url'),
    })
    .option('data-dir', { type: 'string', default: DEFAULT_DATA_DIR, describe: 'The data directory local mode used' })
    .option('port', { describe: 'Port for the embedded Postgres (default: a free one)', coerce: port('--port') })
    .options(TLS_OPTIONS)
    .check(
      (a) =>
        checkDatabaseUrl(a['database-url'], { required: false }) &&
        checkDatabaseTls(a['database-url'] ?? process.env.DATABASE_URL, a),
    ) as Argv<T & ResultsDatabaseArgs>;
}

/**
 * The database URL the flags name, with the certificate files given by flag in it (contract/database-tls.ts), or
 * undefined for local mode's embedded database (which has no TLS: the flags are then not used).
 */
export function resultsDatabaseUrl(args: ResultsDatabaseArgs): string | undefined {
  const url = args['database-url'] ?? (process.env.DATABASE_URL || undefined);
  return url === undefined ? undefined : withTlsFiles(url, tlsFilesFrom(args));
}
