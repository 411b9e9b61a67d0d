import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  LAST_LEGACY_VERSION,
  MIGRATIONS,
  migrate,
  SchemaTooNewError,
  type Migration,
} from '../../../job-runner/db/migrations.js';
import { startTestPostgres, type TestPostgres } from '../../support/postgres.js';

describe('migrations on a real Postgres', () => {
  let db: TestPostgres;
  beforeAll(async () => {
    db = await startTestPostgres();
  });
  afterAll(async () => db?.destroy());

  async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.end();
    }
  }

  /** Every recorded version, both ledgers: schema_migrations (1 to 4, and fences) and schema_steps (5 on). */
  const ledgers = (url: string) =>
    withClient(url, async (c) => ({
      legacy: (await c.query('SELECT version, name FROM midi.schema_migrations ORDER BY version')).rows,
      steps: (
        await c.query(
          'SELECT version, name, kind, compatible_from AS "compatibleFrom" FROM midi.schema_steps ORDER BY version',
        )
      ).rows,
    }));

  it('applies every migration once, 1 to 4 in schema_migrations and the rest in schema_steps; a second run changes nothing', async () => {
    const url = await db.createDatabase();
    const first = await withClient(url, migrate);
    expect(first.applied).toEqual(MIGRATIONS.map((m) => m.version));
    const second = await withClient(url, migrate);
    expect(second).toEqual({ applied: [], version: first.version, deferred: [] });
    const named = MIGRATIONS.map((m) => ({ version: m.version, name: m.name }));
    expect(await ledgers(url)).toEqual({
      legacy: named.filter((m) => m.version <= LAST_LEGACY_VERSION),
      steps: MIGRATIONS.filter((m) => m.version > LAST_LEGACY_VERSION).map((m) => ({
        version: m.version,
        name: m.name,
        kind: m.kind,
        compatibleFrom: null,
      })),
    });
  });

  it('is safe when five migrators start at once: one applies, the others find it done', async () => {
    const url = await db.createDatabase();
    const results = await Promise.all(Array.from({ length: 5 }, () => withClient(url, migrate)));
    const appliers = results.filter((r) => r.applied.length > 0);
    expect(appliers).toHaveLength(1);
    expect(results.every((r) => r.version === MIGRATIONS.at(-1)!.version)).toBe(true);
    const { legacy, steps } = await ledgers(url);
    expect(legacy.length + steps.length).toBe(MIGRATIONS.length);
  });

  const next = MIGRATIONS.at(-1)!.version + 1;
  /** A later release's steps: an expand step adding a table, then the contract step dropping it again. */
  const laterRelease: Migration[] = [
    ...MIGRATIONS,
    { version: next, name: 'probe-table', sql: 'CREATE TABLE midi.upgrade_probe (x integer)', kind: 'expand' },
    {
      version: next + 1,
      name: 'drop-probe-table',
      sql: 'DROP TABLE midi.upgrade_probe',
      kind: 'contract',
      compatibleFrom: next + 1,
    },
  ];
  const probeTable = (url: string) =>
    withClient(url, async (c) => (await c.query("SELECT to_regclass('midi.upgrade_probe')::text AS t")).rows[0].t);

  it('runs on past an expand step it does not know, and applies nothing', async () => {
    const url = await db.createDatabase();
    await withClient(url, (c) => migrate(c, laterRelease.slice(0, -1)));
    expect(await withClient(url, migrate)).toEqual({ applied: [], version: next, deferred: [] });
  });

  it('leaves a contract step to migrate --contract, which records it and fences out the releases that need it not', async () => {
    const url = await db.createDatabase();
    const byRunner = await withClient(url, (c) => migrate(c, laterRelease));
    expect(byRunner).toEqual({
      applied: [...MIGRATIONS.map((m) => m.version), next],
      version: next,
      deferred: [next + 1],
    });
    expect(await probeTable(url)).toBe('midi.upgrade_probe');
    // This release still runs: it knows no contract step past it.
    expect((await withClient(url, migrate)).applied).toEqual([]);

    const byPerson = await withClient(url, (c) => migrate(c, laterRelease, { contract: true }));
    expect(byPerson).toEqual({ applied: [next + 1], version: next + 1, deferred: [] });
    expect(await probeTable(url)).toBe(null);
    const { legacy, steps } = await ledgers(url);
    expect(steps.at(-1)).toEqual({
      version: next + 1,
      name: 'drop-probe-table',
      kind: 'contract',
      compatibleFrom: next + 1,
    });
    // The fence: the releases that read only schema_migrations refuse any version above theirs there.
    expect(legacy.at(-1)).toEqual({ version: next + 1, name: 'drop-probe-table' });

    const refusal = withClient(url, migrate);
    await expect(refusal).rejects.toBeInstanceOf(SchemaTooNewError);
    await expect(refusal).rejects.toThrow(`database has migration ${next + 1} (drop-probe-table), a contract step`);
  });
});
