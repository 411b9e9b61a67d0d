/**
 * Benchmark (f): `midi-corpus export`'s memory does not grow with the corpus. The same analysed files are cloned into
 * a small corpus and one a hundred times larger (BENCH_EXPORT_ROWS, default 200 000), and each is exported as CSV and
 * as Parquet, two ways:
 *
 * - by the real command, to a file: time, rate, output size and the process's peak resident memory (VmHWM, sampled
 *   from /proc every 20 ms until it exits). RSS is what a person sees, but it also counts garbage V8 has not yet
 *   collected, and V8 collects later when it has more to do, so it grows somewhat with a long export all the same;
 * - in this process, with a garbage collection before every tenth fetch is written: the live JavaScript heap. This
 *   is the figure that says whether anything is held per row. A reader that held the result would need about a
 *   hundred times more for the large corpus; a streamed one needs the same.
 *
 * Figures, not a pass/fail: the ratio of the large export's live heap to the small one's (about 1 when it streams).
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import pg from 'pg';
import { analyzeMidi } from '../job-runner/analysis/analyze.js';
import { ANALYSIS_VERSION } from '../job-runner/analysis/version.js';
import { migrate } from '../job-runner/db/migrations.js';
import { ensureCorpus, writeBatch, type FileResult } from '../job-runner/db/store.js';
import { exportFiles, type RowSink } from '../job-runner/results/export.js';
import type { ExportFormat } from '../job-runner/results/export-options.js';
import { sinkFor } from '../job-runner/results/formats.js';
import { generateCorpus } from '../job-runner/synth/corpus.js';
import { measureProcess } from './measure-process.js';

const CLI_MAIN = fileURLToPath(new URL('../cli/main.js', import.meta.url));

export interface ExportRun {
  corpus: string;
  format: string;
  rows: number;
  seconds: number;
  rowsPerSecond: number;
  outputBytes: number;
  peakRssMb: number;
}

export interface ExportBenchResult {
  smallRows: number;
  largeRows: number;
  runs: ExportRun[];
  /** The most live heap (MB, after a forced GC) seen during each in-process export, per corpus and format. */
  liveHeapMb: Array<{ corpus: string; format: string; rows: number; maxMb: number; samples: number }>;
  /** Live heap of the large export over the small one's, per format: about 1 when the export streams. */
  liveHeapLargeOverSmall: Record<string, number>;
  /** The same for the command's peak RSS, which also counts garbage not yet collected. */
  peakRssLargeOverSmall: Record<string, number>;
}

const SEED_FILES = 20;

export async function benchExport(
  databaseUrl: string,
  options: { largeRows?: number; smallRows?: number } = {},
): Promise<ExportBenchResult> {
  const largeRows = options.largeRows ?? 200_000;
  const smallRows = options.smallRows ?? Math.max(SEED_FILES, Math.round(largeRows / 100));
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'mco bench export' });
  await client.connect();
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'mco-bench-export-'));
  try {
    await migrate(client);
    const seed = await ensureCorpus(client, 'bench-export-seed', {});
    const results: FileResult[] = generateCorpus({ files: SEED_FILES, seed: 9 }).map((f, i) => {
      const outcome = analyzeMidi(f.bytes);
      if (!outcome.ok) throw new Error(`seed file ${f.path} did not analyse: ${outcome.reason}`);
      return {
        path: `seed-${i}.mid`,
        size: f.bytes.length,
        shard: 0,
        sha256: createHash('sha256').update(f.bytes).digest(),
        outcome: { status: 'ok', analysis: outcome.analysis, warnings: outcome.warnings },
        analysisVersion: ANALYSIS_VERSION,
      };
    });
    await writeBatch(client, seed, results);
    await cloneCorpus(client, seed, 'bench-export-small', Math.ceil(smallRows / SEED_FILES));
    await cloneCorpus(client, seed, 'bench-export-large', Math.ceil(largeRows / SEED_FILES));
    const runs: ExportRun[] = [];
    for (const format of ['csv', 'parquet']) {
      for (const corpus of ['bench-export-small', 'bench-export-large']) {
        runs.push(await timedExport(databaseUrl, corpus, format, path.join(tmp, `${corpus}.${format}`)));
      }
    }
    const liveHeapMb: ExportBenchResult['liveHeapMb'] = [];
    for (const format of ['csv', 'parquet'] as const) {
      for (const corpus of ['bench-export-small', 'bench-export-large']) {
        liveHeapMb.push(await liveHeap(client, corpus, format, path.join(tmp, `heap-${corpus}.${format}`)));
      }
    }
    const largeOverSmall = <T extends { format: string }>(xs: T[], figure: (x: T) => number) =>
      Object.fromEntries(
        ['csv', 'parquet'].map((f) => {
          const [small, large] = xs.filter((x) => x.format === f);
          return [f, figure(large!) / figure(small!)];
        }),
      );
    return {
      smallRows: runs[0]!.rows,
      largeRows: runs[1]!.rows,
      runs,
      liveHeapMb,
      liveHeapLargeOverSmall: largeOverSmall(liveHeapMb, (x) => x.maxMb),
      peakRssLargeOverSmall: largeOverSmall(runs, (x) => x.peakRssMb),
    };
  } finally {
    await client.end().catch(() => {});
    await rm(tmp, { recursive: true, force: true });
  }
}

/** `copies` copies of every file of `seed` (and their analysis and instruments) under a new corpus key. */
async function cloneCorpus(client: pg.Client, seed: number, key: string, copies: number): Promise<void> {
  const corpus = await ensureCorpus(client, key, {});
  const columns = async (table: string) =>
    (
      await client.query<{ column_name: string }>(
        `SELECT column_name FROM information_schema.columns
          WHERE table_schema = 'midi' AND table_name = $1 AND column_name <> 'file_id' ORDER BY ordinal_position`,
        [table],
      )
    ).rows.map((r) => pg.escapeIdentifier(r.column_name));
  const analysis = await columns('file_analysis');
  const instruments = await columns('channel_instruments');
  // Copies are named <seed path>/<n>, so each finds its original again by its path without the suffix.
  const originals = `midi.files n JOIN midi.files s ON s.corpus_id = $2 AND s.path = regexp_replace(n.path, '/\\d+$', '')`;
  await client.query('BEGIN');
  await client.query(
    `INSERT INTO midi.files (corpus_id, raw_path, path, size_bytes, shard, status, sha256, analysis_version, analysed_at, attempts)
     SELECT $1, convert_to(s.path || '/' || g, 'UTF8'), s.path || '/' || g, s.size_bytes, 0, s.status, s.sha256,
            s.analysis_version, s.analysed_at, 1
       FROM midi.files s CROSS JOIN generate_series(1, $3) g WHERE s.corpus_id = $2`,
    [corpus, seed, copies],
  );
  await client.query(
    `INSERT INTO midi.file_analysis (file_id, ${analysis.join(', ')})
     SELECT n.id, ${analysis.map((c) => `a.${c}`).join(', ')}
       FROM ${originals} JOIN midi.file_analysis a ON a.file_id = s.id WHERE n.corpus_id = $1`,
    [corpus, seed],
  );
  await client.query(
    `INSERT INTO midi.channel_instruments (file_id, ${instruments.join(', ')})
     SELECT n.id, ${instruments.map((c) => `ci.${c}`).join(', ')}
       FROM ${originals} JOIN midi.channel_instruments ci ON ci.file_id = s.id WHERE n.corpus_id = $1`,
    [corpus, seed],
  );
  await client.query('COMMIT');
  await client.query('ANALYZE midi.files, midi.file_analysis, midi.channel_instruments');
}

/** The global gc() without starting node with --expose-gc: the flag may be set at run time, then read from a context. */
function collector(): () => void {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

/** Exports in this process, collecting garbage before every tenth fetch is written, and returns the most live heap. */
async function liveHeap(client: pg.Client, corpus: string, format: ExportFormat, output: string) {
  const gc = collector();
  const out = createWriteStream(output);
  const inner = sinkFor(format, out);
  let fetches = 0;
  let maxBytes = 0;
  let samples = 0;
  const sink: RowSink = {
    write: async (rows) => {
      if (fetches++ % 10 === 0) {
        gc();
        maxBytes = Math.max(maxBytes, process.memoryUsage().heapUsed);
        samples++;
      }
      await inner.write(rows);
    },
    end: () => inner.end(),
  };
  const rows = await exportFiles(client, { filter: { corpus, statuses: ['ok'] }, sink });
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  return { corpus, format, rows, maxMb: maxBytes / 1e6, samples };
}

/** Runs the real `export` command and samples its peak resident memory until it exits. */
async function timedExport(databaseUrl: string, corpus: string, format: string, output: string): Promise<ExportRun> {
  const run = await measureProcess(process.execPath, [
    CLI_MAIN,
    'export',
    '--database-url',
    databaseUrl,
    '--corpus',
    corpus,
    '--format',
    format,
    '-o',
    output,
  ]);
  if (run.code !== 0) throw new Error(`export of ${corpus} as ${format} exited ${run.code}: ${run.stderr.slice(-500)}`);
  const rows = Number(/exported (\d+) files/.exec(run.stderr)?.[1]);
  return {
    corpus,
    format,
    rows,
    seconds: run.seconds,
    rowsPerSecond: rows / run.seconds,
    outputBytes: (await stat(output)).size,
    peakRssMb: run.peakRssMb,
  };
}
