/**
 * `npm run bench`: every benchmark side by side in one run, on one generated corpus and one embedded Postgres.
 * Prints a table and saves bench/results/latest.json (ratios at the top level, raw figures beside them).
 *
 *   (a) analysis vs `new Midi(bytes)`, per core                        bench/analysis.ts   target ≥ 10x
 *   (b) end-to-end runner vs analysis alone, same workers             bench/runner.ts     target ≥ 0.8
 *   (c) warm vs cold pool: start to first committed batch             bench/pool.ts
 *   (d) validation overhead: bypass window vs ping on every checkout  bench/pool.ts       target ≤ 2 %
 *   (e) runner vs naive (a connection per file, an INSERT per row)    bench/runner.ts     target ≥ 10x
 *   (f) export: live heap of a 100x larger corpus over a small one's   bench/export.ts     about 1 when it streams
 *   (g) start-up of every command that needs no cluster / node -e 0    bench/startup.ts    target ≤ 4
 *   (h) a shard's fixed cost (run-shard, one file) / node -e 0          bench/startup.ts    target ≤ 3
 *   (i) local vs a Python ingester (mido + psycopg2), real-world-like  bench/local-vs-python.ts  target ≥ 20x
 *   (j) local's shard count: 1, 2, 4, 8 shards on the same corpus      bench/local-vs-python.ts
 *   (k) analysis MB/s per core over a native parser's (portSMF, C++)    bench/native.ts     the gap to native speed
 *   (l) scan vs find | psql \copy + unique index, same empty files      bench/scan.ts       target ≤ 2x
 *   (m) server CPU per file: the runner's batches over one COPY         bench/write-path.ts target ≤ 1.5
 *   (n) (b) with Postgres pinned to one core, the runner to the other   bench/pinned.ts     target ≥ 0.8
 *   (o) the pool under 0.5/2/10 ms round trips (delaying TCP proxy)   bench/pool-latency.ts  defaults chosen from it
 *   (p) a plan for 3M files; with BENCH_CLUSTER=1, the operator on two   bench/cluster.ts    plan < 1 s, peak ≤ budget
 *       real nodes vs local, its connection peak, the controller's memory
 *
 * Sizes can be changed through the environment: BENCH_FILES (corpus size, default 1500), BENCH_WORKERS (parse
 * workers for (b) and (e), default 1), BENCH_ROUNDS (default 5), and the evenly spread subsets that the slow sides
 * run over: BENCH_ANALYSIS_FILES for (a) (default 150: one pass of `new Midi(bytes)` over them takes seconds) and
 * BENCH_NAIVE_FILES for (e) (default 150); BENCH_EXPORT_ROWS, the large corpus of (f) (default 200 000);
 * BENCH_STARTUP_ROUNDS for (g) and (h) (default 7); BENCH_REAL_WORLD_FILES, the real-world-like corpus of (i) and (j)
 * (default 2000); BENCH_SWEEP_ROUNDS, rounds of (j) (default 3);
 * BENCH_SCAN_FILES, the corpus of (l) (default 100 000), BENCH_SCAN_LARGE, a second, larger one to show the scan's
 * memory is flat (default 0, none: 1 000 000 files take about eight minutes on the 2-core development machine, made,
 * found, copied and scanned twice), BENCH_SCAN_ROUNDS (default 1); BENCH_CLUSTER=1 and the BENCH_CLUSTER_* sizes of
 * bench/cluster.ts (clusterOptionsFromEnv) for (p)'s cluster part.
 * (o): BENCH_LATENCIES (round trips in ms, default 0.5,2,10), BENCH_LATENCY_WORKERS (default 2), BENCH_LATENCY_ROUNDS
 * (default 3); alone: `node dist/bench/pool-latency-alone.js`.
 * (m): BENCH_WRITE_ROUNDS, rounds of (m) over the real-world-like corpus (default 5). (n) runs over the corpus of
 * (b), BENCH_ROUNDS rounds. `node dist/bench/write-path-main.js [m] [n]` runs (m) and (n) alone.
 */
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEmbeddedPostgres } from '../job-runner/db/embedded.js';
import { analyzeMidi } from '../job-runner/analysis/analyze.js';
import { generateCorpus } from '../job-runner/synth/corpus.js';
import { benchAnalysis } from './analysis.js';
import { benchExport } from './export.js';
import { benchNative } from './native.js';
import { benchPool } from './pool.js';
import { benchPoolLatency, poolLatencyOptionsFromEnv, poolLatencyRatios, poolLatencyRows } from './pool-latency.js';
import { benchRunner } from './runner.js';
import { benchLocalVsPython, fastestShards } from './local-vs-python.js';
import { benchShardStart, benchStartup } from './startup.js';
import { benchScan, totalCpu, type ScanRun, type ScanSize } from './scan.js';
import { benchCluster, benchPlan3M, clusterOptionsFromEnv, clusterRows } from './cluster.js';
import { benchWritePath } from './write-path.js';
import { benchPinned } from './pinned.js';

const RESULTS = fileURLToPath(new URL('../../bench/results/latest.json', import.meta.url));

function envNumber(name: string, fallback: number): number {
  const v = process.env[name];
  return v === undefined ? fallback : Number(v);
}

function step(label: string): () => void {
  const started = Date.now();
  process.stderr.write(`bench: ${label}...\n`);
  return () => process.stderr.write(`bench: ${label} done in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
}

async function main(): Promise<void> {
  const files = envNumber('BENCH_FILES', 1500);
  const workers = envNumber('BENCH_WORKERS', 1);
  const naiveFiles = envNumber('BENCH_NAIVE_FILES', 150);
  const analysisFiles = envNumber('BENCH_ANALYSIS_FILES', 150);
  const rounds = envNumber('BENCH_ROUNDS', 5);
  const started = Date.now();
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'mco-bench-'));
  // As root, the embedded server runs as user postgres, which must be able to enter the temporary directory.
  await chmod(tmp, 0o711);
  const root = path.join(tmp, 'corpus');
  let done = step(`generating ${files} files`);
  const corpus = generateCorpus({ files, seed: 42 });
  for (const f of corpus) {
    await mkdir(path.dirname(path.join(root, f.path)), { recursive: true });
    await writeFile(path.join(root, f.path), f.bytes);
  }
  const paths = corpus.map((f) => f.path);
  const bytes = corpus.reduce((n, f) => n + f.bytes.length, 0);
  done();
  const db = await startEmbeddedPostgres({ dataDir: path.join(tmp, 'pg') });
  try {
    const analysisCorpus = spread(corpus, analysisFiles);
    const analysisSet = analysisCorpus.map((f) => f.bytes);
    done = step(`(a) analysis vs @tonejs/midi over ${analysisSet.length} files`);
    const analysis = await benchAnalysis(analysisSet, { minSeconds: 3 });
    done();
    const naivePaths = spread(paths, naiveFiles);
    done = step(
      `(b, e) runner vs analysis alone and vs a naive ingester (${naivePaths.length} files), ${workers} worker(s), ${rounds} rounds`,
    );
    const runner = await benchRunner({ databaseUrl: db.url, root, paths, bytes, workers, rounds, naivePaths });
    done();
    done = step('(c, d) pool: warm vs cold, validation');
    const pool = await benchPool(db.url);
    done();
    const exportRows = envNumber('BENCH_EXPORT_ROWS', 200_000);
    done = step(`(f) export of ${exportRows} files vs ${exportRows / 100}, CSV and Parquet`);
    const exported = await benchExport(db.url, { largeRows: exportRows });
    done();
    const startupRounds = envNumber('BENCH_STARTUP_ROUNDS', 7);
    done = step(`(g) start-up of every command but controller vs node -e 0, ${startupRounds} rounds`);
    const startup = await benchStartup(startupRounds);
    done();
    done = step(`(h) a shard's fixed cost: run-shard on one file and on none, ${startupRounds} rounds`);
    const shardStart = await benchShardStart(db.url, startupRounds);
    done();
    const realWorldFiles = envNumber('BENCH_REAL_WORLD_FILES', 2000);
    done = step(
      `(i, j) local vs a Python ingester, and local's shard counts, on ${realWorldFiles} real-world-like files`,
    );
    const realWorld = generateCorpus({ files: realWorldFiles, seed: 43, profile: 'real-world' });
    const realWorldRoot = path.join(tmp, 'real-world');
    for (const f of realWorld) {
      await mkdir(path.dirname(path.join(realWorldRoot, f.path)), { recursive: true });
      await writeFile(path.join(realWorldRoot, f.path), f.bytes);
    }
    const vsPython = await benchLocalVsPython({
      databaseUrl: db.url,
      root: realWorldRoot,
      files: realWorld.map((f) => f.bytes),
      dataDir: path.join(tmp, 'local-data'),
      sweepRounds: envNumber('BENCH_SWEEP_ROUNDS', 3),
      step: (line) => process.stderr.write(`bench:   ${line}\n`),
    });
    done();
    // On the real-world-like files (several tracks, drums, tempo maps): the files a native parser's speed matters on.
    const nativeSet = spread(
      realWorld.filter((f) => analyzeMidi(f.bytes).ok),
      analysisFiles,
    );
    done = step(`(k) analysis vs a native parser (portSMF) over ${nativeSet.length} real-world-like files`);
    const native = await benchNative(
      nativeSet.map((f) => path.join(realWorldRoot, f.path)),
      nativeSet.map((f) => f.bytes),
      { minSeconds: 4, scratch: tmp },
    );
    done();
    const scanSizes = [envNumber('BENCH_SCAN_FILES', 100_000), envNumber('BENCH_SCAN_LARGE', 0)].filter((n) => n > 0);
    done = step(`(l) scan vs find + COPY + index over ${scanSizes.join(' and ')} files`);
    const scanned = await benchScan(db.url, {
      sizes: scanSizes,
      rounds: envNumber('BENCH_SCAN_ROUNDS', 1),
      dataDir: db.dataDir,
    });
    done();
    const clusterOptions = clusterOptionsFromEnv();
    done = step(
      `(p) a plan for 3M files${clusterOptions ? `; ${clusterOptions.files} files through the operator on real nodes vs local` : ''}`,
    );
    const plan3M = await benchPlan3M();
    const cluster = clusterOptions ? await benchCluster(clusterOptions) : undefined;
    done();
    const latencyOptions = poolLatencyOptionsFromEnv();
    done = step(`(o) pool under ${latencyOptions.roundTripsMs.join(', ')} ms round trips`);
    const poolLatency = await benchPoolLatency({
      ...latencyOptions,
      databaseUrl: db.url,
      root,
      files,
      step: (line) => process.stderr.write(`bench:   ${line}\n`),
    });
    done();
    done = step(`(m) server CPU per file: the runner's batches vs COPY, ${realWorld.length} real-world-like files`);
    const writePath = await benchWritePath(db.url, {
      dataDir: db.dataDir,
      files: realWorld,
      rounds: envNumber('BENCH_WRITE_ROUNDS', 5),
    });
    done();
    done = step(`(n) end to end over analysis alone, Postgres and the runner pinned to a core each, ${rounds} rounds`);
    const pinned = await benchPinned({ root, paths, bytes, rounds, scratch: tmp });
    done();

    const result = {
      analysisSpeedupVsTonejs: analysis.analysisSpeedupVsTonejs,
      endToEndOverAnalysis: runner.endToEndOverAnalysis,
      warmFirstBatchOverCold: pool.warmFirstBatchOverCold,
      validationOverheadBypass: pool.validationOverheadBypass,
      validationOverheadPingEvery: pool.validationOverheadPingEvery,
      speedupOverNaive: runner.speedupOverNaive,
      exportLiveHeapLargeOverSmall: exported.liveHeapLargeOverSmall,
      startupOverBareNode: startup.worstOverBareNode,
      shardFixedCostOverBareNode: shardStart.oneFileOverBareNode,
      localSpeedupOverPython: vsPython.localOverPython,
      localRerunSpeedupOverPython: vsPython.localOverPythonRerun,
      localFastestShards: fastestShards(vsPython.sweep),
      analysisOverNative: native.analysisOverNative,
      scanOverFindCopy: scanned.scanOverFindCopy,
      rescanOverFindCopy: scanned.rescanOverFindCopy,
      scanPeakRssLargeOverSmall: scanned.peakRssLargeOverSmall,
      scanCpuOverFindCopy: scanned.scanCpuOverFindCopy,
      rescanCpuOverFindCopy: scanned.rescanCpuOverFindCopy,
      plan3MSeconds: plan3M.controllerPlanSeconds + plan3M.shardAssignmentSeconds,
      ...(cluster && {
        clusterOverLocal: cluster.clusterOverLocal,
        clusterConnectionPeakOverBudget: cluster.clusterConnectionPeakOverBudget,
        controllerMemoryLargeOverSmall: cluster.controllerMemoryLargeOverSmall,
      }),
      poolUnderLatency: poolLatencyRatios(poolLatency),
      serverCpuPerFileOverCopy: writePath.serverCpuPerFileOverCopy,
      ...('skipped' in pinned ? {} : { endToEndOverAnalysisPinned: pinned.endToEndOverAnalysisPinned }),
      targets: {
        analysisSpeedupVsTonejs: '>= 10',
        endToEndOverAnalysis: '>= 0.8',
        validationOverheadBypass: '<= 0.02',
        speedupOverNaive: '>= 10',
        startupOverBareNode: '<= 4',
        shardFixedCostOverBareNode: '<= 3',
        localSpeedupOverPython: '>= 20 (aim 50)',
        scanOverFindCopy: '<= 2',
        rescanOverFindCopy: '<= 2',
        plan3MSeconds: '< 1',
        clusterConnectionPeakOverBudget: '<= 1',
        serverCpuPerFileOverCopy: '<= 1.5',
        endToEndOverAnalysisPinned: '>= 0.8',
      },
      raw: {
        machine: {
          cpus: os.availableParallelism(),
          cpuModel: os.cpus()[0]?.model ?? 'unknown',
          node: process.version,
          platform: `${os.platform()} ${os.release()}`,
        },
        corpus: { files, bytes, seed: 42, analysisFiles: analysisSet.length },
        analysis,
        runner,
        pool: pool.raw,
        export: exported,
        startup,
        shardStart,
        localVsPython: vsPython,
        native,
        scan: scanned,
        plan3M,
        cluster,
        poolLatency,
        writePath,
        pinned,
      },
      measuredAt: new Date().toISOString(),
      totalSeconds: (Date.now() - started) / 1000,
    };
    await mkdir(path.dirname(RESULTS), { recursive: true });
    await writeFile(RESULTS, `${JSON.stringify(result, null, 2)}\n`);
    process.stdout.write(table(result));
    process.stdout.write(`\nsaved ${path.relative(process.cwd(), RESULTS)}\n`);
  } finally {
    await db.stop().catch(() => {});
    await rm(tmp, { recursive: true, force: true });
  }
}

/** (l): each size's scan and rescan over find + COPY + index, then the memory of the largest over the smallest. */
function scanRows(s: Awaited<ReturnType<typeof benchScan>>): [string, string, string, string][] {
  const x = (v: number) => `${v.toFixed(2)}x`;
  // CPU seconds: the command's (scan, or find and psql) + the server backends'.
  const cpu = (r: ScanRun) => `${r.cpu.command.toFixed(1)} + ${r.cpu.server.toFixed(1)} s`;
  const baseline = (z: ScanSize): ScanRun => ({
    seconds: z.findCopyIndexSeconds,
    peakRssMb: 0,
    cpu: z.findCopyIndexCpu,
  });
  const rows = s.sizes.flatMap((z): [string, string, string, string][] => [
    [
      `(l) scan over find + COPY + index, ${z.files} files`,
      x(z.scanOverFindCopy),
      `${z.scan.seconds.toFixed(1)} s vs ${z.findCopyIndexSeconds.toFixed(1)} s; CPU ${cpu(z.scan)} vs ${totalCpu(baseline(z)).toFixed(1)} s (${x(z.scanCpuOverFindCopy)}); peak RSS ${z.scan.peakRssMb.toFixed(0)} MB`,
      `≤ 2x ${z.scanOverFindCopy <= 2 ? 'met' : 'SHORT'}`,
    ],
    [
      `(l) rescan (unchanged) over the same, ${z.files} files`,
      x(z.rescanOverFindCopy),
      `${z.rescan.seconds.toFixed(1)} s; CPU ${cpu(z.rescan)} (${x(z.rescanCpuOverFindCopy)}); peak RSS ${z.rescan.peakRssMb.toFixed(0)} MB`,
      `≤ 2x ${z.rescanOverFindCopy <= 2 ? 'met' : 'SHORT'}`,
    ],
  ]);
  const [small, large] = [s.sizes[0]!, s.sizes[s.sizes.length - 1]!];
  if (large !== small)
    rows.push([
      `(l) scan peak RSS, ${large.files} files over ${small.files}`,
      x(s.peakRssLargeOverSmall),
      `${large.scan.peakRssMb.toFixed(0)} MB vs ${small.scan.peakRssMb.toFixed(0)} MB${s.directory.tmpfs ? '' : ' (not on tmpfs)'}`,
      'about 1x',
    ]);
  return rows;
}

/** (m) and (n): what a file costs the server, and the runner with Postgres off its core. */
function writePathRows(
  w: Awaited<ReturnType<typeof benchWritePath>>,
  p: Awaited<ReturnType<typeof benchPinned>>,
): [string, string, string, string][] {
  const us = (v: number) => `${v.toFixed(0)} µs`;
  const fps = (v: number) => `${v.toFixed(0)} files/s`;
  return [
    [
      `(m) server CPU per file, the runner's batches over COPY, ${w.files} files`,
      `${w.serverCpuPerFileOverCopy.toFixed(2)}x`,
      `${us(w.runner.serverCpuUsPerFile)} vs ${us(w.copy.serverCpuUsPerFile)} (${w.rowsPerFile.toFixed(1)} rows per file); into an unscanned corpus ${us(w.runnerFresh.serverCpuUsPerFile)} (${w.serverCpuPerFileOverCopyFresh.toFixed(2)}x)`,
      `≤ 1.5x ${w.serverCpuPerFileOverCopy <= 1.5 ? 'met' : 'SHORT'}`,
    ],
    'skipped' in p
      ? ['(n) end to end over analysis alone, pinned', 'skipped', p.skipped, '≥ 0.8']
      : [
          `(n) end to end over analysis alone, Postgres on core ${p.cores.server}, runner on core ${p.cores.runner}`,
          p.endToEndOverAnalysisPinned.toFixed(2),
          `${fps(p.endToEnd.filesPerSecond)} vs ${fps(p.analysisAlone.filesPerSecond)} (medians)`,
          `≥ 0.8 ${p.endToEndOverAnalysisPinned >= 0.8 ? 'met' : 'SHORT'}`,
        ],
  ];
}

/** `n` items evenly spread over `xs`: the same mix of small and large songs as the whole corpus. */
function spread<T>(xs: T[], n: number): T[] {
  const every = Math.max(1, Math.floor(xs.length / n));
  return xs.filter((_, i) => i % every === 0).slice(0, n);
}

interface Printable {
  analysisSpeedupVsTonejs: number;
  endToEndOverAnalysis: number;
  warmFirstBatchOverCold: number;
  validationOverheadBypass: number;
  validationOverheadPingEvery: number;
  speedupOverNaive: number;
  startupOverBareNode: number;
  shardFixedCostOverBareNode: number;
  localSpeedupOverPython: number;
  localRerunSpeedupOverPython: number;
  raw: {
    analysis: Awaited<ReturnType<typeof benchAnalysis>>;
    runner: Awaited<ReturnType<typeof benchRunner>>;
    pool: Awaited<ReturnType<typeof benchPool>>['raw'];
    export: Awaited<ReturnType<typeof benchExport>>;
    startup: Awaited<ReturnType<typeof benchStartup>>;
    shardStart: Awaited<ReturnType<typeof benchShardStart>>;
    localVsPython: Awaited<ReturnType<typeof benchLocalVsPython>>;
    native: Awaited<ReturnType<typeof benchNative>>;
    scan: Awaited<ReturnType<typeof benchScan>>;
    plan3M: Awaited<ReturnType<typeof benchPlan3M>>;
    cluster: Awaited<ReturnType<typeof benchCluster>> | undefined;
    poolLatency: Awaited<ReturnType<typeof benchPoolLatency>>;
    writePath: Awaited<ReturnType<typeof benchWritePath>>;
    pinned: Awaited<ReturnType<typeof benchPinned>>;
  };
}

function table(r: Printable): string {
  const x = (v: number) => `${v.toFixed(2)}x`;
  const pct = (v: number) => `${(v * 100).toFixed(2)} %`;
  const fps = (v: number) => `${v.toFixed(0)} files/s`;
  const verdict = (ok: boolean) => (ok ? 'met' : 'SHORT');
  const a = r.raw.analysis;
  const e = r.raw.runner;
  const s = r.raw.pool.start;
  const n = r.raw.native;
  const rows: [string, string, string, string][] = [
    [
      '(a) analysis vs new Midi(bytes), 1 core',
      x(r.analysisSpeedupVsTonejs),
      `${fps(a.analysis.filesPerSecond)}, ${a.analysis.mbPerSecond.toFixed(1)} MB/s vs ${fps(a.tonejs.filesPerSecond)}, ${a.tonejs.mbPerSecond.toFixed(1)} MB/s`,
      `≥ 10x ${verdict(r.analysisSpeedupVsTonejs >= 10)}`,
    ],
    [
      `(b) end to end over analysis alone, ${e.workers} worker(s), unpinned (Postgres shares the cores)`,
      r.endToEndOverAnalysis.toFixed(2),
      `${fps(e.endToEnd.filesPerSecond)} vs ${fps(e.analysisAlone.filesPerSecond)} (medians)`,
      `≥ 0.8 ${verdict(r.endToEndOverAnalysis >= 0.8)}`,
    ],
    [
      '(c) warm first batch over cold',
      r.warmFirstBatchOverCold.toFixed(2),
      `${s.warmFirstBatchMedianMs.toFixed(1)} ms vs ${s.coldFirstBatchMedianMs.toFixed(1)} ms (median of ${s.rounds})`,
      '',
    ],
    [
      '(d) validation overhead, bypass window',
      pct(r.validationOverheadBypass),
      `ping every checkout: ${pct(r.validationOverheadPingEvery)}`,
      `≤ 2 % ${verdict(r.validationOverheadBypass <= 0.02)}`,
    ],
    [
      '(e) runner over naive ingester',
      x(r.speedupOverNaive),
      `${fps(e.endToEnd.filesPerSecond)} vs ${fps(e.naive.filesPerSecond)}`,
      `≥ 10x ${verdict(r.speedupOverNaive >= 10)}`,
    ],
    [
      '(k) analysis over a native parser (portSMF), 1 core',
      x(n.analysisOverNative),
      `${n.analysis.mbPerSecond.toFixed(1)} MB/s vs ${n.native.mbPerSecond.toFixed(1)} MB/s over ${n.files} files`,
      '',
    ],
    ...r.raw.export.liveHeapMb
      .filter((h) => h.corpus.endsWith('large'))
      .map((h): [string, string, string, string] => {
        const small = r.raw.export.liveHeapMb.find((s) => s.format === h.format && s !== h)!;
        const run = r.raw.export.runs.find((x) => x.format === h.format && x.corpus === h.corpus)!;
        return [
          `(f) export ${h.format}: live heap, ${h.rows} files over ${small.rows}`,
          x(h.maxMb / small.maxMb),
          `${h.maxMb.toFixed(1)} MB vs ${small.maxMb.toFixed(1)} MB; command: ${fps(run.rowsPerSecond)}, peak RSS ${run.peakRssMb.toFixed(0)} MB`,
          '',
        ];
      }),
    ...startupRows(r),
    ...scanRows(r.raw.scan),
    ...clusterRows(r.raw.plan3M, r.raw.cluster),
    ...poolLatencyRows(r.raw.poolLatency),
    ...writePathRows(r.raw.writePath, r.raw.pinned),
  ];
  const widths = [0, 1, 2, 3].map((i) =>
    Math.max(...rows.map((row) => row[i]!.length), ['benchmark', 'ratio', 'figures', 'target'][i]!.length),
  );
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return `\n${[line(['benchmark', 'ratio', 'figures', 'target']), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n')}\n`;
}

/** (g) to (j): fixed costs, and local against the Python ingester. */
function startupRows(r: Printable): [string, string, string, string][] {
  const x = (v: number) => `${v.toFixed(2)}x`;
  const verdict = (ok: boolean) => (ok ? 'met' : 'SHORT');
  const st = r.raw.startup;
  const worst = st.commands.reduce((a, c) => (c.overBareNode > a.overBareNode ? c : a));
  const sh = r.raw.shardStart;
  const lp = r.raw.localVsPython;
  const fps = (v: number) => `${v.toFixed(0)} files/s`;
  return [
    [
      '(g) start-up, slowest command over node -e 0',
      x(r.startupOverBareNode),
      `${worst.args.join(' ')}: ${worst.medianMs.toFixed(0)} ms vs ${st.bareNodeMedianMs.toFixed(0)} ms (medians of ${st.rounds})`,
      `≤ 4x ${verdict(r.startupOverBareNode <= 4)}`,
    ],
    [
      "(h) a shard's fixed cost (one file) over node -e 0",
      x(r.shardFixedCostOverBareNode),
      `${sh.oneFile.exitMs.toFixed(0)} ms (admitted at ${sh.oneFile.admittedMs.toFixed(0)} ms); empty shard ${sh.emptyShard.exitMs.toFixed(0)} ms; node -e 0 ${sh.bareNodeMedianMs.toFixed(0)} ms`,
      `≤ 3x ${verdict(r.shardFixedCostOverBareNode <= 3)}`,
    ],
    [
      `(i) local over a Python ingester, ${lp.files} real-world-like files`,
      x(r.localSpeedupOverPython),
      `${fps(lp.local.filesPerSecond)} (${lp.local.shards} shards) vs ${fps(lp.python.filesPerSecond)}`,
      `≥ 20x ${verdict(r.localSpeedupOverPython >= 20)}, aim 50x: ${(r.localSpeedupOverPython / 50).toFixed(2)} of it`,
    ],
    [
      '(i) the same, again with nothing to write',
      x(r.localRerunSpeedupOverPython),
      `${lp.localRerun.seconds.toFixed(2)} s vs ${lp.pythonRerun.seconds.toFixed(2)} s`,
      '',
    ],
    [
      "(j) local's shard count: seconds for 1, 2, 4, 8",
      `${fastestShards(lp.sweep)} fastest`,
      lp.sweep.map((s) => `${s.shards}: ${s.seconds.toFixed(2)} s`).join(', '),
      '',
    ],
  ];
}

await main();
