import { existsSync, readdirSync, statSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { parquetMetadata, parquetReadObjects } from 'hyparquet';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres } from '../../../job-runner/db/embedded.js';
import { EXPORT_COLUMNS, exportFiles, type ExportRow, type RowSink } from '../../../job-runner/results/export.js';
import { parseExportFilter, type ExportFilterInput } from '../../../job-runner/results/filters.js';
import { sinkFor } from '../../../job-runner/results/formats.js';
import { startTestPostgres, type TestPostgres } from '../../support/postgres.js';
import { waitUntil } from '../../support/wait.js';
import { lastJson, runCli, startCli, writeCorpus } from '../runner/cli.js';

/** RFC 4180, as a spreadsheet reads it: quoted fields may hold commas, quotes ("") and line breaks. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(field);
      field = '';
    } else if (ch === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i++;
    } else field += ch;
  }
  if (field !== '' || row.length > 0) rows.push([...row, field]);
  return rows;
}

/** What the tables say of every file, read without the views: the export must agree with it. */
interface Truth {
  corpus: string;
  path: string;
  status: string;
  reason: string | null;
  sha256: string | null;
  main_bpm: number | null;
  key_tonic: string | null;
  key_mode: string | null;
  note_count: string | null;
  has_drums: boolean | null;
  time_signatures: Array<{ numerator: number; denominator: number }> | null;
  programs: number[] | null;
  families: string[] | null;
}

const TRUTH_SQL = `
  SELECT c.key AS corpus, f.path, f.status, f.reason, encode(f.sha256, 'hex') AS sha256, a.main_bpm, a.key_tonic,
         a.key_mode, a.note_count, a.has_drums, a.time_signatures,
         (SELECT array_agg(ci.program ORDER BY ci.program) FROM midi.channel_instruments ci
           WHERE ci.file_id = f.id AND NOT ci.is_drum) AS programs,
         (SELECT array_agg(ci.family) FROM midi.channel_instruments ci WHERE ci.file_id = f.id) AS families
    FROM midi.files f JOIN midi.corpora c ON c.id = f.corpus_id LEFT JOIN midi.file_analysis a ON a.file_id = f.id
   ORDER BY f.id`;

const meterOf = (t: Truth) =>
  t.time_signatures?.[0] ? `${t.time_signatures[0].numerator}/${t.time_signatures[0].denominator}` : null;
const uniqueSorted = (xs: number[] | null) => [...new Set(xs ?? [])].sort((a, b) => a - b);

describe('midi-corpus export and query, on a corpus ingested by the real runner', () => {
  const CORPUS = 'sample';
  let db: TestPostgres;
  let url: string;
  let tmp: string;
  let truth: Truth[];
  let client: pg.Client;

  beforeAll(async () => {
    db = await startTestPostgres();
    url = await db.createDatabase();
    tmp = await mkdtemp(path.join(os.tmpdir(), 'mco-export-'));
    // The tests run as root, where the embedded server runs as user postgres: it must be able to enter tmp.
    await chmod(tmp, 0o711);
    await writeCorpus(path.join(tmp, 'sample'), { files: 60, seed: 11, bad: true });
    await writeCorpus(path.join(tmp, 'other'), { files: 5, seed: 3 });
    for (const [dir, key] of [
      ['sample', CORPUS],
      ['other', 'other'],
    ] as const) {
      const exit = await runCli(['local', path.join(tmp, dir), '--database-url', url, '--corpus', key, '--json']);
      expect(exit.code, exit.stderr.slice(-2000)).toBe(0);
      expect(lastJson<{ outcome: string }>(exit).outcome).toBe('complete');
    }
    client = new pg.Client({ connectionString: url });
    await client.connect();
    truth = (await client.query<Truth>(TRUTH_SQL)).rows;
  });
  afterAll(async () => {
    await client?.end();
    await db?.destroy();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  const sampleOk = () => truth.filter((t) => t.corpus === CORPUS && t.status === 'ok');

  it('has a fixture worth filtering: failures, several keys, meters and tempi, files with and without drums', () => {
    const ok = sampleOk();
    expect(ok.length).toBeGreaterThan(40);
    expect(truth.filter((t) => t.status === 'failed').length).toBeGreaterThan(5);
    expect(new Set(ok.map((t) => `${t.key_tonic} ${t.key_mode}`)).size).toBeGreaterThan(5);
    expect(new Set(ok.map(meterOf)).size).toBeGreaterThan(1);
    expect(ok.some((t) => t.has_drums) && ok.some((t) => !t.has_drums)).toBe(true);
  });

  describe('formats round-trip and match the tables', () => {
    it('CSV to a file: a header, one row per analysed file of the corpus, every figure as the tables hold it', async () => {
      const file = path.join(tmp, 'files.csv');
      const exit = await runCli(['export', '--database-url', url, '--corpus', CORPUS, '-o', file]);
      expect(exit.code, exit.stderr).toBe(0);
      const [header, ...rows] = parseCsv(await readFile(file, 'utf8'));
      expect(header).toEqual(EXPORT_COLUMNS.map((c) => c.name));
      const col = (name: string) => header!.indexOf(name);
      const expected = sampleOk();
      expect(rows.map((r) => r[col('path')])).toEqual(expected.map((t) => t.path));
      rows.forEach((r, i) => {
        const t = expected[i]!;
        expect(r[col('corpus')]).toBe(CORPUS);
        expect(r[col('status')]).toBe('ok');
        expect(r[col('reason')]).toBe('');
        expect(r[col('sha256')]).toBe(t.sha256);
        expect(Number(r[col('bpm')])).toBe(t.main_bpm);
        expect(r[col('key')]).toBe(`${t.key_tonic} ${t.key_mode}`);
        expect(r[col('note_count')]).toBe(t.note_count);
        expect(r[col('has_drums')]).toBe(String(t.has_drums));
        expect(r[col('meter')]).toBe(meterOf(t) ?? '');
        expect(JSON.parse(r[col('programs')]!)).toEqual(uniqueSorted(t.programs));
      });
      expect(exit.stderr.trim()).toBe(`exported ${expected.length} files as csv to ${file}`);
      expect(readdirSync(tmp).filter((f) => f.includes('.partial'))).toEqual([]);
    });

    it('CSV quotes what needs quoting: every failure reason comes back whole', async () => {
      const exit = await runCli(['export', '--database-url', url, '--corpus', CORPUS, '--status', 'failed']);
      expect(exit.code, exit.stderr).toBe(0);
      const [header, ...rows] = parseCsv(exit.stdout);
      const failed = truth.filter((t) => t.corpus === CORPUS && t.status === 'failed');
      expect(rows.map((r) => [r[header!.indexOf('path')], r[header!.indexOf('reason')]])).toEqual(
        failed.map((t) => [t.path, t.reason]),
      );
      expect(failed.some((t) => /[,"]/.test(t.reason!))).toBe(true);
    });

    it('JSON Lines on stdout, every status: one object per file of every corpus', async () => {
      const exit = await runCli(['export', '--database-url', url, '--format', 'jsonl', '--status', 'all']);
      expect(exit.code, exit.stderr).toBe(0);
      const objects = exit.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(objects).toHaveLength(truth.length);
      objects.forEach((o, i) => {
        const t = truth[i]!;
        expect(Object.keys(o)).toEqual(EXPORT_COLUMNS.map((c) => c.name));
        expect([o.corpus, o.path, o.status, o.reason, o.sha256]).toEqual([
          t.corpus,
          t.path,
          t.status,
          t.reason,
          t.sha256,
        ]);
        expect(o.bpm).toBe(t.main_bpm);
        expect(o.note_count).toBe(t.note_count === null ? null : Number(t.note_count));
        expect(o.has_drums).toBe(t.has_drums);
        expect(o.programs).toEqual(t.status === 'ok' ? uniqueSorted(t.programs) : null);
      });
    });

    it('Parquet read back with hyparquet: typed columns, lists as lists, row groups of --row-group-size', async () => {
      const file = path.join(tmp, 'files.parquet');
      const exit = await runCli([
        'export',
        '--database-url',
        url,
        '--corpus',
        CORPUS,
        '-o',
        file,
        '--row-group-size',
        '7',
      ]);
      expect(exit.code, exit.stderr).toBe(0);
      const bytes = await readFile(file);
      const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
      const expected = sampleOk();
      const groups = parquetMetadata(buffer).row_groups.map((g) => Number(g.num_rows));
      expect(groups.every((n) => n <= 7)).toBe(true);
      expect(groups).toHaveLength(Math.ceil(expected.length / 7));
      const rows = (await parquetReadObjects({ file: buffer })) as Record<string, unknown>[];
      expect(rows.map((r) => r.path)).toEqual(expected.map((t) => t.path));
      rows.forEach((r, i) => {
        const t = expected[i]!;
        expect(r.sha256).toBe(t.sha256);
        expect(r.bpm).toBe(t.main_bpm);
        expect(r.note_count).toBe(BigInt(t.note_count!));
        expect(r.has_drums).toBe(t.has_drums);
        expect(r.key_tonic).toBe(t.key_tonic);
        expect(r.meter).toBe(meterOf(t));
        expect(r.programs).toEqual(uniqueSorted(t.programs));
        expect(r.reason).toBeNull();
      });
    });
  });

  describe('each filter selects exactly what an independent SQL count says', () => {
    const analysed = `FROM midi.files f JOIN midi.corpora c ON c.id = f.corpus_id
      JOIN midi.file_analysis a ON a.file_id = f.id WHERE c.key = 'sample' AND f.status = 'ok'`;
    const cases: Array<[string, ExportFilterInput, string]> = [
      [
        '--key "A minor"',
        { key: 'A minor' },
        `SELECT f.path ${analysed} AND a.key_tonic = 'A' AND a.key_mode = 'minor'`,
      ],
      [
        '--key "Eb major" (a flat)',
        { key: 'Eb major' },
        `SELECT f.path ${analysed} AND a.key_tonic = 'D#' AND a.key_mode = 'major'`,
      ],
      ['--key C (either mode)', { key: 'C' }, `SELECT f.path ${analysed} AND a.key_tonic = 'C'`],
      ['--tempo-min 100', { tempoMin: 100 }, `SELECT f.path ${analysed} AND a.main_bpm >= 100`],
      [
        '--tempo-min 80 --tempo-max 120',
        { tempoMin: 80, tempoMax: 120 },
        `SELECT f.path ${analysed} AND a.main_bpm BETWEEN 80 AND 120`,
      ],
      [
        '--meter 4/4',
        { meter: '4/4' },
        `SELECT f.path ${analysed} AND a.time_signatures -> 0 @> '{"numerator": 4, "denominator": 4}'`,
      ],
      [
        '--meter 3/4',
        { meter: '3/4' },
        `SELECT f.path ${analysed} AND a.time_signatures -> 0 @> '{"numerator": 3, "denominator": 4}'`,
      ],
      ['--drums', { drums: true }, `SELECT f.path ${analysed} AND a.has_drums`],
      ['--no-drums', { drums: false }, `SELECT f.path ${analysed} AND NOT a.has_drums`],
      [
        '--instrument 0 (a program)',
        { instrument: ['0'] },
        `SELECT f.path ${analysed} AND f.id IN (SELECT file_id FROM midi.channel_instruments WHERE program = 0 AND channel <> 9)`,
      ],
      [
        '--instrument bass (a family)',
        { instrument: ['bass'] },
        `SELECT f.path ${analysed} AND f.id IN (SELECT file_id FROM midi.channel_instruments WHERE program BETWEEN 32 AND 39 AND channel <> 9)`,
      ],
      [
        '--instrument drums --instrument piano (both)',
        { instrument: ['drums', 'piano'] },
        `SELECT f.path ${analysed} AND f.id IN (SELECT file_id FROM midi.channel_instruments WHERE channel = 9)
           AND f.id IN (SELECT file_id FROM midi.channel_instruments WHERE program < 8 AND channel <> 9)`,
      ],
      [
        '--status failed,skipped',
        { status: ['failed,skipped'] },
        `SELECT f.path FROM midi.files f JOIN midi.corpora c ON c.id = f.corpus_id
          WHERE c.key = 'sample' AND f.status IN ('failed', 'skipped')`,
      ],
      [
        'everything at once',
        { key: 'C major', tempoMin: 90, meter: '4/4', drums: true },
        `SELECT f.path ${analysed} AND a.key_tonic = 'C' AND a.key_mode = 'major' AND a.main_bpm >= 90
           AND a.time_signatures -> 0 @> '{"numerator": 4, "denominator": 4}' AND a.has_drums`,
      ],
    ];

    it.each(cases)('%s', async (_, input, sql) => {
      const expected = (await client.query<{ path: string }>(`${sql} ORDER BY f.id`)).rows.map((r) => r.path);
      const rows: ExportRow[] = [];
      const sink: RowSink = { write: async (batch) => void rows.push(...batch), end: async () => {} };
      const filter = parseExportFilter({ corpus: CORPUS, status: ['ok'], ...input });
      const n = await exportFiles(client, { filter, sink });
      expect(n).toBe(expected.length);
      expect(rows.map((r) => r[1])).toEqual(expected);
    });

    it('the flags reach the filters: --no-drums, --instrument and --key from the command line', async () => {
      const exit = await runCli([
        'export',
        '--database-url',
        url,
        '--corpus',
        CORPUS,
        '--no-drums',
        '--instrument',
        'piano',
        '--key',
        'C',
        '--format',
        'jsonl',
      ]);
      expect(exit.code, exit.stderr).toBe(0);
      const { rows } = await client.query<{ path: string }>(
        `SELECT f.path ${analysed} AND NOT a.has_drums AND a.key_tonic = 'C'
           AND f.id IN (SELECT file_id FROM midi.channel_instruments WHERE family = 'piano') ORDER BY f.id`,
      );
      const got = exit.stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => (JSON.parse(l) as { path: string }).path);
      expect(got).toEqual(rows.map((r) => r.path));
    });

    it('the views answer per corpus: v_corpora counts files by status as the table does', async () => {
      const { rows } = await client.query<{ corpus: string; files: string; ok: string; failed: string; other: string }>(
        'SELECT corpus, files, ok, failed, other FROM midi.v_corpora ORDER BY corpus',
      );
      const count = (corpus: string, status?: string) =>
        String(truth.filter((t) => t.corpus === corpus && (status === undefined || t.status === status)).length);
      expect(rows).toEqual(
        ['other', CORPUS].map((c) => ({
          corpus: c,
          files: count(c),
          ok: count(c, 'ok'),
          failed: count(c, 'failed'),
          other: '0',
        })),
      );
      const undocumented = await client.query(
        `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'midi' AND c.relkind = 'v' AND obj_description(c.oid, 'pg_class') IS NULL`,
      );
      expect(undocumented.rows).toEqual([]);
    });
  });

  it('shows a rescan as it is: a file gone from the volume is missing with its last figures, a changed one pending without its old ones', async () => {
    const rescanned = await db.createDatabase();
    const dir = path.join(tmp, 'rescanned');
    const songs = (await writeCorpus(dir, { files: 6, seed: 5 })).sort();
    const ingest = await runCli(['local', dir, '--database-url', rescanned, '--corpus', 'r', '--json']);
    expect(ingest.code, ingest.stderr.slice(-2000)).toBe(0);
    const [gone, changed] = songs as [string, string];
    const sizeOf = (f: string) => statSync(path.join(dir, f)).size;
    const donor = songs.slice(2).find((f) => sizeOf(f) !== sizeOf(changed))!;
    await rm(path.join(dir, gone));
    // Another song's bytes under the name: another size and mtime, so the rescan sends it back to pending.
    await writeFile(path.join(dir, changed), await readFile(path.join(dir, donor)));
    const scan = await runCli(['scan', '--corpus', 'r', '--root', dir, '--database-url', rescanned, '--shards', '1']);
    expect(scan.code, scan.stderr.slice(-2000)).toBe(0);

    const other = new pg.Client({ connectionString: rescanned });
    await other.connect();
    try {
      const files = await other.query<{ path: string; status: string; bpm: number | null; analysis: boolean }>(
        `SELECT v.path, v.status, v.bpm,
                EXISTS (SELECT 1 FROM midi.file_analysis a WHERE a.file_id = v.file_id) AS analysis
           FROM midi.v_files v WHERE v.path IN ($1, $2)`,
        [gone, changed],
      );
      const byPath = Object.fromEntries(files.rows.map((r) => [r.path, r]));
      expect(byPath[gone]).toMatchObject({ status: 'missing', analysis: true });
      expect(byPath[gone]!.bpm).toBeGreaterThan(0);
      // The old analysis row is still in the table until the file is analysed again; the view does not show it.
      expect(byPath[changed]).toEqual({ path: changed, status: 'pending', bpm: null, analysis: true });
      const { rows } = await other.query('SELECT files, ok, pending, missing, other FROM midi.v_corpora');
      expect(rows).toEqual([
        { files: String(songs.length), ok: String(songs.length - 2), pending: '1', missing: '1', other: '0' },
      ]);
      const got: ExportRow[] = [];
      const sink: RowSink = { write: async (batch) => void got.push(...batch), end: async () => {} };
      await exportFiles(other, { filter: parseExportFilter({ status: ['missing'] }), sink });
      expect(got.map((r) => [r[1], r[2]])).toEqual([[gone, 'missing']]);
    } finally {
      await other.end();
    }
  });

  describe('streaming', () => {
    it('reads through a cursor FETCH by FETCH, each fetch written before the next is asked for', async () => {
      const events: string[] = [];
      const fetches: number[] = [];
      const serverSaw: string[] = [];
      const watcher = new pg.Client({ connectionString: url });
      await watcher.connect();
      const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      try {
        const sink: RowSink = {
          write: async (rows) => {
            events.push(`write ${rows.length}`);
            // The server's own view of the export's connection, from another one, while the sink holds a batch.
            const { rows: seen } = await watcher.query<{ query: string; state: string }>(
              'SELECT query, state FROM pg_stat_activity WHERE pid = $1',
              [pid],
            );
            serverSaw.push(`${seen[0]!.state}: ${seen[0]!.query}`);
          },
          end: async () => void events.push('end'),
        };
        const filter = parseExportFilter({ corpus: CORPUS, status: ['all'] });
        const total = await exportFiles(client, {
          filter,
          sink,
          fetchSize: 4,
          onFetch: (n) => {
            fetches.push(n);
            events.push(`fetch ${n}`);
          },
        });
        const files = truth.filter((t) => t.corpus === CORPUS).length;
        expect(total).toBe(files);
        expect(fetches.every((n) => n <= 4)).toBe(true);
        expect(fetches.filter((n) => n > 0)).toHaveLength(Math.ceil(files / 4));
        // Alternating: fetch, write, fetch, write... A reader that took everything first would fetch, fetch, fetch.
        const expected = fetches.filter((n) => n > 0).flatMap((n) => [`fetch ${n}`, `write ${n}`]);
        expect(events.filter((e) => e !== 'fetch 0' && e !== 'end')).toEqual(expected);
        expect(new Set(serverSaw)).toEqual(new Set(['idle in transaction: FETCH FORWARD 4 FROM midi_export']));
      } finally {
        await watcher.end();
      }
    });

    it('Parquet: a full row group reaches the stream before the export ends', async () => {
      const out = new PassThrough();
      let bytes = 0;
      out.on('data', (chunk: Buffer) => (bytes += chunk.length));
      const sink = sinkFor('parquet', out, { rowGroupSize: 3 });
      const row: ExportRow = EXPORT_COLUMNS.map((c) => (c.type === 'text' ? 'x' : null));
      await sink.write([row, row]);
      const beforeGroup = bytes;
      await sink.write([row]);
      const afterGroup = bytes;
      await sink.end();
      expect(beforeGroup).toBe(0); // two rows wait for the third of their group
      expect(afterGroup).toBeGreaterThan(4); // the PAR1 magic and the first group
      expect(bytes).toBeGreaterThan(afterGroup); // the footer
    });
  });

  describe('query', () => {
    it('prints an aligned table, CSV or JSON Lines of a read-only statement', async () => {
      const sql = 'SELECT status, count(*) AS files FROM midi.files GROUP BY status ORDER BY status';
      const expected = (await client.query<{ status: string; files: string }>(sql)).rows;
      const table = await runCli(['query', sql, '--database-url', url]);
      expect(table.code, table.stderr).toBe(0);
      const lines = table.stdout.trimEnd().split('\n');
      expect(lines[0]).toMatch(/^ status \| files$/);
      expect(lines.slice(2, -1).map((l) => l.split('|').map((s) => s.trim()))).toEqual(
        expected.map((r) => [r.status, r.files]),
      );
      expect(lines.at(-1)).toBe(`(${expected.length} rows)`);
      const csv = await runCli(['query', sql, '--database-url', url, '--csv']);
      expect(parseCsv(csv.stdout)).toEqual([['status', 'files'], ...expected.map((r) => [r.status, r.files])]);
      const json = await runCli(['query', sql, '--database-url', url, '--json']);
      expect(
        json.stdout
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as unknown),
      ).toEqual(expected);
    });

    it.each([
      ['a DELETE', 'DELETE FROM midi.files', /read-only transaction \(25006\)/],
      ['a write hidden in a CTE', 'WITH d AS (DELETE FROM midi.files RETURNING 1) SELECT count(*) FROM d', /read-only/],
      ['a second statement after a COMMIT', 'COMMIT; DELETE FROM midi.files', /multiple commands/],
      ['a DROP', 'DROP VIEW midi.v_files', /read-only/],
    ])('refuses %s with exit 64 and changes nothing', async (_, sql, message) => {
      const before = (await client.query<{ n: string }>('SELECT count(*) AS n FROM midi.files')).rows[0]!.n;
      const exit = await runCli(['query', sql, '--database-url', url]);
      expect(exit.code).toBe(64);
      expect(exit.stderr.trim().split('\n')).toHaveLength(1);
      expect(exit.stderr).toMatch(message);
      expect((await client.query<{ n: string }>('SELECT count(*) AS n FROM midi.files')).rows[0]!.n).toBe(before);
      expect((await client.query("SELECT to_regclass('midi.v_files') AS v")).rows[0].v).toBe('midi.v_files');
    });
  });

  it('SIGTERM during a query on the embedded database: the query and the server stop, exit 75, the data directory unlocked', async () => {
    const dataDir = path.join(tmp, 'local-data');
    const server = await startEmbeddedPostgres({ dataDir });
    await server.stop();
    const pid = path.join(dataDir, 'pgdata', 'postmaster.pid');
    const query = startCli(['query', 'SELECT pg_sleep(60)', '--data-dir', dataDir], { DATABASE_URL: undefined });
    await waitUntil('the embedded server is up', async () => existsSync(pid), 30_000);
    // Past the start, into the statement (either way the server must be stopped and the exit be 75).
    await new Promise((r) => setTimeout(r, 1500));
    const sent = Date.now();
    query.child.kill('SIGTERM');
    const exit = await query.done;
    expect(exit.code, exit.stderr).toBe(75);
    expect(Date.now() - sent).toBeLessThan(30_000); // not the minute pg_sleep would have taken
    expect(exit.stderr.trim()).toBe(
      'midi-corpus query: stopped by SIGTERM; nothing was changed, run the command again',
    );
    expect(existsSync(pid)).toBe(false);
  });

  it('query joins the embedded server a local run has up on the data directory, and leaves it running', async () => {
    const dataDir = path.join(tmp, 'running-data');
    const server = await startEmbeddedPostgres({ dataDir });
    try {
      const admin = new pg.Client({ connectionString: server.url });
      await admin.connect();
      await admin.query('CREATE DATABASE midi_corpus');
      await admin.end();
      const exit = await runCli(['query', 'SELECT current_database() AS db', '--data-dir', dataDir], {
        DATABASE_URL: undefined,
      });
      expect(exit.code, exit.stderr).toBe(0);
      expect(exit.stdout.split('\n')[2]?.trim()).toBe('midi_corpus');
      const still = new pg.Client({ connectionString: server.url });
      await still.connect();
      expect((await still.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      await still.end();
    } finally {
      await server.stop();
    }
  });

  describe('refusals: one line naming the flag, exit 64, nothing created', () => {
    it.each([
      [['export', '--key', 'H minor'], /^midi-corpus export: --key: "H minor" is not a key/],
      [['export', '--meter', '4/3'], /^midi-corpus export: --meter: "4\/3" is not a meter/],
      [['export', '--tempo-min', 'fast'], /^midi-corpus export: --tempo-min must be a number above 0, got fast$/],
      [['export', '--instrument', 'kazoo'], /^midi-corpus export: --instrument: "kazoo" is neither/],
      [['export', '--format', 'xml'], /^midi-corpus export: --format must be one of csv, jsonl, parquet, got xml$/],
      [['export', '--fetch-size', '0'], /^midi-corpus export: --fetch-size must be a whole number ≥ 1, got 0$/],
      [
        ['export', '--corpus', 'nope'],
        /^midi-corpus export: --corpus: no corpus "nope" in database 127\.0\.0\.1:\d+\/\w+; it has "other", "sample"$/,
      ],
      [['query', 'SELECT 1', '--csv', '--json'], /^midi-corpus query: --csv and --json/],
    ])('%j', async (args, message) => {
      const exit = await runCli([...args, '--database-url', url]);
      expect(exit.code).toBe(64);
      expect(exit.stderr.trim()).toMatch(message);
      expect(exit.stderr.trim().split('\n')).toHaveLength(1);
    });

    it('a database where nothing was ingested is refused, and gets no schema', async () => {
      const empty = await db.createDatabase();
      const exit = await runCli(['export', '--database-url', empty]);
      expect(exit.code).toBe(64);
      expect(exit.stderr.trim()).toMatch(
        /^midi-corpus export: nothing was ingested into database 127\.0\.0\.1:\d+\/\w+: it has no midi\.files table$/,
      );
      const other = new pg.Client({ connectionString: empty });
      await other.connect();
      try {
        expect((await other.query("SELECT to_regnamespace('midi') AS s")).rows[0].s).toBeNull();
      } finally {
        await other.end();
      }
    });

    it('a malformed --database-url is a usage error, not a database to wait for, and is not echoed', async () => {
      const exit = await runCli(['export', '--database-url', 'not-a-url:s3cret']);
      expect(exit.code).toBe(64);
      expect(exit.stderr.trim()).toBe(
        'midi-corpus export: --database-url has the scheme not-a-url: where postgres: or postgresql: belongs; ' +
          'give postgres://USER:PASSWORD@HOST:5432/DATABASE',
      );
    });

    it.each([
      ['db', ['db']],
      ['query', ['query', 'SELECT 1']],
      ['export', ['export']],
    ])('%s on a data directory that holds no cluster: missing or empty', async (command, args) => {
      const missing = path.join(tmp, `no-cluster-${command}`, 'data');
      const empty = path.join(tmp, `empty-${command}`);
      await mkdir(empty);
      for (const dir of [missing, empty]) {
        const exit = await runCli([...args, '--data-dir', dir], { DATABASE_URL: undefined });
        expect(exit.code, exit.stderr).toBe(64);
        expect(exit.stderr.trim()).toBe(
          `midi-corpus ${command}: no local-mode database in ${dir} (no ${dir}/pgdata/PG_VERSION): ` +
            'give --data-dir the directory a `midi-corpus local` run used',
        );
      }
      expect(existsSync(path.dirname(missing))).toBe(false);
      expect(readdirSync(empty)).toEqual([]);
    });
  });
});
