/**
 * Benchmarks (b) and (e): the whole runner against its parts and against the obvious way to do the job.
 *
 * (b) End to end vs analysis alone, same files, same number of parse workers. End to end is `midi-corpus run-shard`,
 *     the real process, timed by its own summary (pool open, migration check and shard listing included); analysis
 *     alone is the runner's ParsePool over the same files — read, hash, analyse, results back to the main thread — with
 *     no database. The ratio says how much of the parser's speed survives the trip into Postgres (target ≥ 0.8). Each
 *     end-to-end round uses a corpus key of its own, so it really writes every file (a rerun would skip them all).
 *     Rounds alternate the two sides; the ratio is the median of the rounds' ratios.
 * (e) A naive ingester: one file after another, a new connection per file, one INSERT per row, autocommit — what a
 *     first script would do. Run over an evenly spread subset of the corpus (it is slow), against the end-to-end
 *     runner's rate in files per second.
 *
 * Every round runs all three back to back (analysis alone, the runner, the naive ingester), and each ratio is the
 * median of the rounds' ratios: on a shared machine, load from elsewhere comes and goes within seconds, and two
 * measurements taken moments apart suffer it alike, where medians taken from different minutes would not.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { analyzeMidi } from '../job-runner/analysis/analyze.js';
import { DEFAULT_READER_LIMITS } from '../job-runner/analysis/smf-reader.js';
import type { FileAnalysis } from '../job-runner/analysis/types.js';
import { migrate } from '../job-runner/db/migrations.js';
import { ensureCorpus } from '../job-runner/db/store.js';
import { applicationNameFor } from '../contract/application-name.js';
import { ParsePool } from '../job-runner/runner/parse-pool.js';
import { FILES_QUEUED_PER_WORKER, type ShardSummary } from '../job-runner/runner/run-shard.js';
import { scanCorpus } from '../job-runner/runner/scan.js';
import { median } from './support/stats.js';

const CLI_MAIN = fileURLToPath(new URL('../cli/main.js', import.meta.url));

export interface Throughput {
  files: number;
  bytes: number;
  seconds: number;
  filesPerSecond: number;
  mbPerSecond: number;
}

export interface RunnerBenchResult {
  workers: number;
  rounds: number;
  /** Medians over the rounds. */
  analysisAlone: Throughput;
  endToEnd: Throughput;
  naive: Throughput & { insertsPerFile: number };
  /** Median of the rounds' end-to-end over analysis-alone rates. */
  endToEndOverAnalysis: number;
  /** Median of the rounds' end-to-end over naive rates (files per second). */
  speedupOverNaive: number;
  /** Every round, for the record: files per second of each side. */
  perRound: { analysisAlone: number; endToEnd: number; naive: number }[];
}

export function throughput(files: number, bytes: number, seconds: number): Throughput {
  return { files, bytes, seconds, filesPerSecond: files / seconds, mbPerSecond: bytes / 1e6 / seconds };
}

/** The runner's parse workers over every file, without a database: the ceiling for (b) and (n). */
export async function analysisAlone(
  root: string,
  paths: string[],
  workers: number,
  bytes: number,
): Promise<Throughput> {
  const rootBytes = Buffer.from(path.resolve(root));
  const started = process.hrtime.bigint();
  const pool = new ParsePool({ workers, fileTimeoutMs: 60_000 });
  try {
    // As the runner feeds them.
    const inFlight = new Set<Promise<unknown>>();
    for (const p of paths) {
      while (inFlight.size >= workers * FILES_QUEUED_PER_WORKER) await Promise.race(inFlight);
      const job = pool
        .parse({
          path: Buffer.from(path.join(root, p)),
          root: rootBytes,
          knownSha256: null,
          maxFileBytes: 64 << 20,
          maxEvents: DEFAULT_READER_LIMITS.maxEvents,
          splitOutputDir: null,
        })
        .finally(() => inFlight.delete(job));
      inFlight.add(job);
    }
    await Promise.all(inFlight);
  } finally {
    await pool.close();
  }
  return throughput(paths.length, bytes, Number(process.hrtime.bigint() - started) / 1e9);
}

/**
 * One real `run-shard` process over the corpus recorded under `corpus` (one shard), given `cpuMillis` (its workers and
 * pool follow from it) and any further `flags`; `cpus`: pinned there by taskset.
 */
export function runShardProcess(
  databaseUrl: string,
  corpus: string,
  root: string,
  options: { cpuMillis: number; cpus?: string; flags?: readonly string[] },
): Promise<ShardSummary> {
  const { cpuMillis, cpus, flags = [] } = options;
  return new Promise((resolve, reject) => {
    const node = [process.execPath, CLI_MAIN];
    const child = spawn(
      cpus === undefined ? node[0]! : 'taskset',
      [
        ...(cpus === undefined ? node.slice(1) : ['-c', cpus, ...node]),
        'run-shard',
        '--corpus',
        corpus,
        '--root',
        root,
        '--shard',
        '0',
        '--cpu-millis',
        String(cpuMillis),
        '--json',
        ...flags,
      ],
      {
        env: { ...process.env, DATABASE_URL: databaseUrl, LOG_LEVEL: 'warn' },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    child.once('close', (code) => {
      if (code !== 0) return reject(new Error(`run-shard exited with code ${code}`));
      resolve(JSON.parse(out.trim().split('\n').pop()!) as ShardSummary);
    });
  });
}

export interface RunnerBenchOptions {
  databaseUrl: string;
  root: string;
  paths: string[];
  bytes: number;
  /** Parse workers of the runner and of analysis alone. */
  workers: number;
  rounds: number;
  /** The subset the naive ingester runs over. */
  naivePaths: string[];
}

export async function benchRunner(options: RunnerBenchOptions): Promise<RunnerBenchResult> {
  const { databaseUrl, root, paths, bytes, workers, rounds } = options;
  const admin = new pg.Client({
    connectionString: databaseUrl,
    application_name: applicationNameFor({ role: 'bench' }),
  });
  await admin.connect();
  const sides = { alone: [] as Throughput[], e2e: [] as Throughput[], naive: [] as NaiveResult[] };
  const prefix = `bench-runner-${process.pid}`;
  try {
    await migrate(admin);
    for (let round = 0; round < rounds; round++) {
      sides.alone.push(await analysisAlone(root, paths, workers, bytes));
      const corpus = `${prefix}-${round}`;
      const scan = await scanCorpus(admin, { corpus, root, shards: { shards: 1 } });
      if (scan.files !== paths.length) throw new Error(`scan found ${scan.files} files, expected ${paths.length}`);
      const summary = await runShardProcess(databaseUrl, corpus, root, { cpuMillis: workers * 1000 });
      if (summary.recorded.ok + summary.recorded.failed !== paths.length)
        throw new Error(`run-shard recorded ${JSON.stringify(summary.recorded)} of ${paths.length}`);
      sides.e2e.push(throughput(paths.length, bytes, summary.durationSeconds));
      sides.naive.push(await naiveIngest(admin, databaseUrl, `${prefix}-naive-${round}`, root, options.naivePaths));
      const [a, e, n] = [sides.alone.at(-1)!, sides.e2e.at(-1)!, sides.naive.at(-1)!.naive];
      process.stderr.write(
        `bench:   round ${round + 1}: analysis alone ${a.filesPerSecond.toFixed(0)}, end to end ${e.filesPerSecond.toFixed(0)}, naive ${n.filesPerSecond.toFixed(0)} files/s\n`,
      );
    }
  } finally {
    await admin.query('DELETE FROM midi.corpora WHERE key LIKE $1', [`${prefix}-%`]).catch(() => {});
    await admin.end();
  }
  const perRound = sides.alone.map((a, i) => ({
    analysisAlone: a.filesPerSecond,
    endToEnd: sides.e2e[i]!.filesPerSecond,
    naive: sides.naive[i]!.naive.filesPerSecond,
  }));
  const medianThroughput = (ts: Throughput[]) =>
    throughput(ts[0]!.files, ts[0]!.bytes, median(ts.map((t) => t.seconds)));
  return {
    workers,
    rounds,
    analysisAlone: medianThroughput(sides.alone),
    endToEnd: medianThroughput(sides.e2e),
    naive: { ...medianThroughput(sides.naive.map((n) => n.naive)), insertsPerFile: sides.naive[0]!.insertsPerFile },
    endToEndOverAnalysis: median(perRound.map((r) => r.endToEnd / r.analysisAlone)),
    speedupOverNaive: median(perRound.map((r) => r.endToEnd / r.naive)),
    perRound,
  };
}

export interface NaiveResult {
  naive: Throughput;
  /** Statements per file, on average (one per row, plus the connection's own setup). */
  insertsPerFile: number;
}

/** (e): a connection per file, an INSERT per row, autocommit, one file after another. */
async function naiveIngest(
  admin: pg.Client,
  databaseUrl: string,
  corpus: string,
  root: string,
  paths: string[],
): Promise<NaiveResult> {
  let inserts = 0;
  let bytes = 0;
  const corpusId = await ensureCorpus(admin, corpus);
  const started = process.hrtime.bigint();
  for (const p of paths) {
    const data = await readFile(path.join(root, p));
    bytes += data.length;
    const sha256 = createHash('sha256').update(data).digest();
    const outcome = analyzeMidi(data);
    const client = new pg.Client({ connectionString: databaseUrl, application_name: 'mco bench naive' });
    await client.connect();
    try {
      const { rows } = await client.query<{ id: string }>(
        `INSERT INTO midi.files (corpus_id, raw_path, path, size_bytes, shard, status, reason, warnings, sha256, attempts, analysed_at)
         VALUES ($1, $2, $3, $4, 0, $5, $6, $7, $8, 1, now()) RETURNING id`,
        [
          corpusId,
          Buffer.from(p),
          p,
          data.length,
          outcome.ok ? 'ok' : 'failed',
          outcome.ok ? null : outcome.reason,
          outcome.warnings,
          sha256,
        ],
      );
      inserts++;
      if (outcome.ok) inserts += await insertAnalysisRows(client, rows[0]!.id, outcome.analysis);
    } finally {
      await client.end();
    }
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { naive: throughput(paths.length, bytes, seconds), insertsPerFile: inserts / paths.length };
}

/** The analysis, its tracks and its channels, each row its own INSERT. Returns the number of statements. */
async function insertAnalysisRows(client: pg.Client, fileId: string, a: FileAnalysis): Promise<number> {
  const key = a.estimatedKey;
  await client.query(
    `INSERT INTO midi.file_analysis (file_id, format, division_kind, ticks_per_quarter, smpte_fps, ticks_per_frame, track_count,
       channel_count, duration_seconds, duration_ticks, main_bpm, tempo_map, time_signatures, key_signatures, key_tonic, key_mode,
       key_correlation, key_confidence, note_count, pitch_min, pitch_max, distinct_pitches, velocity_min, velocity_mean,
       velocity_max, note_density, max_polyphony, mean_polyphony, pitch_class_histogram, has_drums, control_change_count, pitch_bend_count)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26,
       $27, $28, $29, $30, $31, $32)`,
    [
      fileId,
      a.format,
      a.division.kind,
      a.division.kind === 'ppq' ? a.division.ticksPerQuarter : null,
      a.division.kind === 'smpte' ? a.division.framesPerSecond : null,
      a.division.kind === 'smpte' ? a.division.ticksPerFrame : null,
      a.trackCount,
      a.channelCount,
      a.durationSeconds,
      a.durationTicks,
      a.mainBpm,
      JSON.stringify(a.tempoMap),
      JSON.stringify(a.timeSignatures),
      JSON.stringify(a.keySignatures),
      key?.tonic ?? null,
      key?.mode ?? null,
      key?.correlation ?? null,
      key?.confidence ?? null,
      a.noteCount,
      a.pitchMin,
      a.pitchMax,
      a.distinctPitches,
      a.velocityMin,
      a.velocityMean,
      a.velocityMax,
      a.noteDensity,
      a.maxPolyphony,
      a.meanPolyphony,
      a.pitchClassHistogram,
      a.hasDrums,
      a.controlChangeCount,
      a.pitchBendCount,
    ],
  );
  for (const t of a.tracks) {
    await client.query(
      `INSERT INTO midi.tracks (file_id, track_index, name, channels, note_count, pitch_min, pitch_max, duration_seconds, program, is_drum)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
      [
        fileId,
        t.index,
        t.name,
        t.channels,
        t.noteCount,
        t.pitchMin,
        t.pitchMax,
        t.durationSeconds,
        t.program,
        t.isDrum,
      ],
    );
  }
  for (const c of a.channels) {
    await client.query(
      `INSERT INTO midi.channel_instruments (file_id, channel, program, program_name, family, is_drum, note_count)
       VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [fileId, c.channel, c.program, c.programName, c.family, c.isDrum, c.noteCount],
    );
  }
  return 1 + a.tracks.length + a.channels.length;
}
