import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIGRATIONS, migrate, type Migration } from '../../../job-runner/db/migrations.js';
import { buildPreviousRelease, type PreviousRelease } from '../../support/previous-release.js';
import { startTestPostgres, type TestPostgres } from '../../support/postgres.js';
import { waitUntil } from '../../support/wait.js';
import { lastJson, runCli, writeCorpus, type CliExit } from '../runner/cli.js';

const FILES = 60;
const SHARDS = 2;
const HOLD_CLASS = 4243;

/**
 * An upgrade as the database sees it: runners of the previous release (its real code, built from git history) and of
 * this one on the same corpus, in either order and at the same time. Every file must be recorded once, whoever
 * writes it; the previous release must stop only where a contract step says so.
 */
describe('upgrades: the previous release and this one on one database', () => {
  let db: TestPostgres;
  let tmp: string;
  let root: string;
  let previous: PreviousRelease;

  beforeAll(async () => {
    [db, previous] = await Promise.all([startTestPostgres(), buildPreviousRelease()]);
    tmp = await mkdtemp(path.join(os.tmpdir(), 'mco-upgrade-'));
    root = path.join(tmp, 'corpus');
    await writeCorpus(root, { files: FILES, seed: 12, size: 'small' });
  });
  afterAll(async () => {
    await db?.destroy();
    await previous?.remove();
    await rm(tmp, { recursive: true, force: true });
  });

  function startPrevious(args: string[], url: string) {
    const child = spawn(process.execPath, [previous.cli, ...args], {
      env: { ...process.env, DATABASE_URL: url, LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    return new Promise<CliExit>((resolve) =>
      child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
    );
  }

  const scanArgs = () => ['scan', '--corpus', 'c', '--root', root, '--shards', String(SHARDS), '--json'];
  const shardArgs = (shard: number, extra: string[] = []) => [
    'run-shard',
    '--corpus',
    'c',
    '--root',
    root,
    '--shard',
    String(shard),
    '--json',
    ...extra,
  ];

  async function query<R extends pg.QueryResultRow>(url: string, sql: string): Promise<R[]> {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      return (await client.query<R>(sql)).rows;
    } finally {
      await client.end();
    }
  }

  /** What "every file once" means in rows. */
  async function recordedOnce(url: string) {
    const [row] = await query<Record<string, number>>(
      url,
      `SELECT count(*)::int AS files, count(*) FILTER (WHERE status = 'ok')::int AS ok,
              count(DISTINCT raw_path)::int AS paths, count(*) FILTER (WHERE attempts <> 1)::int AS not_once,
              (SELECT count(*)::int FROM midi.file_analysis) AS analyses
         FROM midi.files`,
    );
    return row;
  }
  const once = { files: FILES, ok: FILES, paths: FILES, not_once: 0, analyses: FILES };

  const hasSchemaSteps = async (url: string) =>
    (await query<{ t: string | null }>(url, "SELECT to_regclass('midi.schema_steps')::text AS t"))[0]!.t !== null;

  it('the previous release is built from its own commit and knows one migration fewer', () => {
    expect(previous.knows).toBe(MIGRATIONS.at(-2)!.version);
  });

  it("the previous release's runners finish a corpus this release scanned and migrated, every file once", async () => {
    const url = await db.createDatabase();
    const scan = await runCli(scanArgs(), { DATABASE_URL: url });
    expect(scan.code, scan.stderr.slice(-2000)).toBe(0);
    expect(await hasSchemaSteps(url)).toBe(true);
    const exits = await Promise.all([0, 1].map((s) => startPrevious(shardArgs(s), url)));
    for (const exit of exits) expect(exit.code, exit.stderr.slice(-2000)).toBe(0);
    expect(exits.reduce((n, e) => n + lastJson<{ recorded: { ok: number } }>(e).recorded.ok, 0)).toBe(FILES);
    expect(await recordedOnce(url)).toEqual(once);
    // Its own migrate finds nothing to do on the newer schema rather than refusing it.
    expect((await startPrevious(['migrate'], url)).code).toBe(0);
  });

  it('a runner of this release arriving while one of the previous release is mid-shard: it migrates, both finish, every file once', async () => {
    const url = await db.createDatabase();
    const scan = await startPrevious(scanArgs(), url);
    expect(scan.code, scan.stderr.slice(-2000)).toBe(0);
    expect(await hasSchemaSteps(url)).toBe(false);
    // Shard 0's writes past its first batch wait on an advisory lock the test holds: the old runner is held mid-run,
    // its transaction open, while the new one migrates and runs shard 1.
    await query(
      url,
      `CREATE SCHEMA hold;
       CREATE FUNCTION hold.files() RETURNS trigger LANGUAGE plpgsql AS $fn$
       BEGIN
         IF NEW.shard = 0 AND NEW.status <> 'pending'
            AND (SELECT count(*) FROM midi.files WHERE shard = 0 AND status <> 'pending') >= 10 THEN
           PERFORM pg_advisory_xact_lock_shared(${HOLD_CLASS}, 0);
         END IF;
         RETURN NEW;
       END $fn$;
       CREATE TRIGGER hold BEFORE INSERT OR UPDATE ON midi.files FOR EACH ROW EXECUTE FUNCTION hold.files();`,
    );
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1, 0)', [HOLD_CLASS]);
      const old = startPrevious(shardArgs(0, ['--batch-files', '10']), url);
      await waitUntil(
        'the old runner to wait at the hold',
        async () =>
          (
            await query<{ n: number }>(
              url,
              `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND classid = ${HOLD_CLASS} AND NOT granted`,
            )
          )[0]!.n > 0,
        60_000,
      );
      const committedBeforeUpgrade = (
        await query<{ n: number }>(
          url,
          "SELECT count(*)::int AS n FROM midi.files WHERE shard = 0 AND status <> 'pending'",
        )
      )[0]!.n;
      expect(committedBeforeUpgrade).toBeGreaterThan(0);
      expect(committedBeforeUpgrade).toBeLessThan(FILES / SHARDS);

      const fresh = await runCli(shardArgs(1), { DATABASE_URL: url });
      expect(fresh.code, fresh.stderr.slice(-2000)).toBe(0);
      expect(await hasSchemaSteps(url)).toBe(true);

      await holder.query('SELECT pg_advisory_unlock($1, 0)', [HOLD_CLASS]);
      const exit = await old;
      expect(exit.code, exit.stderr.slice(-2000)).toBe(0);
    } finally {
      await holder.end();
    }
    expect(await recordedOnce(url)).toEqual(once);
  });

  it('a contract step that needs newer code stops the previous release (its fence in schema_migrations) and this one, each saying why', async () => {
    const url = await db.createDatabase();
    const version = MIGRATIONS.at(-1)!.version + 1;
    const dropAttempts: Migration = {
      version,
      name: 'drop-attempts',
      sql: 'ALTER TABLE midi.files DROP COLUMN attempts',
      kind: 'contract',
      compatibleFrom: version,
    };
    expect((await runCli(scanArgs(), { DATABASE_URL: url })).code).toBe(0);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await migrate(client, [...MIGRATIONS, dropAttempts], { contract: true });
    } finally {
      await client.end();
    }
    const old = await startPrevious(shardArgs(0), url);
    expect(old.code).toBe(64);
    expect(old.stderr).toContain(
      `database schema is at version ${version} but this release knows only up to ${previous.knows}`,
    );
    const current = await runCli(shardArgs(0), { DATABASE_URL: url });
    expect(current.code).toBe(64);
    expect(current.stderr).toContain(`database has migration ${version} (drop-attempts), a contract step`);
    expect(
      (await query<{ n: number }>(url, "SELECT count(*)::int AS n FROM midi.files WHERE status <> 'pending'"))[0]!.n,
    ).toBe(0);
  });

  it("this release's runner writes past columns a later expand step adds (NOT NULL with a default) to every table", async () => {
    const url = await db.createDatabase();
    const tables = ['corpora', 'files', 'file_analysis', 'tracks', 'channel_instruments', 'split_tracks'];
    const addNotes: Migration = {
      version: MIGRATIONS.at(-1)!.version + 1,
      name: 'add-notes',
      sql: tables.map((t) => `ALTER TABLE midi.${t} ADD COLUMN later text NOT NULL DEFAULT 'default';`).join('\n'),
      kind: 'expand',
    };
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await migrate(client, [...MIGRATIONS, addNotes]);
    } finally {
      await client.end();
    }
    expect((await runCli(scanArgs(), { DATABASE_URL: url })).code).toBe(0);
    const split = path.join(tmp, 'split');
    for (const shard of [0, 1]) {
      const exit = await runCli(shardArgs(shard, ['--split-output', split]), { DATABASE_URL: url });
      expect(exit.code, exit.stderr.slice(-2000)).toBe(0);
    }
    expect(await recordedOnce(url)).toEqual(once);
    const counts = await query<Record<string, number>>(
      url,
      `SELECT ${tables.map((t) => `(SELECT count(*)::int FROM midi.${t}) AS ${t}, (SELECT count(*)::int FROM midi.${t} WHERE later = 'default') AS ${t}_default`).join(', ')}`,
    );
    for (const t of tables) {
      expect(counts[0]![t], `rows in midi.${t}`).toBeGreaterThan(0);
      expect(counts[0]![`${t}_default`], `rows of midi.${t} with the column's default`).toBe(counts[0]![t]);
    }
  });
});
