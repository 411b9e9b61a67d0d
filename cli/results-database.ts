import type { Argv } from 'yargs';
import { checkDatabaseUrl, databaseUrl, port } from '../common/flags.js';
import { DEFAULT_DATA_DIR } from '../job-runner/local/data-dir.js';

/** The flags that say which results database a command reads: local mode's embedded one, or any by URL. */
export interface ResultsDatabaseArgs {
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
    .check((a) => checkDatabaseUrl(a['database-url'], { required: false })) as Argv<T & ResultsDatabaseArgs>;
}
