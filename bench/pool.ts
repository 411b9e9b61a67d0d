/**
 * Benchmarks (c) and (d): what the runner's pool buys and what it costs, against the database given.
 *
 * (c) Warm vs cold: the time from "the process starts" to the first committed batch (and, beside it, until every
 *     writer has committed its first). Both sides do the runner's start-up sequence on a new pool: migrate (already
 *     current, as for every pod after the first), list the shard, then one batch per writer, all writers at once.
 *     Cold is a default pg.Pool, which connects on first use; warm is RunnerPool.open(), which connects all its
 *     clients at once before anything else. Both start their parse workers (real threads loading the analysis code)
 *     at the same moment, as the runner does; the warm pool's extra connections are made while they start, the cold
 *     pool's when the batches are ready. Parsing itself is left out: it takes the same time on both sides and would
 *     only dilute the difference.
 * (d) Validation: many small batch writes, one after another through one pool, with a ping on every checkout,
 *     with the bypass window, and with no validation at all. The overhead is what validation adds to the time spent
 *     in acquire(), over the whole time of a write without validation. That is time / time without validation − 1
 *     with the part validation cannot affect (the write itself) taken out of the difference: on a shared machine the
 *     plain end-to-end difference of two totals varies by more than the 1–3 % being measured. The end-to-end figure
 *     is reported beside it (raw.validation.abOverhead).
 *
 * Both alternate their variants (round by round in (c), every few writes in (d)), so machine noise falls on all
 * variants alike.
 * Everything written goes into corpora named bench-pool-*, deleted at the end.
 */
import pg from 'pg';
import { analyzeMidi } from '../job-runner/analysis/analyze.js';
import { migrate } from '../job-runner/db/migrations.js';
import { ensureCorpus, recordScan, shardFiles, writeBatch, type FileResult } from '../job-runner/db/store.js';
import { applicationNameFor } from '../contract/application-name.js';
import { RunnerPool, type ValidationMode } from '../job-runner/pool/pool.js';
import { poolSizeFor } from '../contract/pool-sizing.js';
import { generateCorpus } from '../job-runner/synth/corpus.js';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { median } from './support/stats.js';

export interface PoolBenchOptions {
  /** Rounds of (c); each round runs cold and warm once. Default 21. */
  startRounds?: number;
  /** Writers starting together in (c) (the pool is poolSizeFor(writers × 1000 m)). Default 4. */
  writers?: number;
  /** Files per batch. Default 50 in (c), 5 in (d). */
  startBatchFiles?: number;
  smallBatchFiles?: number;
  /** Sequential batch writes per variant in (d). Default 1500. */
  writesPerVariant?: number;
  /** Bypass window for (d). Default 1000 ms, the pool's default. */
  bypassWindowMs?: number;
}

export interface PoolBenchResult {
  /** Median ms from start to the first committed batch, warm over cold (below 1: warm is faster). */
  warmFirstBatchOverCold: number;
  /** Time with a ping on every checkout over time without validation, minus 1. */
  validationOverheadPingEvery: number;
  /** Time with the bypass window over time without validation, minus 1. */
  validationOverheadBypass: number;
  raw: {
    start: {
      rounds: number;
      writers: number;
      poolMax: number;
      batchFiles: number;
      /** Median ms from start to the first committed batch. */
      coldFirstBatchMedianMs: number;
      warmFirstBatchMedianMs: number;
      /** Median ms from start until every writer has committed its first batch. */
      coldAllWritersMedianMs: number;
      warmAllWritersMedianMs: number;
      warmAllWritersOverCold: number;
      /** Of the warm side: how long open() took. */
      warmOpenMedianMs: number;
    };
    validation: {
      writesPerVariant: number;
      /** Writes per turn: the variants take turns every this many writes. */
      sliceWrites: number;
      batchFiles: number;
      bypassWindowMs: number;
      /** Time spent per variant (checkout + write + release), summed over its turns. */
      totalMs: Record<ValidationMode, number>;
      /** Of which in acquire(): where validation happens. */
      checkoutMs: Record<ValidationMode, number>;
      perWriteMs: Record<ValidationMode, number>;
      perCheckoutMs: Record<ValidationMode, number>;
      /** Pings sent (bypass-window sends about none: its connection is never idle for a whole window). */
      pings: Record<ValidationMode, number>;
      /** (checkout time − checkout time without validation) / total time without validation: the reported ratios. */
      overhead: Record<ValidationMode, number>;
      /** total time / total time without validation − 1: the same quantity measured end to end, noisier. */
      abOverhead: Record<ValidationMode, number>;
    };
  };
}

export async function benchPool(databaseUrl: string, options: PoolBenchOptions = {}): Promise<PoolBenchResult> {
  const o = {
    startRounds: options.startRounds ?? 21,
    writers: options.writers ?? 4,
    startBatchFiles: options.startBatchFiles ?? 50,
    smallBatchFiles: options.smallBatchFiles ?? 5,
    writesPerVariant: options.writesPerVariant ?? 1500,
    bypassWindowMs: options.bypassWindowMs ?? 1000,
  };
  const results = analysedResults(Math.max(o.writers * o.startBatchFiles, o.smallBatchFiles * 20));
  const admin = new pg.Client({
    connectionString: databaseUrl,
    application_name: applicationNameFor({ role: 'bench' }),
  });
  await admin.connect();
  const prefix = `bench-pool-${process.pid}-${Date.now()}`;
  try {
    await migrate(admin);
    const start = await benchStart(databaseUrl, admin, prefix, results, o);
    const validation = await benchValidation(databaseUrl, admin, prefix, results, o);
    return {
      warmFirstBatchOverCold: start.warmFirstBatchMedianMs / start.coldFirstBatchMedianMs,
      validationOverheadPingEvery: validation.overhead.always,
      validationOverheadBypass: validation.overhead['bypass-window'],
      raw: { start, validation },
    };
  } finally {
    await admin.query('DELETE FROM midi.corpora WHERE key LIKE $1', [`${prefix}%`]).catch(() => {});
    await admin.end();
  }
}

/** Real analyses of generated songs, shaped as the runner hands them to writeBatch (path and shard set later). */
export function analysedResults(n: number): Omit<FileResult, 'path' | 'shard'>[] {
  return generateCorpus({ files: n, seed: 7, song: { size: 'small' } }).map((f) => {
    const outcome = analyzeMidi(f.bytes);
    if (!outcome.ok) throw new Error(`generated song ${f.path} failed analysis: ${outcome.reason}`);
    return {
      size: f.bytes.length,
      sha256: createHash('sha256').update(f.bytes).digest(),
      outcome: { status: 'ok', analysis: outcome.analysis, warnings: outcome.warnings },
    };
  });
}

/** Every option given: what (c) and (d) run with; bench/pool-latency.ts runs them behind a delaying proxy too. */
export type PoolBenchSettings = Required<PoolBenchOptions>;

export async function benchStart(
  url: string,
  admin: pg.Client,
  prefix: string,
  results: Omit<FileResult, 'path' | 'shard'>[],
  o: PoolBenchSettings,
) {
  const size = poolSizeFor(o.writers * 1000);
  const coldFirstMs: number[] = [];
  const warmFirstMs: number[] = [];
  const coldAllMs: number[] = [];
  const warmAllMs: number[] = [];
  const openMs: number[] = [];
  for (let round = 0; round < o.startRounds; round++) {
    for (const side of round % 2 === 0 ? (['cold', 'warm'] as const) : (['warm', 'cold'] as const)) {
      // A fresh corpus per run, scanned beforehand (as the scan Job would have), so each run inserts the same rows.
      const key = `${prefix}-start-${side}-${round}`;
      const corpus = await ensureCorpus(admin, key);
      const batches = Array.from({ length: o.writers }, (_, w) =>
        results
          .slice(w * o.startBatchFiles, (w + 1) * o.startBatchFiles)
          .map((r, i) => ({ ...r, path: `w${w}/f${i}.mid`, shard: 0 })),
      );
      await recordScan(
        admin,
        corpus,
        batches.flat().map((r) => ({ path: r.path, size: r.size })),
        { shards: { shards: 1 } },
      );
      const applicationName = applicationNameFor({ role: 'bench', corpus: key });
      const t0 = performance.now();
      // The runner starts its parse workers while it gets its database work under way; both sides do the same here.
      const workersUp = startParseWorkers(o.writers);
      if (side === 'cold') {
        const pool = new pg.Pool({ connectionString: url, max: size.max, application_name: applicationName });
        const use = async <T>(fn: (c: pg.PoolClient) => Promise<T>) => {
          const c = await pool.connect();
          try {
            return await fn(c);
          } finally {
            c.release();
          }
        };
        await Promise.all([workersUp, use(migrate).then(() => use((c) => shardFiles(c, corpus, 0)))]);
        const firsts = await Promise.all(
          batches.map((b) => use((c) => writeBatch(c, corpus, b)).then(() => performance.now() - t0)),
        );
        coldFirstMs.push(Math.min(...firsts));
        coldAllMs.push(Math.max(...firsts));
        await pool.end();
        await stopWorkers(await workersUp);
      } else {
        const pool = new RunnerPool({ connectionString: url, size, applicationName, statsIntervalMs: 0 });
        // Migration and listing start on the first connection up while open() brings up the rest.
        const opening = pool.open().then(() => openMs.push(performance.now() - t0));
        await Promise.all([
          workersUp,
          opening,
          pool.use(migrate).then(() => pool.use((c) => shardFiles(c, corpus, 0))),
        ]);
        const firsts = await Promise.all(
          batches.map((b) => pool.use((c) => writeBatch(c, corpus, b)).then(() => performance.now() - t0)),
        );
        warmFirstMs.push(Math.min(...firsts));
        warmAllMs.push(Math.max(...firsts));
        await pool.close();
        await stopWorkers(await workersUp);
      }
    }
  }
  return {
    rounds: o.startRounds,
    writers: o.writers,
    poolMax: size.max,
    batchFiles: o.startBatchFiles,
    coldFirstBatchMedianMs: medianMs(coldFirstMs),
    warmFirstBatchMedianMs: medianMs(warmFirstMs),
    coldAllWritersMedianMs: medianMs(coldAllMs),
    warmAllWritersMedianMs: medianMs(warmAllMs),
    warmAllWritersOverCold: medianMs(warmAllMs) / medianMs(coldAllMs),
    warmOpenMedianMs: medianMs(openMs),
  };
}

/**
 * Starts `n` threads that load the analysis module, as the runner's parse workers do, and resolves when all are
 * ready: the start-up work a runner has besides its database.
 */
async function startParseWorkers(n: number): Promise<Worker[]> {
  const analysis = new URL('../job-runner/analysis/analyze.js', import.meta.url).href;
  const code = `import(${JSON.stringify(analysis)}).then(() => require('node:worker_threads').parentPort.postMessage('ready'));`;
  const workers = Array.from({ length: n }, () => new Worker(code, { eval: true }));
  await Promise.all(workers.map((w) => once(w, 'message')));
  return workers;
}

async function stopWorkers(workers: Worker[]): Promise<void> {
  await Promise.all(workers.map((w) => w.terminate()));
}

export async function benchValidation(
  url: string,
  admin: pg.Client,
  prefix: string,
  results: Omit<FileResult, 'path' | 'shard'>[],
  o: PoolBenchSettings,
) {
  const modes: ValidationMode[] = ['never', 'always', 'bypass-window'];
  const totalMs = mapModes(() => 0);
  const pings = mapModes(() => 0);
  const checkoutMs = mapModes(() => 0);
  const pools = new Map<ValidationMode, { pool: RunnerPool; corpus: number }>();
  for (const mode of modes) {
    const key = `${prefix}-validation-${mode}`;
    const pool = new RunnerPool({
      connectionString: url,
      size: { max: 2, warm: 2 },
      applicationName: applicationNameFor({ role: 'bench', corpus: key }),
      validation: mode,
      bypassWindowMs: o.bypassWindowMs,
      statsIntervalMs: 0,
    });
    await pool.open();
    pools.set(mode, { pool, corpus: await ensureCorpus(admin, key) });
  }
  try {
    // The same twenty small batches, written over and over: each write replaces the rows of the one before.
    const batches = Array.from({ length: 20 }, (_, b) =>
      results
        .slice(b * o.smallBatchFiles, (b + 1) * o.smallBatchFiles)
        .map((r, i) => ({ ...r, path: `b${b}/f${i}.mid`, shard: 0 })),
    );
    // Short slices, the variants taking turns in a rotating order: a burst of load from another process on this
    // machine then falls on all of them alike instead of on whichever variant ran at that moment.
    const slices = Math.ceil(o.writesPerVariant / SLICE_WRITES);
    for (let slice = -1; slice < slices; slice++) {
      // Slice −1 warms every variant up (first inserts, plan caches) and is not counted.
      const order = modes.map((_, i) => modes[(i + Math.max(0, slice)) % modes.length]!);
      for (const mode of order) {
        const { pool, corpus } = pools.get(mode)!;
        const pingsBefore = pool.stats().pings;
        let checkout = 0;
        const t0 = performance.now();
        for (let i = 0; i < SLICE_WRITES; i++) {
          const a = performance.now();
          const client = await pool.acquire();
          checkout += performance.now() - a;
          await writeBatch(client, corpus, batches[i % batches.length]!);
          client.release();
        }
        if (slice >= 0) {
          totalMs[mode] += performance.now() - t0;
          checkoutMs[mode] += checkout;
          pings[mode] += pool.stats().pings - pingsBefore;
        }
      }
    }
    const writes = slices * SLICE_WRITES;
    return {
      writesPerVariant: writes,
      sliceWrites: SLICE_WRITES,
      batchFiles: o.smallBatchFiles,
      bypassWindowMs: o.bypassWindowMs,
      totalMs: mapModes((m) => round2(totalMs[m])),
      checkoutMs: mapModes((m) => round2(checkoutMs[m])),
      perWriteMs: mapModes((m) => round3(totalMs[m] / writes)),
      perCheckoutMs: mapModes((m) => round3(checkoutMs[m] / writes)),
      pings,
      // What validation adds to each checkout, over the time a write takes without validation.
      overhead: mapModes((m) => (checkoutMs[m] - checkoutMs.never) / totalMs.never),
      // The plain A/B comparison of total times: the same quantity, but it carries the machine's noise in full.
      abOverhead: mapModes((m) => totalMs[m] / totalMs.never - 1),
    };
  } finally {
    await Promise.all([...pools.values()].map(({ pool }) => pool.close()));
  }
}

/** Writes per variant before the next one takes its turn in (d). */
const SLICE_WRITES = 10;

function mapModes(f: (m: ValidationMode) => number): Record<ValidationMode, number> {
  return { never: f('never'), always: f('always'), 'bypass-window': f('bypass-window') };
}

function medianMs(xs: readonly number[]): number {
  return round2(median(xs));
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
