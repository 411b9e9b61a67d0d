import { createHash } from 'node:crypto';
import type pg from 'pg';
import { PermanentError } from '../../contract/error-kinds.js';
import { sql as initial } from './migrations/0001-initial.js';
import { sql as analysisVersion } from './migrations/0002-analysis-version.js';
import { sql as rescan } from './migrations/0003-rescan.js';
import { sql as views } from './migrations/0004-views.js';

/**
 * Versioned schema migrations, applied by `midi-corpus migrate`, by every runner before its first file and by local
 * mode. Many pods start at once, so all of them may call `migrate` together: the work runs in ONE transaction that
 * first takes a transaction-scoped advisory lock on a fixed key. The first pod applies what is missing; the others wait
 * on the lock, then find every version recorded and commit an empty transaction. DDL is transactional in Postgres,
 * so a migrator killed half-way leaves nothing behind.
 */

export interface Migration {
  /** 1, 2, 3...: applied in order, never renumbered. */
  version: number;
  name: string;
  sql: string;
}

/** Every migration the code knows, oldest first. Append only: an applied migration's text must never change. */
export const MIGRATIONS: readonly Migration[] = [
  { version: 1, name: 'initial', sql: initial },
  { version: 2, name: 'analysis-version', sql: analysisVersion },
  { version: 3, name: 'rescan', sql: rescan },
  { version: 4, name: 'views', sql: views },
];

/** pg_advisory_xact_lock key: the bytes of "midi-mig" as a big-endian int8, so other applications will not collide. */
export const MIGRATION_LOCK_KEY = '7883943025585252711';

export const SCHEMA = 'midi';

/** The database was migrated by a newer release than this one; running old code on it could corrupt results. */
export class SchemaTooNewError extends PermanentError {
  override readonly name = 'SchemaTooNewError';
  constructor(
    readonly databaseVersion: number,
    readonly codeVersion: number,
  ) {
    super(
      `database schema is at version ${databaseVersion} but this release knows only up to ${codeVersion}: upgrade midi-corpus`,
    );
  }
}

/** An applied migration's recorded checksum differs from the code's: someone edited a released migration. */
export class MigrationChecksumError extends PermanentError {
  override readonly name = 'MigrationChecksumError';
  constructor(readonly version: number) {
    super(`migration ${version} was applied with different SQL than this release carries: refusing to continue`);
  }
}

export interface MigrationResult {
  /** Versions this call applied (empty when the schema was already current). */
  applied: number[];
  /** The schema version after the call. */
  version: number;
}

export function checksumOf(m: Migration): string {
  return createHash('sha256').update(m.sql).digest('hex');
}

/**
 * Brings the schema to the newest version this code knows. Idempotent and safe to run concurrently. Uses the client
 * it is given (the runner passes one of its pool's connections, so migrating never exceeds the pool's max).
 */
export async function migrate(
  client: pg.ClientBase,
  migrations: readonly Migration[] = MIGRATIONS,
): Promise<MigrationResult> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1::bigint)', [MIGRATION_LOCK_KEY]);
    // Created under the lock: two concurrent CREATE SCHEMA IF NOT EXISTS can still collide on the catalog's unique index.
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${SCHEMA}`);
    await client.query(`CREATE TABLE IF NOT EXISTS ${SCHEMA}.schema_migrations (
      version    integer PRIMARY KEY CHECK (version > 0),
      name       text NOT NULL,
      checksum   text NOT NULL CHECK (checksum ~ '^[0-9a-f]{64}$'),
      applied_at timestamptz NOT NULL DEFAULT now())`);
    const { rows } = await client.query<{ version: number; checksum: string }>(
      `SELECT version, checksum FROM ${SCHEMA}.schema_migrations ORDER BY version`,
    );
    const pending = pendingMigrations(rows, migrations);
    for (const m of pending) {
      await client.query(m.sql);
      await client.query(`INSERT INTO ${SCHEMA}.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)`, [
        m.version,
        m.name,
        checksumOf(m),
      ]);
    }
    await client.query('COMMIT');
    const latest = Math.max(0, ...rows.map((r) => r.version), ...pending.map((m) => m.version));
    return { applied: pending.map((m) => m.version), version: latest };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  }
}

/**
 * Decides what to apply from what is recorded: pure, so the refusals are tested without a database.
 * Throws SchemaTooNewError or MigrationChecksumError.
 */
export function pendingMigrations(
  recorded: readonly { version: number; checksum: string }[],
  migrations: readonly Migration[],
): Migration[] {
  const known = Math.max(0, ...migrations.map((m) => m.version));
  const newest = Math.max(0, ...recorded.map((r) => r.version));
  if (newest > known) throw new SchemaTooNewError(newest, known);
  const byVersion = new Map(recorded.map((r) => [r.version, r.checksum]));
  for (const m of migrations) {
    const sum = byVersion.get(m.version);
    if (sum !== undefined && sum !== checksumOf(m)) throw new MigrationChecksumError(m.version);
  }
  return migrations.filter((m) => !byVersion.has(m.version)).sort((a, b) => a.version - b.version);
}
