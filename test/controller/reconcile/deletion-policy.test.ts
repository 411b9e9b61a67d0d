import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../../../job-runner/db/migrations.js';
import { ensureCorpus, recordScan, writeBatch } from '../../../job-runner/db/store.js';
import { PostgresDatabaseAccess } from '../../../controller/reconcile/database.js';
import { FINALIZER, GIVE_UP_MS, planDeletion } from '../../../controller/plan/deletion.js';
import { startTestPostgres, type TestPostgres } from '../../support/postgres.js';
import { okResult } from '../../job-runner/db/analysis-fixture.js';
import { jobWith, makeCorpus, type CorpusOptions } from '../fixtures.js';
import { condition, setupReconciler } from './harness.js';
import type { World } from './world.js';

// spec.deletionPolicy through the real PostgresDatabaseAccess, on a real Postgres: what deleting a MidiCorpus does to
// its rows.
let db: TestPostgres;
let url: string;
let client: pg.Client;
beforeAll(async () => {
  db = await startTestPostgres({ maxConnections: 20 });
  url = await db.createDatabase();
  client = new pg.Client({ connectionString: url });
  await client.connect();
  await migrate(client);
});
afterAll(async () => {
  await client?.end();
  await db?.destroy();
});

const setup = (...corpora: CorpusOptions[]) =>
  setupReconciler(
    {
      url,
      database: (world) =>
        new PostgresDatabaseAccess({ readSecret: async (ns, name) => world.secrets.get(`${ns}/${name}`) }),
    },
    corpora,
  );

/** A corpus key with `n` analysed files, as a run would leave it. */
async function seed(key: string, n: number): Promise<void> {
  const id = await ensureCorpus(client, key);
  const paths = Array.from({ length: n }, (_, i) => `f${i}.mid`);
  await recordScan(
    client,
    id,
    paths.map((p) => ({ path: p, size: 1234 })),
    { shards: { shards: 1 } },
  );
  await writeBatch(
    client,
    id,
    paths.map((p) => okResult(p)),
  );
}

async function rowsOf(key: string): Promise<{ corpora: number; files: number; analyses: number }> {
  const { rows } = await client.query<{ corpora: number; files: number; analyses: number }>(
    `SELECT (SELECT count(*)::int FROM midi.corpora WHERE key = $1) AS corpora,
            (SELECT count(*)::int FROM midi.files f JOIN midi.corpora c ON c.id = f.corpus_id WHERE c.key = $1) AS files,
            (SELECT count(*)::int FROM midi.file_analysis a JOIN midi.files f ON f.id = a.file_id
               JOIN midi.corpora c ON c.id = f.corpus_id WHERE c.key = $1) AS analyses`,
    [key],
  );
  return rows[0]!;
}

/** What `kubectl delete` does to an object with finalizers: it stays, with a deletionTimestamp. */
function requestDeletion(world: World, name: string, at: Date): void {
  const c = world.corpus('music', name)!;
  world.addCorpus({ ...c, metadata: { ...c.metadata, deletionTimestamp: at } });
}

const succeeded = { phase: 'Succeeded' as const, files: { total: 5, processed: 5, failed: 0 } };

describe('spec.deletionPolicy', () => {
  it('Keep (the default): no finalizer, and deleting the corpus leaves its rows', async () => {
    await seed('music/keep', 5);
    const { world, pass, corpus } = setup({ name: 'keep', uid: 'uid-keep', status: succeeded });
    await pass('keep');
    expect(corpus('keep').metadata.finalizers).toBeUndefined();
    requestDeletion(world, 'keep', new Date());
    await pass('keep');
    expect(world.writes.filter((w) => w.startsWith('finalizers'))).toEqual([]);
    expect(await rowsOf('music/keep')).toEqual({ corpora: 1, files: 5, analyses: 5 });
  });

  it('Delete: a finalizer; on deletion the unfinished Job is stopped, its pods awaited, the rows deleted, the object let go', async () => {
    await seed('music/del', 5);
    await seed('music/other', 3);
    const { world, pass } = setup({
      name: 'del',
      uid: 'uid-del',
      spec: { deletionPolicy: 'Delete', database: { maxConnections: 20 } },
      status: {
        phase: 'Running',
        files: { total: 5, processed: 5, failed: 0 },
        shards: { total: 1, succeeded: 0, failed: 0 },
      },
    });
    await pass('del');
    expect(world.writes).toEqual([`finalizers music/del [${FINALIZER}]`]);
    await pass('del');
    expect(world.writes.at(-1)).toBe('create del-run parallelism=1');
    world.startPods('del-run', 1);

    requestDeletion(world, 'del', new Date());
    await pass('del');
    expect(world.writes.at(-1)).toBe('delete del-run');
    // Its pod is stopping and may still write: the rows stay until it is gone.
    await pass('del');
    expect(await rowsOf('music/del')).toEqual({ corpora: 1, files: 5, analyses: 5 });
    world.removeTerminating();
    await pass('del');
    expect(await rowsOf('music/del')).toEqual({ corpora: 0, files: 0, analyses: 0 });
    expect(await rowsOf('music/other')).toEqual({ corpora: 1, files: 3, analyses: 3 });
    expect(world.corpus('music', 'del')).toBeUndefined();
    expect(world.events.at(-1)).toMatchObject({ type: 'Normal', reason: 'RowsDeleted' });
  });

  it('Delete with the database unreachable: status and a Warning Event say so (no URL), and Keep lets it go with the rows', async () => {
    await seed('music/stuck', 2);
    const { world, pass, corpus } = setup({
      name: 'stuck',
      uid: 'uid-stuck',
      spec: { deletionPolicy: 'Delete' },
      status: succeeded,
    });
    await pass('stuck');
    world.setSecret('music/db', { url: 'postgres://u:hunter2@127.0.0.1:1/x' }); // nothing listens there
    requestDeletion(world, 'stuck', new Date());
    const r = await pass('stuck');
    expect(r.requeueAfterMs).toBe(30_000);
    expect(condition(corpus('stuck'), 'Progressing')).toMatchObject({ status: 'True', reason: 'RowsNotDeleted' });
    expect(condition(corpus('stuck'), 'Progressing')!.message).toMatch(/set spec.deletionPolicy to Keep/);
    expect(world.events.at(-1)).toMatchObject({ type: 'Warning', reason: 'RowsNotDeleted' });
    expect(JSON.stringify([corpus('stuck').status, world.events])).not.toMatch(/hunter2|postgres:\/\//);
    const events = world.events.length;
    await pass('stuck');
    expect(world.events.length).toBe(events); // said once, not every retry

    // The escape: Keep on the corpus being deleted.
    const c = corpus('stuck');
    world.addCorpus({ ...c, spec: { ...c.spec, deletionPolicy: 'Keep' } });
    await pass('stuck');
    expect(world.corpus('music', 'stuck')).toBeUndefined();
    expect(await rowsOf('music/stuck')).toMatchObject({ corpora: 1, files: 2 });
  });

  it('Delete never holds a deletion for ever: after the give-up time the object goes, rows kept, with a Warning', async () => {
    await seed('music/late', 1);
    const { world, pass, clock } = setup({
      name: 'late',
      uid: 'uid-late',
      spec: { deletionPolicy: 'Delete' },
      status: succeeded,
    });
    await pass('late');
    world.setSecret('music/db', { url: 'postgres://u:hunter2@127.0.0.1:1/x' });
    requestDeletion(world, 'late', new Date(clock.now()));
    await pass('late');
    expect(world.corpus('music', 'late')).toBeDefined();
    clock.advance(GIVE_UP_MS);
    await pass('late');
    expect(world.corpus('music', 'late')).toBeUndefined();
    expect(world.events.at(-1)).toMatchObject({ type: 'Warning', reason: 'RowsNotDeleted' });
    expect(world.events.at(-1)!.message).toMatch(/rows are kept/);
    expect(await rowsOf('music/late')).toMatchObject({ corpora: 1, files: 1 });
  });

  it('switching an existing corpus to Keep takes the finalizer off', async () => {
    const { world, pass, corpus } = setup({
      name: 'sw',
      uid: 'uid-sw',
      spec: { deletionPolicy: 'Delete' },
      status: succeeded,
    });
    await pass('sw');
    expect(corpus('sw').metadata.finalizers).toEqual([FINALIZER]);
    world.addCorpus({ ...corpus('sw'), spec: { ...corpus('sw').spec, deletionPolicy: 'Keep' } });
    await pass('sw');
    expect(corpus('sw').metadata.finalizers).toEqual([]);
  });
});

describe('planDeletion', () => {
  const now = new Date('2025-03-01T12:00:00Z');
  const deleting = (policy: 'Keep' | 'Delete', finalizers: string[], since = now) => ({
    ...makeCorpus({ spec: { deletionPolicy: policy } }),
    metadata: { ...makeCorpus().metadata, finalizers, deletionTimestamp: since },
  });
  const live = (policy: 'Keep' | 'Delete', finalizers: string[]) => ({
    ...makeCorpus({ spec: { deletionPolicy: policy } }),
    metadata: { ...makeCorpus().metadata, finalizers },
  });
  const running = jobWith('bach-run', { active: 1 });
  const pod = { metadata: { name: 'bach-run-0-x' }, status: { phase: 'Running' } };
  const table = [
    { name: 'Keep, live', corpus: live('Keep', []), jobs: [], pods: [], want: 'none' },
    { name: 'Delete, live, no finalizer yet', corpus: live('Delete', []), jobs: [], pods: [], want: 'addFinalizer' },
    { name: 'Delete, live, finalizer on', corpus: live('Delete', [FINALIZER]), jobs: [], pods: [], want: 'none' },
    {
      name: 'Keep, live, finalizer left over',
      corpus: live('Keep', [FINALIZER]),
      jobs: [],
      pods: [],
      want: 'removeFinalizer',
    },
    { name: 'deleting without our finalizer', corpus: deleting('Delete', ['other']), jobs: [], pods: [], want: 'none' },
    {
      name: 'deleting, a Job running',
      corpus: deleting('Delete', [FINALIZER]),
      jobs: [running],
      pods: [pod],
      want: 'stopJob',
    },
    { name: 'deleting, pods stopping', corpus: deleting('Delete', [FINALIZER]), jobs: [], pods: [pod], want: 'wait' },
    { name: 'deleting, all quiet', corpus: deleting('Delete', [FINALIZER]), jobs: [], pods: [], want: 'deleteRows' },
    {
      name: 'deleting, switched to Keep',
      corpus: deleting('Keep', [FINALIZER]),
      jobs: [running],
      pods: [pod],
      want: 'removeFinalizer',
    },
    {
      name: 'deleting for longer than the give-up time, pods or not',
      corpus: deleting('Delete', [FINALIZER], new Date(now.getTime() - GIVE_UP_MS)),
      jobs: [running],
      pods: [pod],
      want: 'removeFinalizer',
    },
  ] as const;
  for (const row of table)
    it(row.name, () => {
      expect(planDeletion({ corpus: row.corpus, jobs: row.jobs, livePods: row.pods, now }).kind).toBe(row.want);
    });
});
