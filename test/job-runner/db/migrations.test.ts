import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIGRATIONS, migrate, SchemaTooNewError } from '../../../job-runner/db/migrations.js';
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

  it('applies every migration once; a second run changes nothing', async () => {
    const url = await db.createDatabase();
    const first = await withClient(url, migrate);
    expect(first.applied).toEqual(MIGRATIONS.map((m) => m.version));
    const second = await withClient(url, migrate);
    expect(second).toEqual({ applied: [], version: first.version });
    const { rows } = await withClient(url, (c) =>
      c.query('SELECT version, name FROM midi.schema_migrations ORDER BY version'),
    );
    expect(rows).toEqual(MIGRATIONS.map((m) => ({ version: m.version, name: m.name })));
  });

  it('is safe when five migrators start at once: one applies, the others find it done', async () => {
    const url = await db.createDatabase();
    const results = await Promise.all(Array.from({ length: 5 }, () => withClient(url, migrate)));
    const appliers = results.filter((r) => r.applied.length > 0);
    expect(appliers).toHaveLength(1);
    expect(results.every((r) => r.version === MIGRATIONS.at(-1)!.version)).toBe(true);
    const { rows } = await withClient(url, (c) => c.query('SELECT count(*)::int AS n FROM midi.schema_migrations'));
    expect(rows[0].n).toBe(MIGRATIONS.length);
  });

  it('refuses a database that a newer release migrated, and changes nothing', async () => {
    const url = await db.createDatabase();
    await withClient(url, migrate);
    const future = MIGRATIONS.at(-1)!.version + 1;
    await withClient(url, (c) =>
      c.query(`INSERT INTO midi.schema_migrations (version, name, checksum) VALUES ($1, 'future', repeat('0', 64))`, [
        future,
      ]),
    );
    await expect(withClient(url, migrate)).rejects.toBeInstanceOf(SchemaTooNewError);
  });
});
