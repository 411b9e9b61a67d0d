/**
 * Benchmark (o): the pool's claims under real network latency. Loopback hides what a pool does about round trips, and
 * this kernel has no netem, so every figure here goes through a TCP proxy that holds each chunk for half the round
 * trip in each direction (bench/support/tcp-proxy.ts), between the pool and the same Postgres. At each round trip
 * (0.5, 2 and 10 ms by default), side by side:
 *
 * - warm vs cold: start to first committed batch, (c) of bench/pool.ts behind the proxy;
 * - validation: a ping on every checkout vs the bypass window, (d) of bench/pool.ts behind the proxy, with batches of
 *   the runner's default size; the overhead per batch in ms and as a share of the batch's time;
 * - connections: a real `midi-corpus run-shard` process over a real shard, with one connection per worker (the
 *   default, plus the extra one), half as many, and one, in files per second;
 * - the seed's claim ("10-15 % faster" from warm pools, one connection per worker and validation on checkout, against
 *   a new connection per operation): the runner's pipeline (its parse workers, BatchWriter and writeBatch, over a
 *   shard listed from the database) through a new connection per operation, through a warm pool pinging on every
 *   checkout (the seed's design), and through the pool as it ships (warm, bypass window), in files per second. In
 *   this process rather than through run-shard, because run-shard has no way to open a connection per operation.
 *
 * Each part alternates its variants round by round at one round trip, so the machine's noise falls on all alike; the
 * ratios are medians of the rounds' ratios. The round trip the proxy really gives is measured and reported beside the
 * one asked for (timers and a shared machine add to it).
 */
import { realpath } from 'node:fs/promises';
import pg from 'pg';
import { applicationNameFor } from '../contract/application-name.js';
import { poolSizeFor, type PoolSize } from '../contract/pool-sizing.js';
import { migrate } from '../job-runner/db/migrations.js';
import { findCorpus, shardFiles, writeBatch, type FileResult } from '../job-runner/db/store.js';
import { RunnerPool, type ValidationMode } from '../job-runner/pool/pool.js';
import { DEFAULT_READER_LIMITS } from '../job-runner/analysis/smf-reader.js';
import { BatchWriter } from '../job-runner/runner/batch-writer.js';
import { RUN_SHARD_DEFAULTS } from '../job-runner/runner/defaults.js';
import { ParsePool } from '../job-runner/runner/parse-pool.js';
import { FILES_QUEUED_PER_WORKER, toRecord, type ShardSummary } from '../job-runner/runner/run-shard.js';
import { scanCorpus } from '../job-runner/runner/scan.js';
import { analysedResults, benchStart, benchValidation } from './pool.js';
import { startTcpProxyProcess } from './support/tcp-proxy.js';
import { median } from './support/stats.js';
import { runShardProcess } from './runner.js';

export interface PoolLatencyOptions {
  databaseUrl: string;
  /** A corpus on disk (generated songs) for the shard runs, and its paths. */
  root: string;
  files: number;
  /** Round trips to add, in ms. Default 0.5, 2, 10. */
  roundTripsMs?: number[];
  /** Parse workers of the shard runs (run-shard's --cpu-millis = 1000 × this). Default 2. */
  workers?: number;
  /** Rounds of warm vs cold at each round trip. Default 9. */
  startRounds?: number;
  /** Rounds of the shard runs and of the claim at each round trip. Default 3. */
  rounds?: number;
  step?: (line: string) => void;
}

export interface ConnectionsVariant {
  /** run-shard's pool flags, and the pool's max they give. */
  flags: string[];
  poolMax: number;
  filesPerSecond: number;
  /** Of the median run: checkout pings and pings skipped by the bypass window, over the batches written. */
  pings: number;
  bypassed: number;
  acquires: number;
}

export type ClaimSide = 'perOperation' | 'warmPingEvery' | 'shipped';

export interface LatencyPoint {
  roundTripMs: number;
  /** Median ms of an empty query through the proxy, and straight to the server. */
  measuredRoundTripMs: number;
  directRoundTripMs: number;
  /** Whether the proxy's process got its raised CPU priority (bench/support/tcp-proxy.ts). */
  proxyPriorityRaised: boolean;
  start: Awaited<ReturnType<typeof benchStart>>;
  warmFirstBatchOverCold: number;
  validation: Awaited<ReturnType<typeof benchValidation>>;
  /** ms a ping on every checkout adds to a batch, and the same for the bypass window (against no validation). */
  pingEveryMsPerBatch: number;
  bypassMsPerBatch: number;
  connections: Record<'perWorker' | 'double' | 'half' | 'one', ConnectionsVariant>;
  /**
   * Files per second with two connections per worker, half as many and one, over one per worker: below 1, slower.
   */
  doubleOverPerWorker: number;
  halfOverPerWorker: number;
  oneOverPerWorker: number;
  claim: Record<ClaimSide, { filesPerSecond: number; connectionsOpened: number }>;
  /** The shipped pool's files per second over a new connection per operation's, and the seed's design's. */
  shippedOverPerOperation: number;
  warmPingEveryOverPerOperation: number;
}

export interface PoolLatencyResult {
  workers: number;
  files: number;
  points: LatencyPoint[];
}

/**
 * The knobs of (o) from the environment: BENCH_LATENCIES (round trips in ms, default "0.5,2,10"),
 * BENCH_LATENCY_WORKERS (default 2), BENCH_LATENCY_ROUNDS (default 3), and BENCH_FILES, the corpus (default 1500).
 */
export function poolLatencyOptionsFromEnv(
  env: NodeJS.ProcessEnv = process.env,
): Required<Pick<PoolLatencyOptions, 'roundTripsMs' | 'workers' | 'rounds' | 'files'>> {
  const roundTripsMs = (env.BENCH_LATENCIES ?? '0.5,2,10').split(',').map((v) => Number(v.trim()));
  if (roundTripsMs.some((v) => !(v > 0)))
    throw new RangeError(
      `BENCH_LATENCIES must be round trips in ms above 0, comma-separated, got ${env.BENCH_LATENCIES}`,
    );
  const whole = (name: string, fallback: number) => {
    const v = Number(env[name] ?? fallback);
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be a whole number ≥ 1, got ${env[name]}`);
    return v;
  };
  return {
    roundTripsMs,
    workers: whole('BENCH_LATENCY_WORKERS', 2),
    rounds: whole('BENCH_LATENCY_ROUNDS', 3),
    files: whole('BENCH_FILES', 1500),
  };
}

export async function benchPoolLatency(options: PoolLatencyOptions): Promise<PoolLatencyResult> {
  const o = {
    roundTripsMs: options.roundTripsMs ?? [0.5, 2, 10],
    workers: options.workers ?? 2,
    startRounds: options.startRounds ?? 9,
    rounds: options.rounds ?? 3,
    step: options.step ?? (() => {}),
  };
  const target = new URL(options.databaseUrl);
  const admin = new pg.Client({
    connectionString: options.databaseUrl,
    application_name: applicationNameFor({ role: 'bench' }),
  });
  await admin.connect();
  const prefix = `bench-latency-${process.pid}-${Date.now()}`;
  const batchFiles = RUN_SHARD_DEFAULTS.batchFiles;
  const results = analysedResults(20 * batchFiles);
  const points: LatencyPoint[] = [];
  try {
    await migrate(admin);
    for (const roundTripMs of o.roundTripsMs) {
      const proxy = await startTcpProxyProcess(
        { host: target.hostname, port: Number(target.port) },
        { oneWayDelayMs: roundTripMs / 2 },
      );
      const url = new URL(options.databaseUrl);
      url.port = String(proxy.port);
      const at = `${prefix}-${roundTripMs}`;
      try {
        const [measured, direct] = [await emptyQueryMs(url.toString()), await emptyQueryMs(options.databaseUrl)];
        o.step(`${roundTripMs} ms: measured round trip ${measured.toFixed(2)} ms (direct ${direct.toFixed(2)} ms)`);
        // About ten seconds of writes per variant whatever the round trip.
        const writesPerVariant = Math.max(40, Math.min(300, Math.round(300 / roundTripMs)));
        const settings = {
          startRounds: o.startRounds,
          writers: 4,
          startBatchFiles: batchFiles,
          smallBatchFiles: batchFiles,
          writesPerVariant,
          bypassWindowMs: 1000,
        };
        const start = await benchStart(url.toString(), admin, at, results, settings);
        o.step(`${roundTripMs} ms: warm ${start.warmFirstBatchMedianMs} ms, cold ${start.coldFirstBatchMedianMs} ms`);
        const validation = await benchValidation(url.toString(), admin, at, results, settings);
        const perBatch = (m: ValidationMode) =>
          (validation.checkoutMs[m] - validation.checkoutMs.never) / validation.writesPerVariant;
        o.step(
          `${roundTripMs} ms: validation per batch ${perBatch('always').toFixed(2)} vs ${perBatch('bypass-window').toFixed(2)} ms`,
        );
        const connections = await benchConnections(url.toString(), admin, at, options, o);
        const claim = await benchClaim(url.toString(), admin, at, options, o);
        points.push({
          roundTripMs,
          measuredRoundTripMs: round2(measured),
          directRoundTripMs: round2(direct),
          proxyPriorityRaised: proxy.priorityRaised,
          start,
          warmFirstBatchOverCold: start.warmFirstBatchMedianMs / start.coldFirstBatchMedianMs,
          validation,
          pingEveryMsPerBatch: round2(perBatch('always')),
          bypassMsPerBatch: round2(perBatch('bypass-window')),
          ...connections,
          ...claim,
        });
      } finally {
        await proxy.stop();
      }
    }
  } finally {
    await admin.query('DELETE FROM midi.corpora WHERE key LIKE $1', [`${prefix}%`]).catch(() => {});
    await admin.end();
  }
  return { workers: o.workers, files: options.files, points };
}

/** Median ms of an empty query on one connection: the round trip a checkout ping costs. */
async function emptyQueryMs(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url, application_name: applicationNameFor({ role: 'bench' }) });
  await client.connect();
  try {
    const times: number[] = [];
    for (let i = 0; i < 41; i++) {
      const started = performance.now();
      await client.query(';');
      times.push(performance.now() - started);
    }
    return median(times);
  } finally {
    await client.end();
  }
}

type Settings = { workers: number; rounds: number; step: (line: string) => void };

/** Real run-shard processes, one per variant per round, each over a corpus of its own scanned beforehand. */
async function benchConnections(
  url: string,
  admin: pg.Client,
  prefix: string,
  corpus: PoolLatencyOptions,
  o: Settings,
): Promise<Pick<LatencyPoint, 'connections' | 'doubleOverPerWorker' | 'halfOverPerWorker' | 'oneOverPerWorker'>> {
  const cpuMillis = o.workers * 1000;
  const variants = {
    perWorker: [] as string[],
    // Not a candidate default for free: each pod would claim twice the budget. Measured to see what it leaves behind.
    double: ['--connections-per-worker', '2'],
    half: ['--connections-per-worker', '0.5'],
    one: ['--connections-per-worker', String(1 / o.workers), '--extra-connections', '0'],
  };
  const names = Object.keys(variants) as (keyof typeof variants)[];
  const runs = Object.fromEntries(names.map((n) => [n, [] as ShardSummary[]])) as Record<
    keyof typeof variants,
    ShardSummary[]
  >;
  for (let round = 0; round < o.rounds; round++) {
    for (const name of rotate(names, round)) {
      const key = `${prefix}-shard-${name}-${round}`;
      await scanCorpus(admin, { corpus: key, root: corpus.root, shards: { shards: 1 } });
      const summary = await runShardProcess(url, key, corpus.root, { cpuMillis, flags: variants[name] });
      if (summary.recorded.ok + summary.recorded.failed !== corpus.files)
        throw new Error(`run-shard recorded ${JSON.stringify(summary.recorded)} of ${corpus.files}`);
      runs[name].push(summary);
    }
  }
  const fps = (s: ShardSummary) => corpus.files / s.durationSeconds;
  const variant = (name: keyof typeof variants): ConnectionsVariant => {
    const m = medianBy(runs[name], fps);
    return {
      flags: variants[name],
      poolMax: m.pool.max,
      filesPerSecond: round2(fps(m)),
      pings: m.pool.pings,
      bypassed: m.pool.bypassed,
      acquires: m.pool.acquires,
    };
  };
  const connections = {
    perWorker: variant('perWorker'),
    double: variant('double'),
    half: variant('half'),
    one: variant('one'),
  };
  const ratio = (name: keyof typeof variants) => median(runs[name].map((s, i) => fps(s) / fps(runs.perWorker[i]!)));
  o.step(
    `connections: ${names.map((n) => `${connections[n].poolMax} → ${connections[n].filesPerSecond.toFixed(0)} files/s`).join(', ')}`,
  );
  return {
    connections,
    doubleOverPerWorker: ratio('double'),
    halfOverPerWorker: ratio('half'),
    oneOverPerWorker: ratio('one'),
  };
}

/** How the claim's pipeline gets its connections. */
interface Connections {
  /** Before the first file: the warm pool connects here. */
  open(): Promise<void>;
  use<T>(fn: (client: pg.ClientBase) => Promise<T>): Promise<T>;
  close(): Promise<void>;
  opened(): number;
}

/** The seed's baseline: every operation connects, runs, and disconnects. */
function perOperation(url: string, applicationName: string): Connections {
  let opened = 0;
  return {
    open: () => Promise.resolve(),
    async use(fn) {
      const client = new pg.Client({ connectionString: url, application_name: applicationName });
      opened++;
      await client.connect();
      try {
        return await fn(client);
      } finally {
        await client.end();
      }
    },
    close: () => Promise.resolve(),
    opened: () => opened,
  };
}

function pooled(url: string, applicationName: string, size: PoolSize, validation: ValidationMode): Connections {
  const pool = new RunnerPool({ connectionString: url, size, applicationName, validation, statsIntervalMs: 0 });
  return {
    open: () => pool.open(),
    use: (fn) => pool.use(fn),
    close: () => pool.close(),
    opened: () => pool.stats().opened,
  };
}

async function benchClaim(
  url: string,
  admin: pg.Client,
  prefix: string,
  corpus: PoolLatencyOptions,
  o: Settings,
): Promise<Pick<LatencyPoint, 'claim' | 'shippedOverPerOperation' | 'warmPingEveryOverPerOperation'>> {
  const size = poolSizeFor(o.workers * 1000);
  const sides: ClaimSide[] = ['perOperation', 'warmPingEvery', 'shipped'];
  const runs = { perOperation: [], warmPingEvery: [], shipped: [] } as Record<
    ClaimSide,
    { fps: number; opened: number }[]
  >;
  const root = await realpath(corpus.root, { encoding: 'buffer' });
  for (let round = 0; round < o.rounds; round++) {
    for (const side of rotate(sides, round)) {
      const key = `${prefix}-claim-${side}-${round}`;
      await scanCorpus(admin, { corpus: key, root: corpus.root, shards: { shards: 1 } });
      const applicationName = applicationNameFor({ role: 'bench', corpus: key });
      const connections =
        side === 'perOperation'
          ? perOperation(url, applicationName)
          : pooled(url, applicationName, size, side === 'shipped' ? 'bypass-window' : 'always');
      const seconds = await ingestShard(connections, key, root, size);
      runs[side].push({ fps: corpus.files / seconds, opened: connections.opened() });
    }
  }
  const claim = Object.fromEntries(
    sides.map((s) => {
      const m = medianBy(runs[s], (r) => r.fps);
      return [s, { filesPerSecond: round2(m.fps), connectionsOpened: m.opened }];
    }),
  ) as LatencyPoint['claim'];
  const over = (s: ClaimSide) => median(runs[s].map((r, i) => r.fps / runs.perOperation[i]!.fps));
  o.step(`claim: ${sides.map((s) => `${s} ${claim[s].filesPerSecond.toFixed(0)} files/s`).join(', ')}`);
  return { claim, shippedOverPerOperation: over('shipped'), warmPingEveryOverPerOperation: over('warmPingEvery') };
}

/**
 * run-shard's pipeline (job-runner/runner/run-shard.ts) over `connections`: parse workers started first, then the
 * pool opened, migration checked, the shard listed, its files parsed FILES_QUEUED_PER_WORKER per worker ahead and
 * written in batches of the default size, as many at once as the pool's max. Seconds from start to the last commit.
 */
async function ingestShard(connections: Connections, key: string, root: Buffer, size: PoolSize): Promise<number> {
  const started = performance.now();
  const parse = new ParsePool({ workers: size.workers, fileTimeoutMs: RUN_SHARD_DEFAULTS.fileTimeoutMs });
  try {
    await connections.open();
    await connections.use((c) => migrate(c));
    const corpusId = await connections.use((c) => findCorpus(c, key));
    if (corpusId === null) throw new Error(`corpus ${key} was not scanned`);
    const files = await connections.use((c) => shardFiles(c, corpusId, 0));
    const writer = new BatchWriter<FileResult>({
      maxFiles: RUN_SHARD_DEFAULTS.batchFiles,
      maxDelayMs: RUN_SHARD_DEFAULTS.batchDelayMs,
      maxInFlight: size.max,
      write: (batch) => connections.use((c) => writeBatch(c, corpusId, batch)).then(() => {}),
    });
    const inFlight = new Set<Promise<void>>();
    for (const file of files) {
      await writer.waitForRoom();
      while (inFlight.size >= size.workers * FILES_QUEUED_PER_WORKER) await Promise.race(inFlight);
      const job = parse
        .parse({
          path: Buffer.concat([root, Buffer.from('/'), file.path]),
          root,
          knownSha256: null,
          maxFileBytes: RUN_SHARD_DEFAULTS.maxFileBytes,
          maxEvents: DEFAULT_READER_LIMITS.maxEvents,
          splitOutputDir: null,
        })
        .then((parsed) => {
          const record = parsed && toRecord(file, 0, parsed);
          if (record) writer.add(record);
        })
        .finally(() => inFlight.delete(job));
      inFlight.add(job);
    }
    await Promise.all(inFlight);
    await writer.drain();
    return (performance.now() - started) / 1000;
  } finally {
    await parse.close();
    await connections.close();
  }
}

/** `xs` rotated by `round`: each variant takes each place in the order in turn. */
function rotate<T>(xs: readonly T[], round: number): T[] {
  return xs.map((_, i) => xs[(i + round) % xs.length]!);
}

function medianBy<T>(xs: readonly T[], by: (x: T) => number): T {
  const s = [...xs].sort((a, b) => by(a) - by(b));
  return s[Math.floor((s.length - 1) / 2)]!;
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

/** The ratios of (o) per round trip, for the top of bench/results/latest.json. */
export function poolLatencyRatios(r: PoolLatencyResult): Record<string, Record<string, number>> {
  return Object.fromEntries(
    r.points.map((p) => [
      `${p.roundTripMs}ms`,
      {
        measuredRoundTripMs: p.measuredRoundTripMs,
        warmFirstBatchOverCold: round2(p.warmFirstBatchOverCold),
        validationPingEveryMsPerBatch: p.pingEveryMsPerBatch,
        validationBypassMsPerBatch: p.bypassMsPerBatch,
        validationOverheadPingEvery: round4(p.validation.overhead.always),
        validationOverheadBypass: round4(p.validation.overhead['bypass-window']),
        doubleConnectionsOverPerWorker: round2(p.doubleOverPerWorker),
        halfConnectionsOverPerWorker: round2(p.halfOverPerWorker),
        oneConnectionOverPerWorker: round2(p.oneOverPerWorker),
        shippedPoolOverConnectionPerOperation: round2(p.shippedOverPerOperation),
        seedPoolOverConnectionPerOperation: round2(p.warmPingEveryOverPerOperation),
      },
    ]),
  );
}

/** (o)'s lines of the bench table: four per round trip. */
export function poolLatencyRows(r: PoolLatencyResult): [string, string, string, string][] {
  const x = (v: number) => `${v.toFixed(2)}x`;
  const pct = (v: number) => `${(v * 100).toFixed(1)} %`;
  return r.points.flatMap((p): [string, string, string, string][] => {
    const at = `${p.roundTripMs} ms RTT (${p.measuredRoundTripMs.toFixed(2)} measured)`;
    const c = p.connections;
    return [
      [
        `(o) ${at}: warm first batch over cold`,
        p.warmFirstBatchOverCold.toFixed(2),
        `${p.start.warmFirstBatchMedianMs.toFixed(1)} vs ${p.start.coldFirstBatchMedianMs.toFixed(1)} ms (median of ${p.start.rounds})`,
        '',
      ],
      [
        `(o) ${at}: validation per ${p.validation.batchFiles}-file batch`,
        `${p.bypassMsPerBatch.toFixed(2)} ms`,
        `bypass window ${pct(p.validation.overhead['bypass-window'])}; ping every checkout ${p.pingEveryMsPerBatch.toFixed(2)} ms, ${pct(p.validation.overhead.always)}`,
        '',
      ],
      [
        `(o) ${at}: run-shard, half / one connection over one per worker`,
        `${x(p.halfOverPerWorker)} / ${x(p.oneOverPerWorker)}`,
        `pool max ${c.perWorker.poolMax}: ${c.perWorker.filesPerSecond.toFixed(0)}, ${c.half.poolMax}: ${c.half.filesPerSecond.toFixed(0)}, ${c.one.poolMax}: ${c.one.filesPerSecond.toFixed(0)} files/s (${r.workers} workers); two per worker (${c.double.poolMax}) ${x(p.doubleOverPerWorker)}`,
        '',
      ],
      [
        `(o) ${at}: shipped pool over a connection per operation`,
        x(p.shippedOverPerOperation),
        `${p.claim.shipped.filesPerSecond.toFixed(0)} vs ${p.claim.perOperation.filesPerSecond.toFixed(0)} files/s; seed's design (ping every checkout) ${x(p.warmPingEveryOverPerOperation)}`,
        'seed: 1.10-1.15x',
      ],
    ];
  });
}

function round4(x: number): number {
  return Math.round(x * 10000) / 10000;
}
