import { createHash } from 'node:crypto';
import type pg from 'pg';
import { PermanentError } from '../../contract/error-kinds.js';
import { sql as initial } from './migrations/0001-initial.js';
import { sql as analysisVersion } from './migrations/0002-analysis-version.js';
import { sql as rescan } from './migrations/0003-rescan.js';
import { sql as views } from './migrations/0004-views.js';
import { sql as schemaSteps } from './migrations/0005-schema-steps.js';

/**
 * Versioned schema migrations, applied by `midi-corpus migrate`, by every runner before its first file, by the scan
 * and by local mode. Many pods start at once, so all of them may call `migrate` together: the work runs in ONE
 * transaction that first takes a transaction-scoped advisory lock on a fixed key. The first pod applies what is
 * missing; the others wait on the lock, then find every version recorded and commit an empty transaction. DDL is
 * transactional in Postgres, so a migrator killed half-way leaves nothing behind.
 *
 * Expand, then contract: during an upgrade the previous release's runners keep running (and starting) beside the new
 * one's, on the schema the new one migrated. So each migration says what it does to older code:
 * - an expand step leaves everything older code reads and writes in place (new tables, views and indexes; new
 *   columns that are nullable; CHECKs only widened): code that does not know it runs on;
 * - a contract step takes away what older code may use (a drop, a rename, a NOT NULL, a narrower CHECK) and names the
 *   oldest code that still works once it is in: `compatibleFrom`, the newest migration that code knows.
 * Runners, the scan and local mode apply expand steps only; contract steps wait for `midi-corpus migrate --contract`,
 * run once no runner of an older release can start any more (docs/database.md, "Upgrades"). So the code of a
 * release must work with its own contract steps applied or not, and an expand step must not depend on an earlier
 * contract step being in. Code that finds a migration it does not know runs on unless a recorded contract step needs
 * newer code (SchemaTooNewError, naming the step).
 */

interface MigrationBase {
  /** 1, 2, 3...: applied in order (but for a contract step runners left to `migrate --contract`), never renumbered. */
  version: number;
  name: string;
  sql: string;
}

export interface ExpandMigration extends MigrationBase {
  kind: 'expand';
}

export interface ContractMigration extends MigrationBase {
  kind: 'contract';
  /** The oldest code that works once this step is in, by the newest migration it knows (at most `version`). */
  compatibleFrom: number;
}

export type Migration = ExpandMigration | ContractMigration;

/** Every migration the code knows, oldest first. Append only: an applied migration's text must never change. */
export const MIGRATIONS: readonly Migration[] = [
  { version: 1, name: 'initial', sql: initial, kind: 'expand' },
  { version: 2, name: 'analysis-version', sql: analysisVersion, kind: 'expand' },
  { version: 3, name: 'rescan', sql: rescan, kind: 'expand' },
  { version: 4, name: 'views', sql: views, kind: 'expand' },
  { version: 5, name: 'schema-steps', sql: schemaSteps, kind: 'expand' },
];

/**
 * The newest migration of the releases that read only midi.schema_migrations and refuse any version above theirs in
 * it. Later migrations are recorded in midi.schema_steps (0005) instead, so those releases keep running on expand
 * steps; a contract step they cannot run past also leaves a row (its version) in schema_migrations to stop them.
 */
export const LAST_LEGACY_VERSION = 4;

/** pg_advisory_xact_lock key: the bytes of "midi-mig" as a big-endian int8, so other applications will not collide. */
export const MIGRATION_LOCK_KEY = '7883943025585252711';

export const SCHEMA = 'midi';

/** A migration as the database records it: what code that does not carry it learns about it. */
export interface RecordedMigration {
  version: number;
  name: string;
  checksum: string;
  kind: Migration['kind'];
  /** For a contract step: the oldest code that works with it in. Null for an expand step. */
  compatibleFrom: number | null;
}

/**
 * A recorded contract step needs newer code than this: running on could corrupt results, or fail on what the step
 * took away. Permanent: only a newer release can go on.
 */
export class SchemaTooNewError extends PermanentError {
  override readonly name = 'SchemaTooNewError';
  constructor(
    readonly step: Pick<RecordedMigration, 'version' | 'name'> & { compatibleFrom: number },
    readonly codeVersion: number,
  ) {
    super(
      `database has migration ${step.version} (${step.name}), a contract step that only code knowing migration ${step.compatibleFrom} or later works with; this release knows migrations up to ${codeVersion}: upgrade midi-corpus`,
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
  /** The newest migration in the database after the call (possibly one this code does not know). */
  version: number;
  /** Contract steps this code carries that are not in yet: `migrate --contract` applies them. */
  deferred: number[];
}

export interface MigrateOptions {
  /** Apply contract steps too (`midi-corpus migrate --contract`): only once no older runner can start. */
  contract?: boolean;
}

export function checksumOf(m: Migration): string {
  return createHash('sha256').update(m.sql).digest('hex');
}

/**
 * Brings the schema to the newest version this code knows (contract steps only when asked). Idempotent and safe to
 * run concurrently. Uses the client it is given (the runner passes one of its pool's connections, so migrating never
 * exceeds the pool's max).
 */
export async function migrate(
  client: pg.ClientBase,
  migrations: readonly Migration[] = MIGRATIONS,
  options: MigrateOptions = {},
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
    const recorded = await readRecorded(client);
    const plan = planMigrations(recorded, migrations, options);
    for (const m of plan.apply) {
      await client.query(m.sql);
      await record(client, m);
    }
    await client.query('COMMIT');
    const latest = Math.max(0, ...recorded.map((r) => r.version), ...plan.apply.map((m) => m.version));
    return {
      applied: plan.apply.map((m) => m.version),
      version: latest,
      deferred: plan.deferred.map((m) => m.version),
    };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  }
}

/** Both ledgers, merged: schema_steps says what a step is; a row above LAST_LEGACY_VERSION in schema_migrations is its fence. */
async function readRecorded(client: pg.ClientBase): Promise<RecordedMigration[]> {
  const legacy = await client.query<{ version: number; name: string; checksum: string }>(
    `SELECT version, name, checksum FROM ${SCHEMA}.schema_migrations ORDER BY version`,
  );
  const { rows: found } = await client.query<{ t: string | null }>(
    `SELECT to_regclass('${SCHEMA}.schema_steps')::text AS t`,
  );
  const steps = found[0]!.t
    ? (
        await client.query<RecordedMigration>(
          `SELECT version, name, checksum, kind, compatible_from AS "compatibleFrom" FROM ${SCHEMA}.schema_steps`,
        )
      ).rows
    : [];
  return mergeLedgers(legacy.rows, steps);
}

/**
 * The legacy ledger's own versions are expand steps (all of them were). A version above them found only there is read
 * as the strictest contract step (only code that knows it may run): a fence without its schema_steps row is not
 * something this code wrote, and refusing is the safe reading.
 */
export function mergeLedgers(
  legacy: readonly Pick<RecordedMigration, 'version' | 'name' | 'checksum'>[],
  steps: readonly RecordedMigration[],
): RecordedMigration[] {
  const byVersion = new Map<number, RecordedMigration>();
  for (const r of legacy) {
    const fence = r.version > LAST_LEGACY_VERSION;
    byVersion.set(r.version, { ...r, kind: fence ? 'contract' : 'expand', compatibleFrom: fence ? r.version : null });
  }
  for (const s of steps) byVersion.set(s.version, s);
  return [...byVersion.values()].sort((a, b) => a.version - b.version);
}

async function record(client: pg.ClientBase, m: Migration): Promise<void> {
  const legacyRow = `INSERT INTO ${SCHEMA}.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)`;
  if (m.version <= LAST_LEGACY_VERSION) {
    await client.query(legacyRow, [m.version, m.name, checksumOf(m)]);
    return;
  }
  const compatibleFrom = m.kind === 'contract' ? m.compatibleFrom : null;
  await client.query(
    `INSERT INTO ${SCHEMA}.schema_steps (version, name, checksum, kind, compatible_from) VALUES ($1, $2, $3, $4, $5)`,
    [m.version, m.name, checksumOf(m), m.kind, compatibleFrom],
  );
  if (fencesOutLegacy(m)) await client.query(legacyRow, [m.version, m.name, checksumOf(m)]);
}

/** Whether the releases that read only schema_migrations must be stopped by a row there: they cannot run past `m`. */
export const fencesOutLegacy = (m: Migration): boolean =>
  m.kind === 'contract' && m.compatibleFrom > LAST_LEGACY_VERSION;

export interface MigrationPlan {
  /** To apply now, in order. */
  apply: Migration[];
  /** Contract steps left for `migrate --contract`. */
  deferred: Migration[];
}

/**
 * Decides what to apply from what is recorded: pure, so every case is tested without a database.
 * Throws SchemaTooNewError (a recorded contract step needs newer code) or MigrationChecksumError.
 */
export function planMigrations(
  recorded: readonly RecordedMigration[],
  migrations: readonly Migration[],
  options: MigrateOptions = {},
): MigrationPlan {
  const known = Math.max(0, ...migrations.map((m) => m.version));
  const blocking = recorded
    .filter((r) => r.compatibleFrom !== null && r.compatibleFrom > known)
    .sort((a, b) => b.compatibleFrom! - a.compatibleFrom! || a.version - b.version)[0];
  if (blocking) throw new SchemaTooNewError({ ...blocking, compatibleFrom: blocking.compatibleFrom! }, known);
  const byVersion = new Map(recorded.map((r) => [r.version, r.checksum]));
  for (const m of migrations) {
    const sum = byVersion.get(m.version);
    if (sum !== undefined && sum !== checksumOf(m)) throw new MigrationChecksumError(m.version);
  }
  const pending = migrations.filter((m) => !byVersion.has(m.version)).sort((a, b) => a.version - b.version);
  const apply = options.contract ? pending : pending.filter((m) => m.kind === 'expand');
  return { apply, deferred: pending.filter((m) => !apply.includes(m)) };
}
