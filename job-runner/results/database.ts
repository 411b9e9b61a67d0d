import pg from 'pg';
import { applicationNameFor } from '../../contract/application-name.js';
import { openLocalDatabase } from '../local/database.js';
import { UsageError } from '../runner/errors.js';

/**
 * The one connection `query` and `export` read results through: to --database-url (or DATABASE_URL), or else to local
 * mode's embedded Postgres, started again from its data directory for the command and stopped after it. A data
 * directory without a cluster is refused before anything is created (NoLocalDatabaseError, exit 64).
 *
 * One connection, not admitted by the server ledger, as `migrate` and `db` are not: it is a person's command run
 * beside the corpus, and `--headroom` keeps room for such.
 */

export interface ResultsDatabaseOptions {
  /** --database-url, else DATABASE_URL; neither: the embedded database under dataDir. */
  databaseUrl?: string;
  dataDir: string;
  port?: number;
  /** For application_name: 'query', 'export'. */
  role: string;
  /** Sets default_transaction_read_only on the connection, so nothing it runs can write. */
  readOnly?: boolean;
}

/** A URL the pg driver can use; checked before any connection so a typo is a usage error (64), not an outage (75). */
export function checkDatabaseUrl(url: string): void {
  let parsed: URL | null = null;
  try {
    parsed = new URL(url);
  } catch {
    // Reported below without the value: a malformed URL may still hold a password.
  }
  // A Unix socket has no host in the authority but a host parameter: postgres:///midi?host=/run/postgresql.
  const hasHost = parsed !== null && (parsed.hostname !== '' || parsed.searchParams.has('host'));
  if (!parsed || !['postgres:', 'postgresql:'].includes(parsed.protocol) || !hasHost)
    // Said without "postgres://" in it: describeError would take that for a URL and scrub the rest of the line.
    throw new UsageError(
      '--database-url (or DATABASE_URL): not a database URL: scheme postgres or postgresql, then //USER:PASSWORD@HOST:PORT/DATABASE',
    );
}

export async function withResultsDatabase<T>(
  options: ResultsDatabaseOptions,
  work: (client: pg.Client, database: string) => Promise<T>,
): Promise<T> {
  const databaseUrl = options.databaseUrl ?? process.env.DATABASE_URL;
  if (databaseUrl !== undefined) checkDatabaseUrl(databaseUrl);
  const db = await openLocalDatabase({
    databaseUrl,
    dataDir: options.dataDir,
    port: options.port,
    existingOnly: true,
  });
  try {
    const client = new pg.Client({
      connectionString: db.url,
      application_name: applicationNameFor({ role: options.role }),
      ...(options.readOnly ? { options: '-c default_transaction_read_only=on' } : {}),
    });
    // An idle connection the server drops (a restart) must not crash the process with an unhandled 'error'.
    client.on('error', () => {});
    await client.connect();
    try {
      return await work(client, db.description);
    } finally {
      await client.end().catch(() => {});
    }
  } finally {
    await db.stop().catch(() => {});
  }
}
