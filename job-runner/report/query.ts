import type pg from 'pg';
import { DRUM_FAMILY, GM_FAMILIES } from '../analysis/gm.js';
import { UsageError } from '../runner/errors.js';
import { chooseCorpus } from './choose-corpus.js';
import {
  DENSITY_EDGES,
  DURATION_EDGES,
  emptyHistogram,
  KEY_MODES,
  KEY_TONICS,
  orderStatuses,
  REPORT_LIMITS,
  TEMPO_EDGES,
  topWithOther,
  type Count,
  type Histogram,
  type ReportModel,
} from './model.js';

/**
 * The SQL half of `midi-corpus report`: fills a ReportModel from the database over the ONE connection it is given.
 * Every query is an aggregate (or a list with a LIMIT), so the memory a report takes does not grow with the corpus;
 * they run in one read-only REPEATABLE READ transaction, so the figures agree with each other even while runners are
 * still writing (a report taken mid-run shows one moment, not a blend of several).
 */

export interface ReadReportOptions {
  /** --corpus: required only when the database holds several corpora. */
  corpus?: string;
  /** For the page's header: host, port and database, no credentials. */
  database: string;
  now?: Date;
}

export async function readReportModel(client: pg.ClientBase, options: ReadReportOptions): Promise<ReportModel> {
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    const model = await readInSnapshot(client, options);
    await client.query('COMMIT');
    return model;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  }
}

async function readInSnapshot(client: pg.ClientBase, options: ReadReportOptions): Promise<ReportModel> {
  const keys = (await corpusKeys(client)).map((r) => r.key);
  const corpus = chooseCorpus(keys, options.corpus);
  const id = Number(
    (await client.query<{ id: string }>('SELECT id FROM midi.corpora WHERE key = $1', [corpus])).rows[0]!.id,
  );
  const q = async <R extends pg.QueryResultRow>(sql: string, params: unknown[] = []) =>
    (await client.query<R>(sql, [id, ...params])).rows;

  const statusRows = await q<{ status: string; n: string; scanned: Date | null; analysed: Date | null }>(
    `SELECT status, count(*) AS n, max(scanned_at) AS scanned, max(analysed_at) AS analysed
       FROM midi.files WHERE corpus_id = $1 GROUP BY status`,
  );
  const statuses = orderStatuses(statusRows.map((r) => ({ label: r.status, count: Number(r.n) })));
  const latest = (dates: Array<Date | null>) =>
    dates.reduce<Date | null>((a, d) => (d !== null && (a === null || d > a) ? d : a), null)?.toISOString() ?? null;

  // The kind is the reason up to its first ': ' (analysis/failure.ts); reasons made elsewhere group whole.
  const kindRows = await q<{ kind: string; n: string; example: string; kinds: string }>(
    `SELECT split_part(reason, ': ', 1) AS kind, count(*) AS n, min(path) AS example, count(*) OVER () AS kinds
       FROM midi.files WHERE corpus_id = $1 AND status IN ('failed', 'skipped')
      GROUP BY 1 ORDER BY n DESC, kind LIMIT $2`,
    [REPORT_LIMITS.failureKinds],
  );
  const failedFiles = await q<{ path: string; status: string; reason: string }>(
    `SELECT path, status, reason FROM midi.files WHERE corpus_id = $1 AND status IN ('failed', 'skipped')
      ORDER BY raw_path LIMIT $2`,
    [REPORT_LIMITS.failedFiles],
  );

  const analysedFrom = `FROM midi.files f JOIN midi.file_analysis a ON a.file_id = f.id
     WHERE f.corpus_id = $1 AND f.status = 'ok'`;
  const [totals] = await q<{ files: string; seconds: number; notes: string; drums: string; no_key: string }>(
    `SELECT count(*) AS files, coalesce(sum(a.duration_seconds), 0)::float8 AS seconds,
            coalesce(sum(a.note_count), 0) AS notes, count(*) FILTER (WHERE a.has_drums) AS drums,
            count(*) FILTER (WHERE a.key_tonic IS NULL) AS no_key ${analysedFrom}`,
  );
  const keyRows = await q<{ tonic: string; mode: string; n: string }>(
    `SELECT a.key_tonic AS tonic, a.key_mode AS mode, count(*) AS n ${analysedFrom} AND a.key_tonic IS NOT NULL
      GROUP BY 1, 2`,
  );
  const histogram = async (column: string, edges: readonly number[]): Promise<Histogram> => {
    const h = emptyHistogram(edges);
    const rows = await q<{ bin: number; n: string }>(
      `SELECT width_bucket(${column}::float8, $2::float8[]) AS bin, count(*) AS n ${analysedFrom} GROUP BY 1`,
      [edges],
    );
    for (const r of rows) h.counts[r.bin] = Number(r.n);
    return h;
  };
  const meterRows = await q<{ meter: string; n: string }>(
    `SELECT coalesce((a.time_signatures -> 0 ->> 'numerator') || '/' || (a.time_signatures -> 0 ->> 'denominator'),
                     'none') AS meter, count(*) AS n ${analysedFrom} GROUP BY 1`,
  );
  const channelsFrom = `FROM midi.files f JOIN midi.channel_instruments c ON c.file_id = f.id
     WHERE f.corpus_id = $1 AND f.status = 'ok'`;
  const familyRows = await q<{ family: string; n: string }>(
    `SELECT c.family, count(DISTINCT c.file_id) AS n ${channelsFrom} GROUP BY 1`,
  );
  const kitRows = await q<{ kit: string; n: string; notes: string }>(
    `SELECT c.program_name AS kit, count(DISTINCT c.file_id) AS n, sum(c.note_count) AS notes
       ${channelsFrom} AND c.is_drum GROUP BY 1`,
  );

  const keyCount = new Map(keyRows.map((r) => [`${r.tonic} ${r.mode}`, Number(r.n)]));
  const familyCount = new Map(familyRows.map((r) => [r.family, Number(r.n)]));
  // A family this release does not know (a newer analysis's) is shown after the known ones rather than dropped.
  const families = [...GM_FAMILIES, DRUM_FAMILY, ...[...familyCount.keys()].filter((f) => !knownFamily(f)).sort()];

  return {
    corpus,
    database: options.database,
    generatedAt: (options.now ?? new Date()).toISOString(),
    lastScannedAt: latest(statusRows.map((r) => r.scanned)),
    lastAnalysedAt: latest(statusRows.map((r) => r.analysed)),
    statuses,
    totalFiles: statuses.reduce((sum, s) => sum + s.count, 0),
    failureKinds: kindRows.map((r) => ({ kind: r.kind, count: Number(r.n), example: r.example })),
    failureKindTotal: kindRows[0] ? Number(kindRows[0].kinds) : 0,
    failedFiles,
    notOk: statuses.filter((s) => s.label === 'failed' || s.label === 'skipped').reduce((a, s) => a + s.count, 0),
    analysed: { files: Number(totals!.files), totalSeconds: totals!.seconds, notes: Number(totals!.notes) },
    keys: KEY_TONICS.flatMap((tonic) =>
      KEY_MODES.map((mode) => ({ tonic, mode, count: keyCount.get(`${tonic} ${mode}`) ?? 0 })),
    ),
    noKey: Number(totals!.no_key),
    tempo: await histogram('a.main_bpm', TEMPO_EDGES),
    meters: topWithOther(
      meterRows.map((r): Count => ({ label: r.meter, count: Number(r.n) })),
      REPORT_LIMITS.meters,
    ),
    duration: await histogram('a.duration_seconds', DURATION_EDGES),
    density: await histogram('a.note_density', DENSITY_EDGES),
    families: families.map((label) => ({ label, count: familyCount.get(label) ?? 0 })),
    drums: {
      withDrums: Number(totals!.drums),
      drumNotes: kitRows.reduce((sum, r) => sum + Number(r.notes), 0),
      kits: topWithOther(
        kitRows.map((r): Count => ({ label: r.kit, count: Number(r.n) })),
        REPORT_LIMITS.drumKits,
      ),
    },
  };
}

/** Postgres' undefined_table: the schema was never migrated into this database. */
const UNDEFINED_TABLE = '42P01';

async function corpusKeys(client: pg.ClientBase): Promise<Array<{ key: string }>> {
  try {
    return (await client.query<{ key: string }>('SELECT key FROM midi.corpora ORDER BY key')).rows;
  } catch (err) {
    if ((err as { code?: unknown }).code === UNDEFINED_TABLE)
      throw new UsageError(
        'this database holds no midi-corpus schema (no midi.corpora table): is it the right one? ' +
          'midi-corpus local, scan or migrate create it',
      );
    throw err;
  }
}

function knownFamily(family: string): boolean {
  return family === DRUM_FAMILY || GM_FAMILIES.includes(family);
}
