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

  // One scan of the analysed files for all their figures: GROUPING SETS count keys, the three histograms' bins and
  // meters side by side, and the empty set gives the totals. Five separate scans took 2.4 times as long over 1.3
  // million files.
  const groups = await q<AnalysedGroup>(
    `SELECT grouping(tonic, mode) = 0 AS by_key, grouping(tempo) = 0 AS by_tempo,
            grouping(duration) = 0 AS by_duration, grouping(density) = 0 AS by_density, grouping(meter) = 0 AS by_meter,
            tonic, mode, tempo, duration, density, meter, count(*) AS n,
            coalesce(sum(seconds), 0)::float8 AS seconds, coalesce(sum(notes), 0) AS notes,
            count(*) FILTER (WHERE has_drums) AS drums
       FROM (SELECT a.key_tonic AS tonic, a.key_mode AS mode,
                    width_bucket(a.main_bpm::float8, $2::float8[]) AS tempo,
                    width_bucket(a.duration_seconds::float8, $3::float8[]) AS duration,
                    width_bucket(a.note_density::float8, $4::float8[]) AS density,
                    coalesce((a.time_signatures -> 0 ->> 'numerator') || '/' || (a.time_signatures -> 0 ->> 'denominator'),
                             'none') AS meter,
                    a.duration_seconds AS seconds, a.note_count AS notes, a.has_drums
               FROM midi.files f JOIN midi.file_analysis a ON a.file_id = f.id
              WHERE f.corpus_id = $1 AND f.status = 'ok') analysed
      GROUP BY GROUPING SETS ((tonic, mode), (tempo), (duration), (density), (meter), ())`,
    [TEMPO_EDGES, DURATION_EDGES, DENSITY_EDGES],
  );
  const totals = groups.find((g) => !g.by_key && !g.by_tempo && !g.by_duration && !g.by_density && !g.by_meter)!;
  const keyRows = groups.filter((g) => g.by_key && g.tonic !== null);
  const histogram = (edges: readonly number[], bin: (g: AnalysedGroup) => number | null): Histogram => {
    const h = emptyHistogram(edges);
    for (const g of groups) {
      const i = bin(g);
      if (i !== null) h.counts[i] = Number(g.n);
    }
    return h;
  };
  const meterRows = groups.filter((g) => g.by_meter);
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
  const noKey = groups.find((g) => g.by_key && g.tonic === null);
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
    analysed: { files: Number(totals.n), totalSeconds: totals.seconds, notes: Number(totals.notes) },
    keys: KEY_TONICS.flatMap((tonic) =>
      KEY_MODES.map((mode) => ({ tonic, mode, count: keyCount.get(`${tonic} ${mode}`) ?? 0 })),
    ),
    noKey: noKey ? Number(noKey.n) : 0,
    tempo: histogram(TEMPO_EDGES, (g) => (g.by_tempo ? g.tempo : null)),
    meters: topWithOther(
      meterRows.map((r): Count => ({ label: r.meter!, count: Number(r.n) })),
      REPORT_LIMITS.meters,
    ),
    duration: histogram(DURATION_EDGES, (g) => (g.by_duration ? g.duration : null)),
    density: histogram(DENSITY_EDGES, (g) => (g.by_density ? g.density : null)),
    families: families.map((label) => ({ label, count: familyCount.get(label) ?? 0 })),
    drums: {
      withDrums: Number(totals.drums),
      drumNotes: kitRows.reduce((sum, r) => sum + Number(r.notes), 0),
      kits: topWithOther(
        kitRows.map((r): Count => ({ label: r.kit, count: Number(r.n) })),
        REPORT_LIMITS.drumKits,
      ),
    },
  };
}

/** A row of the analysed files' GROUPING SETS: which set it belongs to, that set's columns, its count and sums. */
interface AnalysedGroup {
  by_key: boolean;
  by_tempo: boolean;
  by_duration: boolean;
  by_density: boolean;
  by_meter: boolean;
  tonic: string | null;
  mode: string | null;
  tempo: number | null;
  duration: number | null;
  density: number | null;
  meter: string | null;
  n: string;
  seconds: number;
  notes: string;
  drums: string;
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
