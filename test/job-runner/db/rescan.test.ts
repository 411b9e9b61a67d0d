import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { migrate } from '../../../job-runner/db/migrations.js';
import {
  corpusCounts,
  ensureCorpus,
  recordScan,
  shardFiles,
  writeBatch,
  type FileResult,
  type ScannedFile,
} from '../../../job-runner/db/store.js';
import { planShards, type ShardRequest } from '../../../contract/shards.js';
import { startTestPostgres, type TestPostgres } from '../../support/postgres.js';
import { ANALYSIS_VERSION } from '../../../job-runner/analysis/version.js';
import { okResult as anyVersion, sha256 } from './analysis-fixture.js';

/** A rescan of a corpus key compares with the last scan: what it inserts, sends back to pending, parks and marks missing. */
describe('a rescan', () => {
  let db: TestPostgres;
  let client: pg.Client;
  let corpus: number;

  beforeAll(async () => {
    db = await startTestPostgres();
    client = new pg.Client({ connectionString: await db.createDatabase() });
    await client.connect();
    await migrate(client);
  });
  afterAll(async () => {
    await client?.end();
    await db?.destroy();
  });
  let n = 0;
  beforeEach(async () => {
    corpus = await ensureCorpus(client, `rescan-${++n}`);
  });

  const T = 1_760_000_000_000_000; // µs since the epoch
  const file = (path: string, size = 1234, modifiedUs: number | null = T): ScannedFile => ({ path, size, modifiedUs });
  const perTwo = { shards: { filesPerShard: 2 } as ShardRequest };

  interface Row {
    path: string;
    status: string;
    shard: number;
    sha: boolean;
    analysed: boolean;
    attempts: number;
    modified_at: Date | null;
  }
  async function rows(): Promise<Record<string, Row>> {
    const { rows } = await client.query<Row>(
      `SELECT f.path, f.status, f.shard, f.sha256 IS NOT NULL AS sha, a.file_id IS NOT NULL AS analysed, f.attempts,
              f.modified_at
         FROM midi.files f LEFT JOIN midi.file_analysis a ON a.file_id = f.id WHERE f.corpus_id = $1`,
      [corpus],
    );
    return Object.fromEntries(rows.map((r) => [r.path, r]));
  }
  /** Analysed by this release's analysis: an older version's result would be work again. */
  const okResult = (path: string): FileResult => ({ ...anyVersion(path), analysisVersion: ANALYSIS_VERSION });
  const failedWithHash = (path: string): FileResult => ({
    path,
    size: 1234,
    shard: 0,
    sha256: sha256(path),
    outcome: { status: 'failed', reason: 'truncated', warnings: [] },
    analysisVersion: ANALYSIS_VERSION,
  });
  const unreadable = (path: string): FileResult => ({
    path,
    size: 1234,
    shard: 0,
    sha256: null,
    outcome: { status: 'failed', reason: 'file could not be read (EACCES)', warnings: [] },
  });

  it('on a first scan, every file is added and needs work', async () => {
    const summary = await recordScan(
      client,
      corpus,
      ['a', 'b', 'c'].map((p) => file(`${p}.mid`)),
      perTwo,
    );
    expect(summary).toEqual({ files: 3, added: 3, changed: 0, unchanged: 0, missing: 0, work: 3, shards: 2 });
    const r = await rows();
    expect([r['a.mid']!.shard, r['b.mid']!.shard, r['c.mid']!.shard]).toEqual([0, 0, 1]);
    expect(r['a.mid']!.modified_at).toEqual(new Date(T / 1000));
  });

  it('of an unchanged, finished corpus has no work and no shards; nothing is touched', async () => {
    await recordScan(client, corpus, [file('a.mid'), file('b.mid')], perTwo);
    await writeBatch(client, corpus, [okResult('a.mid'), okResult('b.mid')]);
    const before = await rows();
    const summary = await recordScan(client, corpus, [file('a.mid'), file('b.mid')], perTwo);
    expect(summary).toEqual({ files: 2, added: 0, changed: 0, unchanged: 2, missing: 0, work: 0, shards: 0 });
    const after = await rows();
    // Parked one past the last shard (0 shards: shard 0 is not a run's index), results and attempts as they were.
    expect(Object.values(after).map((r) => [r.status, r.shard, r.sha, r.analysed, r.attempts])).toEqual([
      ['ok', 0, true, true, 1],
      ['ok', 0, true, true, 1],
    ]);
    expect(after['a.mid']!.attempts).toBe(before['a.mid']!.attempts);
  });

  it('of an unchanged corpus writes no row, not even a lock: every row stays the version it was', async () => {
    const listing = Array.from({ length: 50 }, (_, i) => file(`f${i}.mid`));
    await recordScan(client, corpus, listing, perTwo);
    await writeBatch(
      client,
      corpus,
      listing.slice(0, 20).map((f) => okResult(String(f.path))),
    );
    await recordScan(client, corpus, listing, perTwo); // settles the shards of the 30 still to do
    // ctid is a row version's place, xmax the transaction that updated, deleted or locked it (0: none did).
    const versions = async () =>
      (
        await client.query<{ path: string; ctid: string; xmax: string }>(
          'SELECT path, ctid::text, xmax::text FROM midi.files WHERE corpus_id = $1 ORDER BY path',
          [corpus],
        )
      ).rows;
    const before = await versions();
    expect(await recordScan(client, corpus, listing, perTwo)).toMatchObject({ unchanged: 50, work: 30, shards: 15 });
    expect(await versions()).toEqual(before);
    expect(before.every((r) => r.xmax === '0')).toBe(true);
  });

  it('gives shards only to added, changed, failed, pending and unread files; parks the rest; marks the gone missing', async () => {
    await recordScan(
      client,
      corpus,
      ['ok', 'resized', 'touched', 'failed', 'unread', 'pending', 'gone', 'gone-failed'].map((p) => file(`${p}.mid`)),
      perTwo,
    );
    await writeBatch(client, corpus, [
      okResult('ok.mid'),
      okResult('resized.mid'),
      okResult('touched.mid'),
      failedWithHash('failed.mid'),
      unreadable('unread.mid'),
      okResult('gone.mid'),
      failedWithHash('gone-failed.mid'),
    ]);

    const summary = await recordScan(
      client,
      corpus,
      [
        file('ok.mid'),
        file('resized.mid', 4321),
        file('touched.mid', 1234, T + 1),
        file('failed.mid'),
        file('unread.mid'),
        file('pending.mid'),
        file('new.mid'),
      ],
      perTwo,
    );
    expect(summary).toEqual({ files: 7, added: 1, changed: 2, unchanged: 4, missing: 2, work: 6, shards: 3 });
    const r = await rows();
    const view = (p: string) => [r[p]!.status, r[p]!.shard, r[p]!.sha, r[p]!.analysed];
    // The work, in path order: failed, new, pending | resized, touched, unread → shards 0, 0, 1, 1, 2, 2.
    expect(view('failed.mid')).toEqual(['failed', 0, true, false]);
    expect(view('new.mid')).toEqual(['pending', 0, false, false]);
    expect(view('pending.mid')).toEqual(['pending', 1, false, false]);
    // Changed: pending with the hash cleared (so the runner analyses it), the old analysis kept until replaced.
    expect(view('resized.mid')).toEqual(['pending', 1, false, true]);
    expect(view('touched.mid')).toEqual(['pending', 2, false, true]);
    expect(view('unread.mid')).toEqual(['pending', 2, false, false]);
    // Unchanged and analysed: parked on shard 3, which the run's Indexed Job (completions 3) never runs.
    expect(view('ok.mid')).toEqual(['ok', 3, true, true]);
    expect(view('gone.mid')).toEqual(['missing', 3, true, true]);
    expect(view('gone-failed.mid')).toEqual(['missing', 3, true, false]);
    expect(await corpusCounts(client, corpus)).toEqual({
      total: 7,
      ok: 1,
      failed: 1,
      skipped: 0,
      pending: 5,
      missing: 2,
    });
    const { rows: reasons } = await client.query(
      `SELECT reason FROM midi.files WHERE corpus_id = $1 AND path = 'gone-failed.mid'`,
      [corpus],
    );
    expect(reasons).toEqual([{ reason: 'truncated' }]);
    expect((await shardFiles(client, corpus, 3)).map((f) => f.displayPath).sort()).toEqual([
      'gone-failed.mid',
      'gone.mid',
      'ok.mid',
    ]);
  });

  it('a changed file analysed again replaces its old result', async () => {
    await recordScan(client, corpus, [file('a.mid')], perTwo);
    await writeBatch(client, corpus, [okResult('a.mid')]);
    await recordScan(client, corpus, [file('a.mid', 99)], perTwo);
    await writeBatch(client, corpus, [{ ...failedWithHash('a.mid'), size: 99 }]);
    const r = await rows();
    expect([r['a.mid']!.status, r['a.mid']!.analysed, r['a.mid']!.attempts]).toEqual(['failed', false, 2]);
  });

  it('a file that comes back after being missing is analysed again', async () => {
    await recordScan(client, corpus, [file('a.mid'), file('b.mid')], perTwo);
    await writeBatch(client, corpus, [okResult('a.mid'), okResult('b.mid')]);
    expect(await recordScan(client, corpus, [file('a.mid')], perTwo)).toMatchObject({ missing: 1, work: 0 });
    // Still missing on the next scan: counted, not changed again.
    expect(await recordScan(client, corpus, [file('a.mid')], perTwo)).toMatchObject({ missing: 1, work: 0 });
    const back = await recordScan(client, corpus, [file('a.mid'), file('b.mid')], perTwo);
    expect(back).toMatchObject({ changed: 1, unchanged: 1, missing: 0, work: 1, shards: 1 });
    expect((await rows())['b.mid']).toMatchObject({ status: 'pending', shard: 0, sha: false });
  });

  it('compares the size alone when a modification time is unknown, and records the time it learns', async () => {
    await recordScan(client, corpus, [file('a.mid', 1234, null), file('b.mid', 1234, null)], perTwo);
    await writeBatch(client, corpus, [okResult('a.mid'), okResult('b.mid')]);
    const summary = await recordScan(client, corpus, [file('a.mid', 1234, T), file('b.mid', 1234, null)], perTwo);
    expect(summary).toMatchObject({ changed: 0, unchanged: 2, work: 0 });
    const r = await rows();
    expect(r['a.mid']!.modified_at).toEqual(new Date(T / 1000));
    expect(r['b.mid']!.modified_at).toBeNull();
    // Now that it is known, a different time is a change.
    expect(await recordScan(client, corpus, [file('a.mid', 1234, T + 5), file('b.mid')], perTwo)).toMatchObject({
      changed: 1,
      work: 1,
    });
  });

  it('entries the listing marks as problems are never given a run shard', async () => {
    const summary = await recordScan(
      client,
      corpus,
      [file('a.mid'), { path: 'fifo.mid', size: 0, modifiedUs: null, problem: true }],
      perTwo,
    );
    expect(summary).toMatchObject({ files: 2, added: 2, work: 1, shards: 1 });
    expect((await rows())['fifo.mid']!.shard).toBe(1);
  });

  it('an ok file made by an older analysis version is work again', async () => {
    await recordScan(client, corpus, [file('a.mid'), file('b.mid')], perTwo);
    await writeBatch(client, corpus, [
      okResult('a.mid'),
      { ...okResult('b.mid'), analysisVersion: ANALYSIS_VERSION - 1 || undefined },
    ]);
    expect(await recordScan(client, corpus, [file('a.mid'), file('b.mid')], perTwo)).toMatchObject({
      unchanged: 2,
      work: 1,
    });
    expect((await rows())['b.mid']).toMatchObject({ status: 'ok', shard: 0, sha: true });
  });

  it.each([
    ['balanced', 100, { shards: 7 }],
    ['balanced, more shards than work', 3, { shards: 8 }],
    ['per shard', 1001, { filesPerShard: 250 }],
  ] as const)("assigns the work's shards exactly as planShards does (%s)", async (_, count, request) => {
    const paths = Array.from({ length: count }, (_, i) => `f${String(i).padStart(5, '0')}.mid`);
    const summary = await recordScan(
      client,
      corpus,
      paths.map((p) => file(p)),
      { shards: request },
    );
    const plan = planShards(count, request);
    expect(summary.shards).toBe(plan.shards);
    const r = await rows();
    expect(paths.map((p) => r[p]!.shard)).toEqual(paths.map((_, i) => plan.shardOf(i)));
  });

  it('decides the shard request from the number of files that need work', async () => {
    await recordScan(
      client,
      corpus,
      ['a', 'b', 'c', 'd'].map((p) => file(`${p}.mid`)),
      perTwo,
    );
    await writeBatch(client, corpus, [okResult('a.mid'), okResult('b.mid'), okResult('c.mid')]);
    const seen: number[] = [];
    const summary = await recordScan(
      client,
      corpus,
      ['a', 'b', 'c', 'd'].map((p) => file(`${p}.mid`)),
      {
        shards: (work) => {
          seen.push(work);
          return { shards: 4 };
        },
      },
    );
    expect(seen).toEqual([1]);
    expect(summary).toMatchObject({ work: 1, shards: 1 });
  });
});
