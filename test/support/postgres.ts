import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import {
  startEmbeddedPostgres,
  type EmbeddedDatabase,
  type EmbeddedPostgresOptions,
} from '../../job-runner/db/embedded.js';

export interface TestPostgres extends EmbeddedDatabase {
  /** Runs one query on a fresh connection (closed afterwards). */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<pg.QueryResult<R>>;
  /** Creates a new, empty database on this server and returns its URL (one per test keeps tests independent). */
  createDatabase(name?: string): Promise<string>;
  /** Stops the server and deletes its data. */
  destroy(): Promise<void>;
}

let counter = 0;

/** A real Postgres server in a temporary directory, for one test file. */
export async function startTestPostgres(options: Omit<EmbeddedPostgresOptions, 'dataDir'> = {}): Promise<TestPostgres> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'mco-pg-'));
  const db = await startEmbeddedPostgres({ ...options, dataDir });
  const query = async <R extends pg.QueryResultRow>(sql: string, params: unknown[] = []) => {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      return await client.query<R>(sql, params);
    } finally {
      await client.end();
    }
  };
  return {
    ...db,
    query,
    async createDatabase(name = `t${process.pid}_${++counter}`) {
      await query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
      const u = new URL(db.url);
      u.pathname = `/${name}`;
      return u.toString();
    },
    async destroy() {
      await db.stop().catch(() => {});
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
