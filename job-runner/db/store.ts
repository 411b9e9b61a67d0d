import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { firstNonFinite } from '../analysis/finite.js';
import type { FileAnalysis } from '../analysis/types.js';
import { describeError } from '../../contract/describe-error.js';
import { displayPath, rawPath } from './paths.js';
import { copyField, pgJson, pgText } from './text.js';
import { inTransaction, isDataError } from './transaction.js';

/**
 * Everything the runner, the scan and local mode write to or read from Postgres. Every write is idempotent:
 * writing the same thing twice leaves the same rows.
 *
 * Functions take a client rather than a pool, so the caller decides which connection (and so how many) to use.
 */

export type FileStatus = 'pending' | 'ok' | 'failed' | 'skipped';

/** One file found by a scan. `path` is relative to the corpus root: raw bytes, or a JS string (stored as UTF-8). */
export interface ScannedFile {
  path: Buffer | string;
  size: number;
  shard: number;
}

export interface ScanSummary {
  /** Distinct paths in this listing. */
  files: number;
  /** Paths recorded for the first time. */
  inserted: number;
  /**
   * Recorded paths sent back to pending: their size changed (the old result is dropped), or they were settled without
   * a content hash (unreadable, skipped), which a new scan looks at again.
   */
  changed: number;
}

/** A single-track file written by track splitting. */
export interface SplitTrackRecord {
  trackIndex: number;
  outputPath: string;
  size: number;
  sha256: Buffer;
}

export type FileOutcome =
  | { status: 'ok'; analysis: FileAnalysis; warnings: string[]; splitTracks?: SplitTrackRecord[] }
  | { status: 'failed'; reason: string; warnings: string[] }
  | { status: 'skipped'; reason: string; warnings?: string[] };

/** What the runner learned about one file. */
export interface FileResult {
  path: Buffer | string;
  size: number;
  /** Used only when the file was never scanned (the scan's shard number is kept otherwise). */
  shard: number;
  /** Content hash; null when the file could not be read. Required for 'ok'. */
  sha256: Buffer | null;
  outcome: FileOutcome;
  /** The analysis version (analysis/version.ts) that made the outcome; absent when no analysis looked at the file. */
  analysisVersion?: number;
}

export interface WriteSummary {
  ok: number;
  failed: number;
  skipped: number;
}

export interface ShardFile {
  path: Buffer;
  displayPath: string;
  size: number;
  sha256: Buffer | null;
  status: FileStatus;
  /** The analysis version that made the recorded result; null when none did (or a release before versions did). */
  analysisVersion: number | null;
}

export interface CorpusCounts {
  total: number;
  ok: number;
  failed: number;
  skipped: number;
  pending: number;
}

export interface Failure {
  path: string;
  reason: string;
}

/** The corpus's id, creating it on first use. `settings` (what the corpus was run with) replaces the stored ones. */
export async function ensureCorpus(
  client: pg.ClientBase,
  key: string,
  settings: Record<string, unknown> = {},
): Promise<number> {
  const { rows } = await client.query<{ id: string }>(
    `INSERT INTO midi.corpora (key, settings) VALUES ($1, $2::jsonb)
     ON CONFLICT (key) DO UPDATE SET settings = EXCLUDED.settings, updated_at = now()
       WHERE midi.corpora.settings IS DISTINCT FROM EXCLUDED.settings
     RETURNING id`,
    [pgText(key), pgJson(settings)],
  );
  if (rows[0]) return Number(rows[0].id);
  // Same settings as stored: the conditional update touched nothing and returned nothing.
  const found = await findCorpus(client, key);
  if (found === null) throw new Error(`corpus ${key} vanished while being recorded`);
  return found;
}

/** The corpus's id, or null when it was never recorded. */
export async function findCorpus(client: pg.ClientBase, key: string): Promise<number | null> {
  const { rows } = await client.query<{ id: string }>('SELECT id FROM midi.corpora WHERE key = $1', [pgText(key)]);
  return rows[0] ? Number(rows[0].id) : null;
}

/**
 * Records a scan's listing in one transaction, streaming it with COPY into a temporary table and merging from there:
 * new paths become pending; known paths keep their results (a re-scan must not throw work away) unless their size
 * changed, in which case the old result is dropped and the file is pending again. Files settled without a content
 * hash (they could not be read, or were skipped) are pending again too: the cause may be gone, and the scan records
 * the problems it still sees right after. `shardCount` defaults to the highest shard number in the listing plus one.
 */
export async function recordScan(
  client: pg.ClientBase,
  corpusId: number,
  files: Iterable<ScannedFile> | AsyncIterable<ScannedFile>,
  options: { shardCount?: number } = {},
): Promise<ScanSummary> {
  return inTransaction(client, async () => {
    await client.query(
      `CREATE TEMP TABLE scan_in (raw_path bytea NOT NULL, path text NOT NULL, size_bytes bigint NOT NULL, shard integer NOT NULL)
       ON COMMIT DROP`,
    );
    await pipeline(Readable.from(copyLines(files)), client.query(copyFrom('COPY pg_temp.scan_in FROM STDIN')));
    const changed = await client.query(
      `UPDATE midi.files f
          SET status = 'pending', reason = NULL, warnings = '{}', sha256 = NULL, analysis_version = NULL, analysed_at = NULL,
              updated_at = now()
         FROM pg_temp.scan_in s
        WHERE f.corpus_id = $1 AND f.raw_path = s.raw_path AND f.status <> 'pending'
          AND (f.size_bytes <> s.size_bytes OR f.sha256 IS NULL)`,
      [corpusId],
    );
    if ((changed.rowCount ?? 0) > 0) {
      await client.query(
        `DELETE FROM midi.file_analysis a USING midi.files f
          WHERE a.file_id = f.id AND f.corpus_id = $1 AND f.status = 'pending'`,
        [corpusId],
      );
    }
    const { rows } = await client.query<{ files: string; inserted: string; next_shard: number | null }>(
      `WITH merged AS (
         INSERT INTO midi.files AS f (corpus_id, raw_path, path, size_bytes, shard)
         SELECT DISTINCT ON (raw_path) $1, raw_path, path, size_bytes, shard FROM pg_temp.scan_in ORDER BY raw_path
         ON CONFLICT (corpus_id, raw_path) DO UPDATE
           SET path = EXCLUDED.path, size_bytes = EXCLUDED.size_bytes, shard = EXCLUDED.shard, scanned_at = now(), updated_at = now()
           WHERE (f.path, f.size_bytes, f.shard) IS DISTINCT FROM (EXCLUDED.path, EXCLUDED.size_bytes, EXCLUDED.shard)
         RETURNING (xmax = 0) AS inserted)
       SELECT (SELECT count(DISTINCT raw_path) FROM pg_temp.scan_in) AS files,
              (SELECT count(*) FROM merged WHERE inserted) AS inserted,
              (SELECT max(shard) + 1 FROM pg_temp.scan_in) AS next_shard`,
      [corpusId],
    );
    const summary = rows[0]!;
    await client.query('UPDATE midi.corpora SET shard_count = $2, updated_at = now() WHERE id = $1', [
      corpusId,
      options.shardCount ?? summary.next_shard ?? 0,
    ]);
    return { files: Number(summary.files), inserted: Number(summary.inserted), changed: changed.rowCount ?? 0 };
  });
}

/** COPY text-format lines, a thousand per chunk: one write per line would cost more than the COPY itself. */
async function* copyLines(files: Iterable<ScannedFile> | AsyncIterable<ScannedFile>): AsyncGenerator<string> {
  let chunk = '';
  let n = 0;
  for await (const f of files) {
    const raw = rawPath(f.path);
    chunk += `\\\\x${raw.toString('hex')}\t${copyField(displayPath(raw))}\t${f.size}\t${f.shard}\n`;
    if (++n === 1000) {
      yield chunk;
      chunk = '';
      n = 0;
    }
  }
  if (chunk) yield chunk;
}

/** The files of one shard with what is recorded about them, in path order. */
export async function shardFiles(client: pg.ClientBase, corpusId: number, shard: number): Promise<ShardFile[]> {
  const { rows } = await client.query<{
    raw_path: Buffer;
    path: string;
    size_bytes: string;
    sha256: Buffer | null;
    status: FileStatus;
    analysis_version: number | null;
  }>(
    `SELECT raw_path, path, size_bytes, sha256, status, analysis_version
       FROM midi.files WHERE corpus_id = $1 AND shard = $2 ORDER BY raw_path`,
    [corpusId, shard],
  );
  return rows.map((r) => ({
    path: r.raw_path,
    displayPath: r.path,
    size: Number(r.size_bytes),
    sha256: r.sha256,
    status: r.status,
    analysisVersion: r.analysis_version,
  }));
}

/** Status counts for a corpus, or for one shard of it. */
export async function corpusCounts(client: pg.ClientBase, corpusId: number, shard?: number): Promise<CorpusCounts> {
  const { rows } = await client.query<Record<keyof CorpusCounts, string>>(
    `SELECT count(*) AS total,
            count(*) FILTER (WHERE status = 'ok') AS ok,
            count(*) FILTER (WHERE status = 'failed') AS failed,
            count(*) FILTER (WHERE status = 'skipped') AS skipped,
            count(*) FILTER (WHERE status = 'pending') AS pending
       FROM midi.files WHERE corpus_id = $1 AND ($2::integer IS NULL OR shard = $2)`,
    [corpusId, shard ?? null],
  );
  const r = rows[0]!;
  return {
    total: Number(r.total),
    ok: Number(r.ok),
    failed: Number(r.failed),
    skipped: Number(r.skipped),
    pending: Number(r.pending),
  };
}

/** The files that were not analysed, failed or skipped, with their reasons, in path order. */
export async function failures(client: pg.ClientBase, corpusId: number, limit = 100): Promise<Failure[]> {
  const { rows } = await client.query<Failure>(
    `SELECT path, reason FROM midi.files WHERE corpus_id = $1 AND status IN ('failed', 'skipped') ORDER BY raw_path LIMIT $2`,
    [corpusId, limit],
  );
  return rows;
}

/**
 * Records a batch of results in ONE transaction. Upserts: a file written again gets the same rows (its analysis,
 * tracks, channels and split tracks are replaced, never duplicated); only `attempts` and timestamps move.
 *
 * An analysis the database refuses (a CHECK it breaks) must not lose the batch or stall the shard: the batch is then
 * written again file by file under savepoints, and each refused file is recorded as failed with the database's reason.
 */
export async function writeBatch(
  client: pg.ClientBase,
  corpusId: number,
  results: readonly FileResult[],
): Promise<WriteSummary> {
  const rows = prepare(results);
  if (rows.length === 0) return { ok: 0, failed: 0, skipped: 0 };
  try {
    await inTransaction(client, () => writeRows(client, corpusId, rows));
    return summarise(rows);
  } catch (err) {
    if (!isDataError(err)) throw err;
  }
  const written = await inTransaction(client, async () => {
    const out: PreparedRow[] = [];
    for (const row of rows) {
      await client.query('SAVEPOINT one_file');
      try {
        await writeRows(client, corpusId, [row]);
        await client.query('RELEASE SAVEPOINT one_file');
        out.push(row);
      } catch (err) {
        if (!isDataError(err)) throw err;
        await client.query('ROLLBACK TO SAVEPOINT one_file');
        const failed = asFailed(row, `the database refused the analysis: ${describeError(err)}`);
        await writeRows(client, corpusId, [failed]);
        out.push(failed);
      }
    }
    return out;
  });
  return summarise(written);
}

/** A result in the shape of the tables, as jsonb_populate_recordset reads it (keys = column names). */
interface PreparedRow {
  key: string;
  file: {
    raw_path: string;
    path: string;
    size_bytes: number;
    shard: number;
    status: Exclude<FileStatus, 'pending'>;
    reason: string | null;
    warnings: string[];
    sha256: string | null;
    analysis_version: number | null;
  };
  analysis: Record<string, unknown> | null;
  tracks: Record<string, unknown>[];
  channels: Record<string, unknown>[];
  splits: Record<string, unknown>[];
}

function prepare(results: readonly FileResult[]): PreparedRow[] {
  // One row per path (the last result wins): ON CONFLICT cannot update the same row twice in one statement.
  const byPath = new Map<string, PreparedRow>();
  for (const r of results) {
    const row = prepareOne(r);
    byPath.set(row.key, row);
  }
  // Path order: concurrent writers lock rows in the same order and cannot deadlock.
  return [...byPath.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

function prepareOne(r: FileResult): PreparedRow {
  const raw = rawPath(r.path);
  const o = r.outcome;
  const row: PreparedRow = {
    key: raw.toString('hex'),
    file: {
      raw_path: `\\x${raw.toString('hex')}`,
      path: displayPath(raw),
      size_bytes: r.size,
      shard: r.shard,
      status: o.status,
      reason: o.status === 'ok' ? null : o.reason,
      warnings: o.warnings ?? [],
      sha256: r.sha256 ? `\\x${r.sha256.toString('hex')}` : null,
      analysis_version: r.analysisVersion ?? null,
    },
    analysis: null,
    tracks: [],
    channels: [],
    splits: [],
  };
  if (o.status !== 'ok') return row;
  if (!r.sha256) return asFailed(row, 'internal error: an analysed file has no content hash');
  const bad = firstNonFinite(o.analysis) ?? firstNonFinite(o.splitTracks ?? []);
  if (bad) return asFailed(row, `the analysis produced a number that is not finite: ${bad}`);
  row.analysis = analysisColumns(o.analysis);
  row.tracks = o.analysis.tracks.map((t) => ({
    track_index: t.index,
    name: t.name,
    channels: t.channels,
    note_count: t.noteCount,
    pitch_min: t.pitchMin,
    pitch_max: t.pitchMax,
    duration_seconds: t.durationSeconds,
    program: t.program,
    is_drum: t.isDrum,
  }));
  row.channels = o.analysis.channels.map((c) => ({
    channel: c.channel,
    program: c.program,
    program_name: c.programName,
    family: c.family,
    is_drum: c.isDrum,
    note_count: c.noteCount,
  }));
  row.splits = (o.splitTracks ?? []).map((s) => ({
    track_index: s.trackIndex,
    output_path: s.outputPath,
    size_bytes: s.size,
    sha256: `\\x${s.sha256.toString('hex')}`,
  }));
  return row;
}

function analysisColumns(a: FileAnalysis): Record<string, unknown> {
  return {
    format: a.format,
    division_kind: a.division.kind,
    ticks_per_quarter: a.division.kind === 'ppq' ? a.division.ticksPerQuarter : null,
    smpte_fps: a.division.kind === 'smpte' ? a.division.framesPerSecond : null,
    ticks_per_frame: a.division.kind === 'smpte' ? a.division.ticksPerFrame : null,
    track_count: a.trackCount,
    channel_count: a.channelCount,
    duration_seconds: a.durationSeconds,
    duration_ticks: a.durationTicks,
    main_bpm: a.mainBpm,
    tempo_map: a.tempoMap,
    time_signatures: a.timeSignatures,
    key_signatures: a.keySignatures,
    key_tonic: a.estimatedKey?.tonic ?? null,
    key_mode: a.estimatedKey?.mode ?? null,
    key_correlation: a.estimatedKey?.correlation ?? null,
    key_confidence: a.estimatedKey?.confidence ?? null,
    note_count: a.noteCount,
    pitch_min: a.pitchMin,
    pitch_max: a.pitchMax,
    distinct_pitches: a.distinctPitches,
    velocity_min: a.velocityMin,
    velocity_mean: a.velocityMean,
    velocity_max: a.velocityMax,
    note_density: a.noteDensity,
    max_polyphony: a.maxPolyphony,
    mean_polyphony: a.meanPolyphony,
    pitch_class_histogram: a.pitchClassHistogram,
    has_drums: a.hasDrums,
    control_change_count: a.controlChangeCount,
    pitch_bend_count: a.pitchBendCount,
  };
}

function asFailed(row: PreparedRow, reason: string): PreparedRow {
  return {
    ...row,
    file: { ...row.file, status: 'failed', reason },
    analysis: null,
    tracks: [],
    channels: [],
    splits: [],
  };
}

function summarise(rows: readonly PreparedRow[]): WriteSummary {
  const s = { ok: 0, failed: 0, skipped: 0 };
  for (const r of rows) s[r.file.status]++;
  return s;
}

/**
 * Upserts the file rows and deletes their old analyses (whose tracks, channels and split tracks go with them, by
 * cascade, at the end of the statement), returning each file's id. The DELETE reads the ids the INSERT returns.
 */
const FILE_ROWS_SQL = `
WITH f AS (
  INSERT INTO midi.files AS f (corpus_id, raw_path, path, size_bytes, shard, status, reason, warnings, sha256, analysis_version, attempts, analysed_at)
  SELECT $1, r.raw_path, r.path, r.size_bytes, r.shard, r.status, r.reason, r.warnings, r.sha256, r.analysis_version, 1, now()
    FROM jsonb_populate_recordset(NULL::midi.files, $2::jsonb) AS r
  ON CONFLICT (corpus_id, raw_path) DO UPDATE
    SET path = EXCLUDED.path, size_bytes = EXCLUDED.size_bytes, status = EXCLUDED.status, reason = EXCLUDED.reason,
        warnings = EXCLUDED.warnings, sha256 = EXCLUDED.sha256, analysis_version = EXCLUDED.analysis_version, attempts = f.attempts + 1,
        analysed_at = now(), updated_at = now()
  RETURNING id, raw_path),
old AS (DELETE FROM midi.file_analysis a USING f WHERE a.file_id = f.id)
SELECT id, encode(raw_path, 'hex') AS key FROM f`;

/**
 * Every child row of a batch in one statement, each table's rows a JSON array with their file ids in. The INSERTs go
 * to a table each, and the foreign keys are checked at the end of the statement, once the analyses are in. A separate
 * statement from FILE_ROWS_SQL because the old child rows must be gone (the cascade runs at the end of that
 * statement) before new ones with the same keys go in.
 */
const CHILD_ROWS_SQL = `
WITH analysis AS (INSERT INTO midi.file_analysis SELECT * FROM jsonb_populate_recordset(NULL::midi.file_analysis, $1::jsonb)),
tracks AS (INSERT INTO midi.tracks SELECT * FROM jsonb_populate_recordset(NULL::midi.tracks, $2::jsonb)),
channels AS (INSERT INTO midi.channel_instruments SELECT * FROM jsonb_populate_recordset(NULL::midi.channel_instruments, $3::jsonb))
INSERT INTO midi.split_tracks SELECT * FROM jsonb_populate_recordset(NULL::midi.split_tracks, $4::jsonb)`;

/**
 * The statements of one batch (inside the caller's transaction): two, whatever the batch holds, where there were one
 * per table. Named, so each connection parses them once. Round trips are what a batch costs most on a busy machine:
 * each one waits for the server's backend, and then this thread, to get a core again.
 */
async function writeRows(client: pg.ClientBase, corpusId: number, rows: readonly PreparedRow[]): Promise<void> {
  const { rows: ids } = await client.query<{ id: string; key: string }>({
    name: 'mco-write-files',
    text: FILE_ROWS_SQL,
    values: [corpusId, pgJson(rows.map((r) => r.file))],
  });
  const idOf = new Map(ids.map((r) => [r.key, r.id]));
  const ok = rows.filter((r) => r.analysis !== null);
  if (ok.length === 0) return;
  const withId = <T extends object>(r: PreparedRow, x: T) => ({ file_id: idOf.get(r.key), ...x });
  await client.query({
    name: 'mco-write-children',
    text: CHILD_ROWS_SQL,
    values: [
      pgJson(ok.map((r) => withId(r, r.analysis!))),
      pgJson(ok.flatMap((r) => r.tracks.map((t) => withId(r, t)))),
      pgJson(ok.flatMap((r) => r.channels.map((c) => withId(r, c)))),
      pgJson(ok.flatMap((r) => r.splits.map((s) => withId(r, s)))),
    ],
  });
}
