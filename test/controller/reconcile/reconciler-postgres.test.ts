import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { migrate } from '../../../job-runner/db/migrations.js';
import { PostgresDatabaseAccess } from '../../../controller/reconcile/database.js';
import { startTestPostgres, type TestPostgres } from '../../support/postgres.js';
import type { CorpusOptions } from '../fixtures.js';
import { condition, scanAnswer, setupReconciler } from './harness.js';

// What the reconcile reads from the database itself, through the real PostgresDatabaseAccess. A real Postgres with
// max_connections 20: with the default reserved 3 and headroom 2 and the operator's 1, runner pods and scans may hold
// 14 connections together. A runner pod with 1 CPU holds 2 (one writer + one control).
let db: TestPostgres;
let url: string;
beforeAll(async () => {
  db = await startTestPostgres({ maxConnections: 20 });
  url = await db.createDatabase();
});
afterAll(async () => db?.destroy());

const setup = (...corpora: CorpusOptions[]) =>
  setupReconciler(
    {
      url,
      database: (world) =>
        new PostgresDatabaseAccess({ readSecret: async (ns, name) => world.secrets.get(`${ns}/${name}`) }),
    },
    corpora,
  );

describe('Reconciler', () => {
  it('takes a corpus from scan to one Indexed Job sized by the budget, reading max_connections from the server', async () => {
    const { world, pass, corpus } = setup({ name: 'a', uid: 'uid-a' });
    await pass('a');
    expect(world.writes).toEqual(['create a-scan parallelism=1']);
    expect(world.job('a-scan')!.metadata!.annotations).toMatchObject({ 'midi.corpus.dev/connections-per-pod': '1' });

    await pass('a');
    expect(corpus('a').status?.phase).toBe('Scanning');
    expect(corpus('a').status?.budget).toMatchObject({
      limit: 20,
      reserved: 3,
      headroom: 2,
      operator: 2,
      allowance: 13,
    });

    world.finishScan('a-scan', scanAnswer('a', 2500, 3));
    await pass('a');
    expect(corpus('a').status).toMatchObject({ phase: 'Running', files: { total: 2500 }, shards: { total: 3 } });

    await pass('a');
    expect(world.writes.at(-1)).toBe('create a-run parallelism=3');
    const run = world.job('a-run')!;
    expect(run.spec).toMatchObject({ completionMode: 'Indexed', completions: 3, parallelism: 3 });

    const again = await pass('a');
    expect(again.requeueAfterMs).toBe(30_000);
    const writes = world.writes.length;
    await pass('a');
    expect(world.writes.length).toBe(writes); // level-triggered: nothing changed, nothing written
  });

  it('never puts the URL or its password in status or Events', async () => {
    const { world, pass, corpus } = setup({ name: 'a', uid: 'uid-a' });
    world.setSecret('music/db', { url: 'postgres://u:hunter2@127.0.0.1:1/x' }); // nothing listens: max_connections unknown
    await pass('a');
    await pass('a');
    const text = JSON.stringify([corpus('a').status, world.events]);
    expect(text).not.toMatch(/hunter2|postgres:\/\//);
    expect(condition(corpus('a'), 'BudgetLimited')).toMatchObject({ status: 'True', reason: 'DatabaseUnreachable' });
    expect(world.jobList).toEqual([]);
  });

  it('reads progress counts from the database', async () => {
    const progressUrl = await db.createDatabase();
    const client = new pg.Client({ connectionString: progressUrl });
    await client.connect();
    try {
      await migrate(client);
      const { rows } = await client.query<{ id: string }>(
        "INSERT INTO midi.corpora (key, shard_count) VALUES ('music/a', 1) RETURNING id",
      );
      const id = rows[0]!.id;
      await client.query(
        `INSERT INTO midi.files (corpus_id, raw_path, path, size_bytes, shard, status, reason, sha256, analysed_at) VALUES
        ($1, 'a', 'a', 1, 0, 'pending', NULL, NULL, NULL),
        ($1, 'b', 'b', 1, 0, 'ok', NULL, decode(repeat('00', 32), 'hex'), now()),
        ($1, 'c', 'c', 1, 0, 'failed', 'truncated', NULL, now())`,
        [id],
      );
    } finally {
      await client.end();
    }
    const running = {
      phase: 'Running' as const,
      files: { total: 3, processed: 0, failed: 0 },
      shards: { total: 1, succeeded: 0, failed: 0 },
    };
    const { world, pass, corpus } = setup({ name: 'a', uid: 'uid-a', status: running });
    world.setSecret('music/db', { url: progressUrl });
    await pass('a');
    await pass('a');
    expect(corpus('a').status?.files).toEqual({ total: 3, processed: 2, failed: 1 });
  });

  it('counts the files once more, unthrottled, when the run finishes: a finished corpus never shows stale counts', async () => {
    const finalUrl = await db.createDatabase();
    const client = new pg.Client({ connectionString: finalUrl });
    await client.connect();
    const record = (status: string, path: string) =>
      client.query(
        `INSERT INTO midi.files (corpus_id, raw_path, path, size_bytes, shard, status, reason, sha256, analysed_at)
      SELECT id, $2::text::bytea, $2, 1, 0, $1, CASE WHEN $1 = 'failed' THEN 'truncated' END, CASE WHEN $1 = 'ok' THEN decode(repeat('00', 32), 'hex') END, now()
        FROM midi.corpora WHERE key = 'music/a'`,
        [status, path],
      );
    try {
      await migrate(client);
      await client.query("INSERT INTO midi.corpora (key, shard_count) VALUES ('music/a', 1)");
      const running = {
        phase: 'Running' as const,
        files: { total: 3, processed: 0, failed: 0 },
        shards: { total: 1, succeeded: 0, failed: 0 },
      };
      const { world, pass, corpus } = setup({
        name: 'a',
        uid: 'uid-a',
        status: running,
        spec: { database: { maxConnections: 20 } },
      });
      world.setSecret('music/db', { url: finalUrl });
      await pass('a'); // creates the run Job
      await pass('a'); // counts: nothing recorded yet
      expect(corpus('a').status?.files).toEqual({ total: 3, processed: 0, failed: 0 });
      // The runner records every file and the Job completes within the 30 s the progress count is throttled for.
      await record('ok', 'x.mid');
      await record('ok', 'y.mid');
      await record('failed', 'z.mid');
      world.job('a-run')!.status = { succeeded: 1, conditions: [{ type: 'Complete', status: 'True' }] };
      await pass('a');
      expect(corpus('a').status).toMatchObject({ phase: 'Succeeded', files: { total: 3, processed: 3, failed: 1 } });
    } finally {
      await client.end();
    }
  });
});
