import pg from 'pg';
import { migrate } from '../db/migrations.js';
import { UsageError } from '../runner/errors.js';
import { DEFAULT_FETCH_SIZE } from './export-options.js';
import { filterSql, type ExportFilter } from './filters.js';

/**
 * `midi-corpus export`'s reading side: the files midi.v_files holds, filtered, read through a server-side cursor
 * FETCH by FETCH, so a corpus of millions of files costs the memory of one fetch (and of one Parquet row group), not
 * of the whole result. COPY TO would stream too, but COPY takes no bind parameters, and the filters' values must
 * never be spliced into SQL text; a cursor declared with parameters keeps both promises.
 */

export type ColumnType = 'text' | 'int32' | 'int64' | 'double' | 'bool' | 'timestamp' | 'text[]' | 'int32[]';

export interface ExportColumn {
  /** A column of midi.v_files, and the name the export gives it. */
  name: string;
  type: ColumnType;
}

/** What an export carries for each file, in order. Every name is a column of midi.v_files (migration 0004). */
export const EXPORT_COLUMNS: readonly ExportColumn[] = [
  { name: 'corpus', type: 'text' },
  { name: 'path', type: 'text' },
  { name: 'status', type: 'text' },
  { name: 'reason', type: 'text' },
  { name: 'warnings', type: 'text[]' },
  { name: 'size_bytes', type: 'int64' },
  { name: 'sha256', type: 'text' },
  { name: 'analysis_version', type: 'int32' },
  { name: 'analysed_at', type: 'timestamp' },
  { name: 'format', type: 'int32' },
  { name: 'track_count', type: 'int32' },
  { name: 'channel_count', type: 'int32' },
  { name: 'ticks_per_quarter', type: 'int32' },
  { name: 'duration_seconds', type: 'double' },
  { name: 'bpm', type: 'double' },
  { name: 'tempo_changes', type: 'int32' },
  { name: 'meter', type: 'text' },
  { name: 'meter_changes', type: 'int32' },
  { name: 'key_tonic', type: 'text' },
  { name: 'key_mode', type: 'text' },
  { name: 'key', type: 'text' },
  { name: 'key_confidence', type: 'double' },
  { name: 'key_signature', type: 'text' },
  { name: 'note_count', type: 'int64' },
  { name: 'note_density', type: 'double' },
  { name: 'max_polyphony', type: 'int32' },
  { name: 'mean_polyphony', type: 'double' },
  { name: 'pitch_min', type: 'int32' },
  { name: 'pitch_max', type: 'int32' },
  { name: 'distinct_pitches', type: 'int32' },
  { name: 'velocity_mean', type: 'double' },
  { name: 'has_drums', type: 'bool' },
  { name: 'programs', type: 'int32[]' },
  { name: 'instruments', type: 'text[]' },
  { name: 'families', type: 'text[]' },
  { name: 'control_change_count', type: 'int64' },
  { name: 'pitch_bend_count', type: 'int64' },
];

export type ExportValue = string | number | boolean | null | string[] | number[];
/** One file, its values in EXPORT_COLUMNS order. */
export type ExportRow = ExportValue[];

/** Where the rows go: a format writer (formats.ts). write() resolves when the rows may be dropped (backpressure). */
export interface RowSink {
  write(rows: readonly ExportRow[]): Promise<void>;
  end(): Promise<void>;
}

/** The statement and its parameters, for `filter`: every value a parameter (filters.ts). */
export function exportStatement(filter: ExportFilter): { text: string; values: unknown[] } {
  const { where, params } = filterSql(filter);
  const columns = EXPORT_COLUMNS.map((c) => `v.${pg.escapeIdentifier(c.name)}`).join(', ');
  // file_id order follows the primary key: a fast-start plan for the cursor, and the same order on every export.
  return { text: `SELECT ${columns} FROM midi.v_files v ${where} ORDER BY v.file_id`, values: params };
}

export interface ExportOptions {
  filter: ExportFilter;
  sink: RowSink;
  fetchSize?: number;
  /** Called after each FETCH with the rows it returned (tests watch the cursor's pace with it). */
  onFetch?: (rows: number) => void;
}

/**
 * Reads the filtered files through a cursor and hands each fetch to the sink, waiting for the sink before the next
 * FETCH, so at most one fetch is held in memory. One REPEATABLE READ, READ ONLY transaction: the export is one
 * consistent snapshot even while runners write, and it can change nothing. Returns the number of rows exported.
 */
export async function exportFiles(client: pg.ClientBase, options: ExportOptions): Promise<number> {
  const fetchSize = options.fetchSize ?? DEFAULT_FETCH_SIZE;
  if (!Number.isInteger(fetchSize) || fetchSize < 1) throw new RangeError(`fetch size must be a whole number ≥ 1`);
  const statement = exportStatement(options.filter);
  let total = 0;
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    await client.query({
      text: `DECLARE midi_export NO SCROLL CURSOR FOR ${statement.text}`,
      values: statement.values,
    });
    for (;;) {
      const { rows } = await client.query<unknown[]>({
        text: `FETCH FORWARD ${fetchSize} FROM midi_export`,
        rowMode: 'array',
      });
      options.onFetch?.(rows.length);
      if (rows.length === 0) break;
      await options.sink.write(rows.map(toExportRow));
      total += rows.length;
      if (rows.length < fetchSize) break;
    }
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  }
  await options.sink.end();
  return total;
}

/** pg's values as the export writes them: bigint (a string from pg) as a number, a timestamp as ISO 8601. */
function toExportRow(raw: unknown[]): ExportRow {
  return EXPORT_COLUMNS.map((c, i) => {
    const v = raw[i];
    if (v === null || v === undefined) return null;
    switch (c.type) {
      case 'int64':
        return Number(v);
      case 'timestamp':
        return (v as Date).toISOString();
      default:
        return v as ExportValue;
    }
  });
}

/**
 * Makes sure the views are there before an export reads them: a database that holds no `midi` schema at all is a
 * wrong --database-url or --data-dir (refused, nothing created); one an older release migrated gets the missing
 * migrations, as every runner would apply them.
 */
export async function prepareForExport(client: pg.ClientBase, databaseUrl: string, corpus?: string): Promise<void> {
  // describeDatabaseUrl's text without its scheme: describeError scrubs anything that starts like a connection URI.
  const database = `database ${databaseUrl.replace(/^[a-z]+:\/\//i, '')}`;
  const { rows } = await client.query<{ ingested: boolean; views: boolean }>(
    "SELECT to_regclass('midi.files') IS NOT NULL AS ingested, to_regclass('midi.v_files') IS NOT NULL AS views",
  );
  if (!rows[0]!.ingested) throw new UsageError(`nothing was ingested into ${database}: it has no midi.files table`);
  if (!rows[0]!.views) await migrate(client);
  if (corpus === undefined) return;
  if ((await client.query('SELECT 1 FROM midi.corpora WHERE key = $1', [corpus])).rowCount) return;
  const known = await client.query<{ key: string }>('SELECT key FROM midi.corpora ORDER BY key LIMIT 11');
  const list = known.rows.slice(0, 10).map((r) => JSON.stringify(r.key));
  throw new UsageError(
    `--corpus: no corpus ${JSON.stringify(corpus)} in ${database}; ` +
      (list.length ? `it has ${list.join(', ')}${known.rows.length > 10 ? ', …' : ''}` : 'it has none'),
  );
}
