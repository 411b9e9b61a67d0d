import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { migrate } from '../../../job-runner/db/migrations.js';
import {
  corpusCounts,
  ensureCorpus,
  failures,
  findCorpus,
  recordScan,
  shardFiles,
  writeBatch,
  type FileResult,
} from '../../../job-runner/db/store.js';
import { startTestPostgres, type TestPostgres } from '../../support/postgres.js';
import { okResult, sampleAnalysis, sha256 } from './analysis-fixture.js';

describe('the store', () => {
  let db: TestPostgres;
  let client: pg.Client;
  let corpus: number;

  beforeAll(async () => {
    // pg_stat_statements: what the server was asked to run, to see how a batch reaches it.
    db = await startTestPostgres({ settings: { shared_preload_libraries: 'pg_stat_statements' } });
    client = new pg.Client({ connectionString: await db.createDatabase() });
    await client.connect();
    await migrate(client);
    await client.query('CREATE EXTENSION pg_stat_statements');
  });
  afterAll(async () => {
    await client?.end();
    await db?.destroy();
  });
  let n = 0;
  beforeEach(async () => {
    corpus = await ensureCorpus(client, `corpus-${++n}`, { filesPerShard: 2 });
  });

  /** Every stored row of the corpus except timestamps and attempt counts, in a stable order. */
  async function snapshot(): Promise<unknown> {
    const q = async (sql: string) => (await client.query(sql, [corpus])).rows;
    return {
      files: await q(
        `SELECT raw_path, path, size_bytes, shard, status, reason, warnings, sha256 FROM midi.files WHERE corpus_id = $1 ORDER BY raw_path`,
      ),
      analysis: await q(
        `SELECT f.raw_path, a.* FROM midi.file_analysis a JOIN midi.files f ON f.id = a.file_id WHERE f.corpus_id = $1 ORDER BY f.raw_path`,
      ),
      tracks: await q(
        `SELECT f.raw_path, t.* FROM midi.tracks t JOIN midi.files f ON f.id = t.file_id WHERE f.corpus_id = $1 ORDER BY f.raw_path, t.track_index`,
      ),
      channels: await q(
        `SELECT f.raw_path, c.* FROM midi.channel_instruments c JOIN midi.files f ON f.id = c.file_id WHERE f.corpus_id = $1 ORDER BY f.raw_path, c.channel`,
      ),
      splits: await q(
        `SELECT f.raw_path, s.* FROM midi.split_tracks s JOIN midi.files f ON f.id = s.file_id WHERE f.corpus_id = $1 ORDER BY f.raw_path, s.track_index`,
      ),
    };
  }

  const failed = (path: string, reason: string): FileResult => ({
    path,
    size: 10,
    shard: 0,
    sha256: sha256(path),
    outcome: { status: 'failed', reason, warnings: ['truncated track 2'] },
  });
  const skipped = (path: string, reason: string): FileResult => ({
    path,
    size: 10,
    shard: 1,
    sha256: null,
    outcome: { status: 'skipped', reason },
  });

  it('finds a corpus by key, and ensureCorpus returns the same id every time', async () => {
    expect(await findCorpus(client, `corpus-${n}`)).toBe(corpus);
    expect(await ensureCorpus(client, `corpus-${n}`, { filesPerShard: 2 })).toBe(corpus);
    expect(await ensureCorpus(client, `corpus-${n}`, { filesPerShard: 3 })).toBe(corpus);
    expect(await findCorpus(client, 'never-recorded')).toBeNull();
  });

  it('writing the same batch twice leaves the same rows and counts', async () => {
    const batch = [
      {
        ...okResult('a.mid'),
        outcome: {
          status: 'ok' as const,
          analysis: sampleAnalysis(),
          warnings: ['unknown meta 0x60'],
          splitTracks: [{ trackIndex: 1, outputPath: 'split/a-1.mid', size: 99, sha256: sha256('a-1') }],
        },
      },
      okResult('b.mid', 1),
      failed('c.mid', 'not a MIDI file: starts with "RIFX"'),
      skipped('d.mid', 'symlink leads outside the corpus root'),
    ];
    expect(await writeBatch(client, corpus, batch)).toEqual({ ok: 2, failed: 1, skipped: 1 });
    const first = await snapshot();
    expect(await writeBatch(client, corpus, batch)).toEqual({ ok: 2, failed: 1, skipped: 1 });
    expect(await snapshot()).toEqual(first);
    expect(await corpusCounts(client, corpus)).toEqual({
      total: 4,
      ok: 2,
      failed: 1,
      skipped: 1,
      pending: 0,
      missing: 0,
    });
    const { rows } = await client.query('SELECT attempts FROM midi.files WHERE corpus_id = $1 AND path = $2', [
      corpus,
      'a.mid',
    ]);
    expect(rows).toEqual([{ attempts: 2 }]);
  });

  it('replaces the tracks, channels and split tracks of a file analysed again', async () => {
    await writeBatch(client, corpus, [okResult('a.mid')]);
    const fewer = sampleAnalysis({
      tracks: sampleAnalysis().tracks.slice(0, 1),
      channels: sampleAnalysis().channels.slice(0, 1),
    });
    await writeBatch(client, corpus, [okResult('a.mid', 0, fewer)]);
    const s = (await snapshot()) as { tracks: unknown[]; channels: unknown[]; analysis: unknown[] };
    expect([s.analysis.length, s.tracks.length, s.channels.length]).toEqual([1, 1, 1]);
  });

  it('a file that failed and then succeeds loses its reason; one that succeeded and then fails loses its analysis', async () => {
    await writeBatch(client, corpus, [failed('x.mid', 'truncated'), okResult('y.mid')]);
    await writeBatch(client, corpus, [okResult('x.mid'), failed('y.mid', 'now truncated')]);
    const s = (await snapshot()) as {
      files: Array<{ path: string; status: string; reason: string | null }>;
      analysis: Array<{ path?: string }>;
    };
    expect(s.files.map((f) => [f.path, f.status, f.reason])).toEqual([
      ['x.mid', 'ok', null],
      ['y.mid', 'failed', 'now truncated'],
    ]);
    expect(s.analysis).toHaveLength(1);
  });

  it('keeps file names that are not UTF-8 byte for byte, through COPY, shardFiles and writeBatch', async () => {
    const latin1 = Buffer.from([0x63, 0x68, 0x6f, 0x72, 0xe4, 0x6c, 0x2e, 0x6d, 0x69, 0x64]); // "choräl.mid" in Latin-1
    const awkward = Buffer.from('tab\there\nnewline\\backslash.mid');
    await recordScan(
      client,
      corpus,
      [
        { path: latin1, size: 10 },
        { path: awkward, size: 10 },
      ],
      { shards: { shards: 1 } },
    );
    const files = await shardFiles(client, corpus, 0);
    expect(files.map((f) => f.path)).toEqual([latin1, awkward].sort(Buffer.compare));
    expect(files.map((f) => f.displayPath).sort()).toEqual([
      'chor\\xe4l.mid',
      'tab\\x09here\\x0anewline\\backslash.mid',
    ]);
    await writeBatch(client, corpus, [okResult(latin1), okResult(awkward)]);
    expect(await corpusCounts(client, corpus)).toEqual({
      total: 2,
      ok: 2,
      failed: 0,
      skipped: 0,
      pending: 0,
      missing: 0,
    });
  });

  it('records every byte of every name and every modification time exactly, across COPY chunks', async () => {
    // Every byte a name may hold (not NUL or '/'), the text format's specials among them (tab, newline, CR,
    // backslash, `\.`), names long enough to fill several 64 KiB COPY chunks, and times before 1970 and 2000 (negative
    // in Postgres' binary form) and unknown.
    const every = Buffer.from(Array.from({ length: 255 }, (_, i) => i + 1).filter((b) => b !== 0x2f));
    const specials = ['\\.', 'a\tb', 'a\nb', 'a\rb', 'back\\slash', '\\N', 'quote"\''].map((s) => Buffer.from(s));
    const long = Array.from({ length: 40 }, (_, i) => Buffer.from(`${String(i).padStart(2, '0')}-${'x'.repeat(4000)}`));
    const names = [every, every.subarray(100), ...specials, ...long];
    const times = [null, -86_400_000_001, 0, 946_684_799_999_999, 946_684_800_000_001, 1_760_000_000_123_456];
    const listing = names.map((path, i) => ({ path, size: i * 1_000_003, modifiedUs: times[i % times.length]! }));
    await recordScan(client, corpus, listing, { shards: { shards: 1 } });
    const { rows } = await client.query<{ raw_path: Buffer; size_bytes: string; us: string | null }>(
      `SELECT raw_path, size_bytes, ((extract(epoch FROM modified_at) * 1000000)::numeric)::bigint::text AS us
         FROM midi.files WHERE corpus_id = $1`,
      [corpus],
    );
    const stored = rows
      .map((r) => [r.raw_path.toString('hex'), Number(r.size_bytes), r.us === null ? null : Number(r.us)])
      .sort();
    expect(stored).toEqual(listing.map((f) => [f.path.toString('hex'), f.size, f.modifiedUs]).sort());
  });

  it('records ten thousand files with one COPY', async () => {
    async function* listing() {
      for (let i = 0; i < 10_000; i++)
        yield { path: `dir${String(i).padStart(5, '0')}/file.mid`, size: i, modifiedUs: 1_700_000_000_000_000 + i };
    }
    expect(await recordScan(client, corpus, listing(), { shards: { filesPerShard: 1000 } })).toEqual({
      files: 10_000,
      added: 10_000,
      changed: 0,
      unchanged: 0,
      missing: 0,
      work: 10_000,
      shards: 10,
    });
    expect(await corpusCounts(client, corpus)).toEqual({
      total: 10_000,
      ok: 0,
      failed: 0,
      skipped: 0,
      pending: 10_000,
      missing: 0,
    });
    expect(await corpusCounts(client, corpus, 7)).toMatchObject({ total: 1000 });
    const shard7 = await shardFiles(client, corpus, 7);
    expect(shard7.map((f) => f.size).sort((a, b) => a - b)).toEqual(Array.from({ length: 1000 }, (_, i) => 7000 + i));
  });

  it('records an analysis holding NaN as a failure naming the field, and keeps the rest of the batch', async () => {
    const nan = sampleAnalysis({ tempoMap: [{ tick: 0, seconds: 0, bpm: Number.NaN }] });
    const summary = await writeBatch(client, corpus, [okResult('good.mid'), okResult('nan.mid', 0, nan)]);
    expect(summary).toEqual({ ok: 1, failed: 1, skipped: 0 });
    expect(await failures(client, corpus)).toEqual([
      { path: 'nan.mid', reason: 'the analysis produced a number that is not finite: tempoMap[0].bpm = NaN' },
    ]);
  });

  it('records an analysis the database refuses as a failure with the database reason, and keeps the rest', async () => {
    const impossible = sampleAnalysis({ pitchMax: 200 });
    const summary = await writeBatch(client, corpus, [
      okResult('a.mid'),
      okResult('bad.mid', 0, impossible),
      okResult('z.mid'),
    ]);
    expect(summary).toEqual({ ok: 2, failed: 1, skipped: 0 });
    const [f] = await failures(client, corpus);
    expect(f!.path).toBe('bad.mid');
    expect(f!.reason).toMatch(/^the database refused the analysis: .*pitch_max.*\(23514\)$/);
    expect(await corpusCounts(client, corpus)).toMatchObject({ ok: 2, failed: 1 });
  });

  it("writes a batch's analyses, tracks, channels and split tracks with one COPY per table, again on a rewrite", async () => {
    const split = (i: number) => ({ trackIndex: i, outputPath: `split/${i}.mid`, size: 9, sha256: sha256(`s${i}`) });
    const batch = ['a.mid', 'b.mid', 'c.mid'].map((p) => ({
      ...okResult(p),
      outcome: { status: 'ok' as const, analysis: sampleAnalysis(), warnings: [], splitTracks: [split(1), split(2)] },
    }));
    await client.query('SELECT pg_stat_statements_reset()');
    await writeBatch(client, corpus, batch);
    await writeBatch(client, corpus, batch);
    const { rows } = await client.query<{ query: string; calls: string; rows: string }>(
      `SELECT query, calls, rows FROM pg_stat_statements
        WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND query ~ 'midi[.](file_analysis|tracks|channel_instruments|split_tracks)' AND query !~ 'DELETE'
        ORDER BY query`,
    );
    // Two writes of three files, each with an analysis, three tracks, two channels and two split tracks.
    expect(rows.map((r) => [r.query.replace(/ \(.*/, ''), Number(r.calls), Number(r.rows)])).toEqual([
      ['COPY midi.channel_instruments', 2, 12],
      ['COPY midi.file_analysis', 2, 6],
      ['COPY midi.split_tracks', 2, 12],
      ['COPY midi.tracks', 2, 18],
    ]);
    expect(await corpusCounts(client, corpus)).toMatchObject({ total: 3, ok: 3 });
  });

  it("stores text that COPY's format or an array literal give a meaning to exactly as it was", async () => {
    const awkward = 'tab\there\nnew\rline \\N \\. back\\slash "quoted" {a,b} NULL , \\x00';
    const analysis = sampleAnalysis({
      keySignatures: [{ tick: 0, seconds: 0, sharpsFlats: 0, mode: 'major', key: awkward }],
      channels: [{ ...sampleAnalysis().channels[0]!, programName: awkward, family: `${awkward}\t` }],
      tracks: [{ ...sampleAnalysis().tracks[1]!, name: awkward }],
    });
    const result: FileResult = {
      ...okResult('awkward.mid', 0, analysis),
      outcome: {
        status: 'ok',
        analysis,
        warnings: [awkward, 'NULL', ''],
        splitTracks: [{ trackIndex: 1, outputPath: awkward, size: 3, sha256: sha256('x') }],
      },
    };
    await writeBatch(client, corpus, [result]);
    const one = async (sql: string) => (await client.query(sql, [corpus])).rows[0] as Record<string, unknown>;
    const join = 'JOIN midi.files f ON f.id = x.file_id WHERE f.corpus_id = $1';
    expect(await one(`SELECT x.name FROM midi.tracks x ${join}`)).toEqual({ name: awkward });
    expect(await one(`SELECT x.program_name, x.family FROM midi.channel_instruments x ${join}`)).toEqual({
      program_name: awkward,
      family: `${awkward}\t`,
    });
    expect(await one(`SELECT x.output_path, x.sha256 FROM midi.split_tracks x ${join}`)).toEqual({
      output_path: awkward,
      sha256: sha256('x'),
    });
    expect(await one(`SELECT x.key_signatures -> 0 ->> 'key' AS key FROM midi.file_analysis x ${join}`)).toEqual({
      key: awkward,
    });
    expect(await one('SELECT warnings FROM midi.files WHERE corpus_id = $1')).toEqual({
      warnings: [awkward, 'NULL', ''],
    });
  });

  it('stores track names and reasons that hold NUL bytes or broken UTF-16, cleaned', async () => {
    const named = sampleAnalysis({
      tracks: [{ ...sampleAnalysis().tracks[1]!, name: 'Pi\u0000ano \ud800' }],
    });
    await writeBatch(client, corpus, [okResult('nul.mid', 0, named), failed('r.mid', 'bad byte \u0000 here')]);
    const { rows } = await client.query(
      `SELECT name FROM midi.tracks t JOIN midi.files f ON f.id = t.file_id WHERE f.corpus_id = $1`,
      [corpus],
    );
    expect(rows).toEqual([{ name: 'Piano \ufffd' }]);
    expect(await failures(client, corpus)).toEqual([{ path: 'r.mid', reason: 'bad byte  here' }]);
  });

  it('lists failures in path order, up to the limit, and counts per shard', async () => {
    await writeBatch(client, corpus, [
      failed('b.mid', 'two'),
      failed('a.mid', 'one'),
      failed('c.mid', 'three'),
      skipped('s.mid', 'too big'),
    ]);
    expect(await failures(client, corpus, 2)).toEqual([
      { path: 'a.mid', reason: 'one' },
      { path: 'b.mid', reason: 'two' },
    ]);
    expect(await corpusCounts(client, corpus, 1)).toEqual({
      total: 1,
      ok: 0,
      failed: 0,
      skipped: 1,
      pending: 0,
      missing: 0,
    });
  });
});
