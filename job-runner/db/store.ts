import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { firstNonFinite } from '../analysis/finite.js';
import { ANALYSIS_VERSION } from '../analysis/version.js';
import type { FileAnalysis } from '../analysis/types.js';
import { describeError } from '../../contract/describe-error.js';
import { planShards, type ShardPlan, type ShardRequest } from '../../contract/shards.js';
import { displayPath, rawPath } from './paths.js';
import { copyText, Json, type CopyValue } from './copy-text.js';
import { copyChunks, copyChunksAsync } from './scan-copy.js';
import { pgJson, pgText } from './text.js';
import { inTransaction, isDataError } from './transaction.js';

/**
 * Everything the runner, the scan and local mode write to or read from Postgres. Every write is idempotent:
 * writing the same thing twice leaves the same rows.
 *
 * Functions take a client rather than a pool, so the caller decides which connection (and so how many) to use.
 */

/** `missing`: recorded by an earlier scan, absent from the last one; its results are kept. */
export type FileStatus = 'pending' | 'ok' | 'failed' | 'skipped' | 'missing';

/** One entry of a scan's listing. `path` is relative to the corpus root: raw bytes, or a JS string (stored as UTF-8). */
export interface ScannedFile {
  path: Buffer | string;
  size: number;
  /** Modification time in whole microseconds since the epoch; null or absent when unknown (then the size decides). */
  modifiedUs?: number | null;
  /** The scan records this entry itself (not a regular file, outside the root...): no runner is given it. */
  problem?: boolean;
}

/**
 * What a scan found, compared with the scan before it. `added + changed + unchanged = files`; `missing` are recorded
 * files absent from this listing.
 */
export interface ListingSummary {
  /** Distinct paths in this listing. */
  files: number;
  /** Paths recorded for the first time. */
  added: number;
  /** Known paths whose size or modification time differs from the last scan (or that were missing): pending again. */
  changed: number;
  unchanged: number;
  /** Recorded files this listing does not have: marked missing, their results kept. */
  missing: number;
  /** Files given a shard of this run: added, changed, pending, failed, or made by an older analysis version. */
  work: number;
  /** Shards of this run, 0..shards-1, over the `work` files only; the rest are parked on shard number `shards`. */
  shards: number;
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
  /** Files on the volume at the last scan (missing ones apart). */
  total: number;
  ok: number;
  failed: number;
  skipped: number;
  pending: number;
  /** Recorded once, absent from the last scan. */
  missing: number;
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
 * Records a scan's listing in one transaction and compares it with what the last scan recorded, so that a run again
 * does only the work that is needed. The listing is streamed with COPY into a temporary table and merged from there:
 *
 * - a new path is inserted, pending;
 * - a known path whose size or modification time differs (either unknown: the size alone), or that was missing, goes
 *   back to pending with its hash cleared, so the runner analyses it; its old analysis stays until the new result
 *   replaces it (writeBatch), so a reader never sees a file that was analysed lose its figures in between;
 * - a file settled without a content hash (it could not be read, or was skipped) that the listing no longer finds a
 *   problem is pending again: the cause may be gone;
 * - a recorded path absent from the listing is marked missing; its reason, hash and analysis are kept;
 * - anything else keeps its result.
 *
 * Only the files that need work (pending, failed, or made by an older analysis version) are given the run's shards:
 * `shards(work)` decides how many (planShards, in path order, so the same listing gives the same shards). Every other
 * file is parked on shard number `shards`, one past the last index of the run's Indexed Job, so no runner ever lists
 * it, let alone reads it. Entries the listing marks as problems are parked too: the scan records them itself.
 */
export async function recordScan(
  client: pg.ClientBase,
  corpusId: number,
  files: Iterable<ScannedFile> | AsyncIterable<ScannedFile>,
  options: { shards: ShardRequest | ((work: number) => ShardRequest) },
): Promise<ListingSummary> {
  return inTransaction(client, async () => {
    await client.query(
      `CREATE TEMP TABLE scan_in (raw_path bytea NOT NULL, path text NOT NULL, size_bytes bigint NOT NULL,
                                  modified_at timestamptz, problem boolean NOT NULL)
       ON COMMIT DROP`,
    );
    const chunks = Symbol.asyncIterator in files ? copyChunksAsync(files) : copyChunks(files);
    await pipeline(Readable.from(chunks), client.query(copyFrom('COPY pg_temp.scan_in FROM STDIN (FORMAT binary)')));
    // Autovacuum never analyses temporary tables: without statistics the planner takes the listing for a couple of
    // hundred distinct paths and looks each one up in the index (five seconds a million) instead of one merge join.
    await client.query('ANALYZE pg_temp.scan_in');
    // One row per listed path with what the last scan recorded for it, what changed, whether it needs work, and its
    // rank among the files that need work in path order (the window reads the rows in the order DISTINCT ON sorted
    // them, so the listing is sorted once).
    await client.query(
      `CREATE TEMP TABLE scan_cmp ON COMMIT DROP AS
       WITH listed AS (
         SELECT DISTINCT ON (raw_path) * FROM pg_temp.scan_in ORDER BY raw_path),
       compared AS (
         SELECT l.*, f.id AS file_id, f.status, f.path AS old_path, f.size_bytes AS old_size,
                f.modified_at AS old_modified_at, f.shard AS old_shard,
                CASE WHEN f.id IS NULL THEN 'added'
                     WHEN f.status = 'missing' OR f.size_bytes <> l.size_bytes OR f.modified_at <> l.modified_at
                       THEN 'changed'
                     ELSE 'unchanged' END AS change,
                f.status IN ('failed', 'skipped') AND f.sha256 IS NULL AS settled_unread,
                f.status = 'ok' AND f.analysis_version IS DISTINCT FROM $2 AS outdated
           FROM listed l LEFT JOIN midi.files f ON f.corpus_id = $1 AND f.raw_path = l.raw_path),
       judged AS (
         SELECT *, NOT problem AND status <> 'pending' AND (change = 'changed' OR settled_unread) AS reset
           FROM compared),
       worked AS (
         SELECT *, NOT problem AND (change = 'added' OR reset OR status IN ('pending', 'failed') OR outdated) AS work
           FROM judged)
       SELECT *, count(*) FILTER (WHERE work) OVER (ORDER BY raw_path ROWS UNBOUNDED PRECEDING) - 1 AS rank
         FROM worked`,
      [corpusId, ANALYSIS_VERSION],
    );
    const { rows } = await client.query<Record<'files' | 'added' | 'changed' | 'work' | 'known' | 'recorded', string>>(
      `SELECT count(*) AS files, count(*) FILTER (WHERE change = 'added') AS added,
              count(*) FILTER (WHERE change = 'changed') AS changed, count(*) FILTER (WHERE work) AS work,
              count(file_id) AS known, (SELECT count(*) FROM midi.files WHERE corpus_id = $1) AS recorded
         FROM pg_temp.scan_cmp`,
      [corpusId],
    );
    const counts = rows[0]!;
    const work = Number(counts.work);
    const plan = planShards(work, typeof options.shards === 'function' ? options.shards(work) : options.shards);
    // The i-th file needing work (in path order) goes to shard planShards(...).shardOf(i): width_bucket finds it by
    // binary search in the shards' first indexes, so the SQL follows the plan instead of repeating its arithmetic.
    const shard = `CASE WHEN s.work THEN width_bucket(s.rank, $1::bigint[]) - 1 ELSE $2 END`;
    const shardParams = [shardStarts(plan, work), plan.shards];
    // Known files: only those whose row changes are written, so a rescan of an unchanged corpus writes nothing. They
    // are picked out first: a new temporary table's size is known to the planner, so a handful of changed files is
    // looked up by id rather than joined with every row of the corpus.
    await client.query(
      `CREATE TEMP TABLE scan_changed ON COMMIT DROP AS
       SELECT * FROM (SELECT file_id, reset, path, size_bytes, modified_at, ${shard} AS new_shard, old_path, old_size,
                             old_modified_at, old_shard
                        FROM pg_temp.scan_cmp s WHERE file_id IS NOT NULL) s
        WHERE reset OR (old_path, old_size, old_modified_at, old_shard)
                       IS DISTINCT FROM (path, size_bytes, modified_at, new_shard)`,
      shardParams,
    );
    await client.query(
      `UPDATE midi.files f
          SET path = s.path, size_bytes = s.size_bytes, modified_at = s.modified_at, shard = s.new_shard,
              scanned_at = now(), updated_at = now(),
              status = CASE WHEN s.reset THEN 'pending' ELSE f.status END,
              reason = CASE WHEN s.reset THEN NULL ELSE f.reason END,
              warnings = CASE WHEN s.reset THEN '{}' ELSE f.warnings END,
              sha256 = CASE WHEN s.reset THEN NULL ELSE f.sha256 END,
              analysis_version = CASE WHEN s.reset THEN NULL ELSE f.analysis_version END,
              analysed_at = CASE WHEN s.reset THEN NULL ELSE f.analysed_at END
         FROM pg_temp.scan_changed s
        WHERE f.id = s.file_id`,
    );
    // New files, in path order (the indexes on path and shard then grow at their ends). A conflict means another scan
    // of the same corpus recorded the file meanwhile: this scan's listing and plan win, as they would have before.
    await client.query(
      `INSERT INTO midi.files AS f (corpus_id, raw_path, path, size_bytes, modified_at, shard)
       SELECT $3, raw_path, path, size_bytes, modified_at, ${shard}
         FROM pg_temp.scan_cmp s WHERE file_id IS NULL ORDER BY raw_path
       ON CONFLICT (corpus_id, raw_path) DO UPDATE
         SET path = EXCLUDED.path, size_bytes = EXCLUDED.size_bytes, modified_at = EXCLUDED.modified_at,
             shard = EXCLUDED.shard, scanned_at = now(), updated_at = now()`,
      [...shardParams, corpusId],
    );
    // Recorded files the listing does not have; when it has them all (every rescan of a corpus that lost nothing),
    // there is nothing to look for.
    const listed = Number(counts.files);
    const missing = Number(counts.recorded) - Number(counts.known);
    if (missing > 0)
      await client.query(
        `UPDATE midi.files f SET status = 'missing', shard = $2, updated_at = now()
          WHERE f.corpus_id = $1 AND (f.status <> 'missing' OR f.shard <> $2)
            AND NOT EXISTS (SELECT 1 FROM pg_temp.scan_cmp s WHERE s.raw_path = f.raw_path)`,
        [corpusId, plan.shards],
      );
    await client.query('UPDATE midi.corpora SET shard_count = $2, updated_at = now() WHERE id = $1', [
      corpusId,
      plan.shards,
    ]);
    const added = Number(counts.added);
    const changed = Number(counts.changed);
    return { files: listed, added, changed, unchanged: listed - added - changed, missing, work, shards: plan.shards };
  });
}

/** The first index of each shard of a plan over `files` files, ascending (width_bucket's thresholds). */
function shardStarts(plan: ShardPlan, files: number): number[] {
  const starts: number[] = [];
  for (let i = 0; i < files; i++) if (plan.shardOf(i) === starts.length) starts.push(i);
  return starts;
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
    `SELECT count(*) FILTER (WHERE status <> 'missing') AS total,
            count(*) FILTER (WHERE status = 'ok') AS ok,
            count(*) FILTER (WHERE status = 'failed') AS failed,
            count(*) FILTER (WHERE status = 'skipped') AS skipped,
            count(*) FILTER (WHERE status = 'pending') AS pending,
            count(*) FILTER (WHERE status = 'missing') AS missing
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
    missing: Number(r.missing),
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

export interface WriteOptions {
  /**
   * Use named prepared statements, parsed once per connection. Default true; false behind a transaction pooler without
   * prepared-statement support, where a statement prepared on one server connection is not there for the next
   * transaction (RunnerPool.namedStatements).
   */
  namedStatements?: boolean;
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
  options: WriteOptions = {},
): Promise<WriteSummary> {
  const rows = prepare(results);
  if (rows.length === 0) return { ok: 0, failed: 0, skipped: 0 };
  const named = options.namedStatements ?? true;
  const writeRows = (batch: readonly PreparedRow[]) => writeRowsOf(client, corpusId, batch, named);
  try {
    await inTransaction(client, () => writeRows(rows));
    return summarise(rows);
  } catch (err) {
    if (!isDataError(err)) throw err;
  }
  const written = await inTransaction(client, async () => {
    const out: PreparedRow[] = [];
    for (const row of rows) {
      await client.query('SAVEPOINT one_file');
      try {
        await writeRows([row]);
        await client.query('RELEASE SAVEPOINT one_file');
        out.push(row);
      } catch (err) {
        if (!isDataError(err)) throw err;
        await client.query('ROLLBACK TO SAVEPOINT one_file');
        const failed = asFailed(row, `the database refused the analysis: ${describeError(err)}`);
        await writeRows([failed]);
        out.push(failed);
      }
    }
    return out;
  });
  return summarise(written);
}

/** A result in the shape of the tables (keys = column names): the file row as JSON, its children as COPY rows. */
interface PreparedRow {
  key: string;
  file: {
    raw_path: string;
    path: string;
    size_bytes: number;
    shard: number;
    status: Exclude<FileStatus, 'pending' | 'missing'>;
    reason: string | null;
    warnings: string[];
    sha256: string | null;
    analysis_version: number | null;
  };
  analysis: ChildRow<typeof ANALYSIS_COLUMNS> | null;
  tracks: ChildRow<typeof TRACK_COLUMNS>[];
  channels: ChildRow<typeof CHANNEL_COLUMNS>[];
  splits: ChildRow<typeof SPLIT_COLUMNS>[];
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
  row.tracks = o.analysis.tracks.map((t): ChildRow<typeof TRACK_COLUMNS> => ({
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
  row.channels = o.analysis.channels.map((c): ChildRow<typeof CHANNEL_COLUMNS> => ({
    channel: c.channel,
    program: c.program,
    program_name: c.programName,
    family: c.family,
    is_drum: c.isDrum,
    note_count: c.noteCount,
  }));
  row.splits = (o.splitTracks ?? []).map((s): ChildRow<typeof SPLIT_COLUMNS> => ({
    track_index: s.trackIndex,
    output_path: s.outputPath,
    size_bytes: s.size,
    sha256: `\\x${s.sha256.toString('hex')}`,
  }));
  return row;
}

function analysisColumns(a: FileAnalysis): ChildRow<typeof ANALYSIS_COLUMNS> {
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
 * The columns each child table is written with. Named, never a COPY without a column list (or `INSERT … SELECT *` of
 * the table's row type): that writes every column the table has in the database, so a column a later release adds (an expand step: docs/database.md,
 * "Upgrades") would get NULL over its default from this release, and a NOT NULL one would refuse its rows. The row
 * builders (prepareOne) are typed by these lists, so a column cannot be built and not written, or the other way round.
 */
export const ANALYSIS_COLUMNS = [
  'file_id',
  'format',
  'division_kind',
  'ticks_per_quarter',
  'smpte_fps',
  'ticks_per_frame',
  'track_count',
  'channel_count',
  'duration_seconds',
  'duration_ticks',
  'main_bpm',
  'tempo_map',
  'time_signatures',
  'key_signatures',
  'key_tonic',
  'key_mode',
  'key_correlation',
  'key_confidence',
  'note_count',
  'pitch_min',
  'pitch_max',
  'distinct_pitches',
  'velocity_min',
  'velocity_mean',
  'velocity_max',
  'note_density',
  'max_polyphony',
  'mean_polyphony',
  'pitch_class_histogram',
  'has_drums',
  'control_change_count',
  'pitch_bend_count',
] as const;
export const TRACK_COLUMNS = [
  'file_id',
  'track_index',
  'name',
  'channels',
  'note_count',
  'pitch_min',
  'pitch_max',
  'duration_seconds',
  'program',
  'is_drum',
] as const;
export const CHANNEL_COLUMNS = [
  'file_id',
  'channel',
  'program',
  'program_name',
  'family',
  'is_drum',
  'note_count',
] as const;
const SPLIT_COLUMNS = ['file_id', 'track_index', 'output_path', 'size_bytes', 'sha256'] as const;

/** A child row as the builders make it: every column of its list but file_id, which writeRowsOf adds. */
type ChildRow<C extends readonly string[]> = Record<Exclude<C[number], 'file_id'>, unknown>;

/** The child tables' jsonb columns: their lists are JSON, where any other list is an array column. */
const JSON_COLUMNS: ReadonlySet<string> = new Set(['tempo_map', 'time_signatures', 'key_signatures']);

/**
 * The statements of one batch (inside the caller's transaction): the file rows, then a COPY into each child table
 * that has rows (analyses, tracks, channels, split tracks). The file rows first, because the old child rows must be
 * gone (the cascade runs at the end of FILE_ROWS_SQL) before new ones with the same keys go in, and the children need
 * the files' ids. A child row is never there already, so the children need no ON CONFLICT and go in by COPY: the
 * server reads each field with the column's input function and inserts the rows a page at a time, where one INSERT …
 * SELECT from jsonb_populate_recordset parsed a JSON document, made a jsonb value of every field, turned it back into
 * text for the same input function, and inserted row by row (twice the server CPU per file: README, "Design notes").
 * Up to five round trips a batch, where there were two: a few tens of microseconds each on any network, against
 * hundreds of microseconds of server CPU saved per file. The file rows keep their named statement (unnamed behind a
 * transaction pooler, `named` false: RunnerPool.namedStatements); COPY has nothing to prepare, and works behind a
 * transaction pooler as it runs inside the batch's transaction.
 */
async function writeRowsOf(
  client: pg.ClientBase,
  corpusId: number,
  rows: readonly PreparedRow[],
  named: boolean,
): Promise<void> {
  const { rows: ids } = await client.query<{ id: string; key: string }>({
    ...(named ? { name: 'mco-write-files' } : {}),
    text: FILE_ROWS_SQL,
    values: [corpusId, pgJson(rows.map((r) => r.file))],
  });
  const idOf = new Map(ids.map((r) => [r.key, r.id]));
  const ok = rows.filter((r) => r.analysis !== null);
  const children = <C extends readonly string[]>(columns: C, of: (r: PreparedRow) => ChildRow<C>[]) =>
    ok.flatMap((r) => {
      const id = idOf.get(r.key)!;
      return of(r).map((x) =>
        columns.map((c): CopyValue => {
          if (c === 'file_id') return id;
          const v = x[c as keyof typeof x];
          return (JSON_COLUMNS.has(c) ? new Json(v) : v) as CopyValue;
        }),
      );
    });
  await copyInto(
    client,
    'file_analysis',
    ANALYSIS_COLUMNS,
    children(ANALYSIS_COLUMNS, (r) => [r.analysis!]),
  );
  await copyInto(
    client,
    'tracks',
    TRACK_COLUMNS,
    children(TRACK_COLUMNS, (r) => r.tracks),
  );
  await copyInto(
    client,
    'channel_instruments',
    CHANNEL_COLUMNS,
    children(CHANNEL_COLUMNS, (r) => r.channels),
  );
  await copyInto(
    client,
    'split_tracks',
    SPLIT_COLUMNS,
    children(SPLIT_COLUMNS, (r) => r.splits),
  );
}

async function copyInto(
  client: pg.ClientBase,
  table: string,
  columns: readonly string[],
  rows: readonly CopyValue[][],
): Promise<void> {
  if (rows.length === 0) return;
  await pipeline(
    Readable.from(copyText(rows)),
    client.query(copyFrom(`COPY midi.${table} (${columns.join(', ')}) FROM STDIN`)),
  );
}
