import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { migrate } from '../../../job-runner/db/migrations.js';
import { createLogger } from '../../../common/log.js';
import type { MidiCorpus } from '../../../controller/api/v1alpha1/midicorpus.js';
import { DatabaseAccess } from '../../../controller/reconcile/database.js';
import { Reconciler } from '../../../controller/reconcile/reconciler.js';
import { startTestPostgres, type TestPostgres } from '../../support/postgres.js';
import { makeCorpus, type CorpusOptions } from '../fixtures.js';
import { World } from './world.js';

// A real Postgres with max_connections 20: with the default reserved 3 and headroom 2 and the operator's 1, runner
// pods and scans may hold 14 connections together. A runner pod with 1 CPU holds 2 (one writer + one control).
let db: TestPostgres;
let url: string;
beforeAll(async () => {
  db = await startTestPostgres({ maxConnections: 20 });
  url = await db.createDatabase();
});
afterAll(async () => db?.destroy());

const log = createLogger({ level: 'silent' });

function setup(...corpora: CorpusOptions[]) {
  const world = new World();
  world.secrets.set('music/db', { url });
  for (const c of corpora) world.addCorpus(makeCorpus(c));
  const queued: string[] = [];
  const reconciler = new Reconciler({
    caches: world,
    writer: world,
    database: new DatabaseAccess({ readSecret: async (ns, name) => world.secrets.get(`${ns}/${name}`) }),
    defaultImage: 'example/midi-corpus:test',
    enqueue: (key) => queued.push(key),
    now: () => new Date('2025-03-01T12:00:00Z'),
    log,
  });
  const pass = (name: string) => reconciler.reconcile(`music/${name}`);
  const corpus = (name: string) => world.corpus('music', name)!;
  return { world, reconciler, pass, corpus, queued };
}

const condition = (c: MidiCorpus, type: string) => c.status?.conditions?.find((x) => x.type === type);
const scanAnswer = (name: string, files: number, shards: number) =>
  JSON.stringify({ corpus: `music/${name}`, files, bytes: files * 1000, shards });

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

  it('refuses to act without the Secret, says so, and looks again later', async () => {
    const { world, pass, corpus } = setup({ name: 'a', spec: { database: { secretRef: { name: 'missing' } } } });
    const r = await pass('a');
    expect(world.jobList).toEqual([]);
    expect(corpus('a').status?.phase).toBe('Invalid');
    expect(condition(corpus('a'), 'InvalidSpec')).toMatchObject({
      status: 'True',
      reason: 'SecretNotFound',
      message: 'Secret music/missing not found.',
    });
    expect(r.requeueAfterMs).toBe(60_000);
    expect(world.events).toEqual([expect.objectContaining({ type: 'Warning', reason: 'SecretNotFound' })]);
  });

  it('never puts the URL or its password in status or Events', async () => {
    const { world, pass, corpus } = setup({ name: 'a', uid: 'uid-a' });
    world.secrets.set('music/db', { url: 'postgres://u:hunter2@127.0.0.1:1/x' }); // nothing listens: max_connections unknown
    await pass('a');
    await pass('a');
    const text = JSON.stringify([corpus('a').status, world.events]);
    expect(text).not.toMatch(/hunter2|postgres:\/\//);
    expect(condition(corpus('a'), 'BudgetLimited')).toMatchObject({ status: 'True', reason: 'DatabaseUnreachable' });
    expect(world.jobList).toEqual([]);
  });

  it('starts no pod when not even one fits, and says what to change', async () => {
    const running = {
      phase: 'Running' as const,
      files: { total: 10, processed: 0, failed: 0 },
      shards: { total: 10, succeeded: 0, failed: 0 },
    };
    const { world, pass, corpus } = setup({
      name: 'big',
      uid: 'uid-big',
      status: running,
      spec: { database: { maxConnections: 10 }, runner: { resources: { requests: { cpu: '4' } } } },
    });
    await pass('big');
    expect(world.writes).toEqual(['create big-run parallelism=0']);
    await pass('big');
    expect(condition(corpus('big'), 'BudgetLimited')).toMatchObject({ status: 'True', reason: 'BudgetExhausted' });
    expect(condition(corpus('big'), 'BudgetLimited')!.message).toMatch(
      /one pod holds up to 5 connections, the allowance is 4 .*Raise max_connections/,
    );
  });

  it("shares a database: a newcomer's scan waits until the first corpus has shrunk and its pods are gone", async () => {
    const running = {
      phase: 'Running' as const,
      files: { total: 100_000, processed: 0, failed: 0 },
      shards: { total: 100, succeeded: 0, failed: 0 },
    };
    const { world, pass, corpus, queued } = setup({
      name: 'a',
      uid: 'uid-a',
      createdAt: '2025-01-01T00:00:00Z',
      status: running,
      spec: { database: { maxConnections: 20 } },
    });
    await pass('a');
    expect(world.writes).toEqual(['create a-run parallelism=7']); // 14 connections / 2 per pod
    world.startPods('a-run', 7);

    world.addCorpus(
      makeCorpus({
        name: 'b',
        uid: 'uid-b',
        createdAt: '2025-01-02T00:00:00Z',
        spec: { database: { maxConnections: 20 } },
      }),
    );
    await pass('b');
    expect(world.job('b-scan')).toBeUndefined(); // all 14 connections are held by a's pods
    expect(condition(corpus('b'), 'BudgetLimited')).toMatchObject({ status: 'True', reason: 'BudgetShared' });
    expect(queued).toContain('music/a'); // b's claim is new: a must look again now, not at its next resync

    await pass('a'); // b's scan sets one connection aside: a shrinks to 6 pods
    expect(world.writes.at(-1)).toBe('patch a-run parallelism=6 suspend=false');
    expect(queued).toContain('music/b');
    world.trimToParallelism('a-run');
    await pass('b');
    expect(world.job('b-scan')).toBeUndefined(); // the 7th pod is Terminating: its connections are still held

    world.removeTerminating();
    await pass('b');
    expect(world.job('b-scan')).toBeDefined();
    world.startPods('b-scan', 1);

    // The scan reports; b's share is planned while a's pods still hold theirs.
    world.finishScan('b-scan', scanAnswer('b', 50_000, 50));
    await pass('b'); // records the totals
    await pass('b'); // creates the run Job: a still holds 6 pods = 12 connections, so b may start only 1
    expect(world.writes.at(-1)).toBe('create b-run parallelism=1');
    await pass('a'); // fair share of 14: 4 pods each (8 + 8 > 14 → the older gets the odd pod: 4 and 3)
    expect(world.writes.at(-1)).toBe('patch a-run parallelism=4 suspend=false');
    world.trimToParallelism('a-run');
    await pass('b');
    expect(world.job('b-run')!.spec!.parallelism).toBe(1); // a's 2 stopping pods still count
    world.removeTerminating();
    await pass('b');
    expect(world.job('b-run')!.spec!.parallelism).toBe(3);

    // At no point did a's pods plus b's allowed pods exceed the allowance.
    world.startPods('b-run', 3);
    const held = world.livePods('a-run').length * 2 + world.livePods('b-run').length * 2;
    expect(held).toBeLessThanOrEqual(14);
  });

  it("hands a deleted corpus's share to the other once its pods are gone", async () => {
    const running = {
      phase: 'Running' as const,
      files: { total: 100_000, processed: 0, failed: 0 },
      shards: { total: 100, succeeded: 0, failed: 0 },
    };
    const spec = { database: { maxConnections: 20 } };
    const { world, pass } = setup(
      { name: 'a', uid: 'uid-a', createdAt: '2025-01-01T00:00:00Z', status: running, spec },
      { name: 'b', uid: 'uid-b', createdAt: '2025-01-02T00:00:00Z', status: running, spec },
    );
    await pass('a');
    await pass('b');
    expect(world.writes).toEqual(['create a-run parallelism=4', 'create b-run parallelism=3']);
    world.startPods('a-run', 4);
    world.startPods('b-run', 3);

    world.corpusMap.delete('music/a'); // its Job stays until the garbage collector removes it
    await pass('a');
    await pass('b');
    expect(world.job('b-run')!.spec!.parallelism).toBe(3); // a's Job may still run 4 pods
    world.jobList = world.jobList.filter((j) => j.metadata!.name !== 'a-run');
    for (const p of world.livePods('a-run')) p.metadata!.deletionTimestamp = new Date();
    await pass('b');
    expect(world.job('b-run')!.spec!.parallelism).toBe(3); // its pods are stopping
    world.removeTerminating();
    await pass('b');
    expect(world.job('b-run')!.spec!.parallelism).toBe(7);
  });

  it('suspends and resumes the run Job with the spec', async () => {
    const running = {
      phase: 'Running' as const,
      files: { total: 10, processed: 0, failed: 0 },
      shards: { total: 10, succeeded: 0, failed: 0 },
    };
    const { world, pass, corpus } = setup({
      name: 'a',
      uid: 'uid-a',
      status: running,
      spec: { database: { maxConnections: 20 } },
    });
    await pass('a');
    world.addCorpus({ ...corpus('a'), spec: { ...corpus('a').spec, suspend: true } });
    await pass('a');
    expect(world.writes.at(-1)).toBe('patch a-run parallelism=0 suspend=true');
    await pass('a');
    expect(corpus('a').status?.phase).toBe('Suspended');
    world.addCorpus({ ...corpus('a'), spec: { ...corpus('a').spec, suspend: false } });
    await pass('a');
    expect(world.writes.at(-1)).toBe('patch a-run parallelism=7 suspend=false');
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
    world.secrets.set('music/db', { url: progressUrl });
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
      world.secrets.set('music/db', { url: finalUrl });
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
