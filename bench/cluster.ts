/**
 * Benchmark (p): the operator on real nodes against `local`, a plan for three million files, and the controller's
 * memory against corpus size.
 *
 * plan:    what the controller plans from is the scan's answer (a handful of counts in its termination message,
 *          controller/plan/scan-result.ts), never the file list. Timed here for a corpus of 3 000 000 files: that
 *          answer parsed and checked, then shards, per-pod pool, budget and parallelism (controller/plan/dry-run.ts,
 *          the controller's own functions); beside it the one part that is per file, every file's shard in path order
 *          (contract/shards.ts planShards' shardOf over all 3M, the thresholds the scan's SQL follows), which the scan
 *          pod computes. Key plan3MSeconds: both together, per plan (target < 1). Also `midi-corpus plan --files
 *          3000000` as a whole command, spawn to exit (Node's own start-up included).
 * cluster: (only with BENCH_CLUSTER=1) test/bench/cluster.run.ts, run through vitest because the real-node harness is
 *          test code: ~20 000 real-world-like files through a MidiCorpus on two real nodes (controller, scan Job,
 *          Indexed run Job, a real Postgres outside the cluster) and through `local` on the same machine and files,
 *          in alternating rounds. Keys: clusterOverLocal (files/s, medians), clusterConnectionPeakOverBudget (the
 *          server's own count of client connections, sampled every 100 ms, over the budget the controller planned
 *          with, worst run; must be ≤ 1), controllerMemoryLargeOverSmall (the controller's peak RSS reconciling the
 *          whole corpus over a tenth of it, same shard count; about 1 when it never lists files).
 *
 * Both sides of the cluster's ratios share two cores here: the nodes, Postgres and local's runners all run on the
 * same machine, so the cluster cannot be faster than local; the ratio is what the operator's pods, scheduling and
 * scan cost on top of the same work.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { planShards } from '../contract/shards.js';
import { dryRun } from '../controller/plan/dry-run.js';
import { parseScanResult } from '../controller/plan/scan-result.js';
import type { ClusterRunFigures, ClusterSide } from './cluster-figures.js';
import { median } from './support/stats.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const CLI_MAIN = fileURLToPath(new URL('../cli/main.js', import.meta.url));
const VITEST = path.join(REPO, 'node_modules', 'vitest', 'vitest.mjs');
const DRIVER_CONFIG = path.join(REPO, 'test', 'bench', 'vitest.config.ts');
const PLAN_FILES = 3_000_000;
const PLAN_FILES_PER_SHARD = 1000;

export interface PlanBenchResult {
  files: number;
  shards: number;
  /** Seconds per plan from the scan's answer (parse, shards, pool, budget, parallelism): the controller's part. */
  controllerPlanSeconds: number;
  /** Seconds to give every one of the files its shard (the scan's part). */
  shardAssignmentSeconds: number;
  /** `midi-corpus plan --files 3000000 ...`, spawn to exit, median of `rounds`; `node -e 0` measured between them. */
  planCommandSeconds: number;
  bareNodeSeconds: number;
  rounds: number;
}

/** Seconds per call of `fn`, as the median of `rounds` timings of enough calls to last at least 50 ms each. */
function secondsPerCall(fn: () => void, rounds: number): number {
  let calls = 1;
  for (;;) {
    const t = performance.now();
    for (let i = 0; i < calls; i++) fn();
    if (performance.now() - t >= 50) break;
    calls *= 2;
  }
  const times: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t = performance.now();
    for (let i = 0; i < calls; i++) fn();
    times.push((performance.now() - t) / 1000 / calls);
  }
  return median(times);
}

export async function benchPlan3M(rounds = 7): Promise<PlanBenchResult> {
  const corpus = 'bench/plan';
  const shards = Math.ceil(PLAN_FILES / PLAN_FILES_PER_SHARD);
  // The scan's termination message as the controller reads it from the scan pod.
  const message = JSON.stringify({
    corpus,
    files: PLAN_FILES,
    bytes: PLAN_FILES * 30_000,
    shards,
    problems: 0,
    added: PLAN_FILES,
    changed: 0,
    unchanged: 0,
    missing: 0,
    work: PLAN_FILES,
  });
  let planned = 0;
  const controllerPlan = () => {
    const answer = parseScanResult(message, corpus);
    if (!answer.ok) throw new Error(answer.message);
    const plan = dryRun({
      files: answer.result.lastScan?.work ?? answer.result.files,
      sharding: { filesPerShard: PLAN_FILES_PER_SHARD },
      cpuMillis: 1000,
      maxConnections: 100,
      reservedConnections: 3,
      headroom: 2,
      maxParallelism: 50,
    });
    if (plan.errors.length > 0) throw new Error(plan.errors.join('; '));
    planned = plan.shards;
  };
  const shardAssignment = () => {
    const plan = planShards(PLAN_FILES, { filesPerShard: PLAN_FILES_PER_SHARD });
    // The first file of every shard, as the scan hands them to width_bucket: a pass over every file's shard.
    const starts: number[] = [];
    for (let i = 0; i < PLAN_FILES; i++) if (plan.shardOf(i) === starts.length) starts.push(i);
    if (starts.length !== plan.shards) throw new Error(`${starts.length} shard starts for ${plan.shards} shards`);
  };
  const controllerPlanSeconds = secondsPerCall(controllerPlan, rounds);
  const shardAssignmentSeconds = secondsPerCall(shardAssignment, rounds);
  if (planned !== shards) throw new Error(`planned ${planned} shards, expected ${shards}`);
  const commandSeconds: number[] = [];
  const bareNodeSeconds: number[] = [];
  for (let r = 0; r < rounds; r++) {
    commandSeconds.push(await planCommand());
    bareNodeSeconds.push(await bareNode());
  }
  return {
    files: PLAN_FILES,
    shards,
    controllerPlanSeconds,
    shardAssignmentSeconds,
    planCommandSeconds: median(commandSeconds),
    bareNodeSeconds: median(bareNodeSeconds),
    rounds,
  };
}

function bareNode(): Promise<number> {
  return new Promise((resolve, reject) => {
    const t = performance.now();
    const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
    child.once('error', reject);
    child.once('exit', () => resolve((performance.now() - t) / 1000));
  });
}

function planCommand(): Promise<number> {
  const args = [
    CLI_MAIN,
    'plan',
    '--files',
    String(PLAN_FILES),
    '--files-per-shard',
    String(PLAN_FILES_PER_SHARD),
    '--cpu',
    '1',
    '--max-connections',
    '100',
    '--json',
  ];
  return new Promise((resolve, reject) => {
    const t = performance.now();
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.once('error', reject);
    child.once('exit', (code) => {
      const seconds = (performance.now() - t) / 1000;
      const shards = (JSON.parse(stdout || '{}') as { shards?: number }).shards;
      if (code !== 0 || shards !== PLAN_FILES / PLAN_FILES_PER_SHARD)
        return reject(new Error(`midi-corpus plan exited ${code} with ${shards} shards`));
      resolve(seconds);
    });
  });
}

export interface ClusterBenchOptions {
  files: number;
  filesPerShard: number;
  rounds: number;
  /** A runner pod's CPU request (Kubernetes quantity). */
  cpu: string;
  /** The Postgres server's max_connections. */
  maxConnections: number;
}

/**
 * The knobs, from the environment: BENCH_CLUSTER_FILES (default 20 000), BENCH_CLUSTER_FILES_PER_SHARD (1000),
 * BENCH_CLUSTER_ROUNDS (1), BENCH_CLUSTER_CPU (a runner pod's request, '1'), BENCH_CLUSTER_MAX_CONNECTIONS (16: the budget, 11, and the nodes' CPU then both allow about four runner pods).
 * Undefined unless BENCH_CLUSTER=1: a cold cluster build takes tens of minutes, a warm run several.
 */
export function clusterOptionsFromEnv(e: NodeJS.ProcessEnv = process.env): ClusterBenchOptions | undefined {
  if (e.BENCH_CLUSTER !== '1') return undefined;
  const n = (name: string, fallback: number) => (e[name] === undefined ? fallback : Number(e[name]));
  return {
    files: n('BENCH_CLUSTER_FILES', 20_000),
    filesPerShard: n('BENCH_CLUSTER_FILES_PER_SHARD', 1000),
    rounds: n('BENCH_CLUSTER_ROUNDS', 1),
    cpu: e.BENCH_CLUSTER_CPU ?? '1',
    maxConnections: n('BENCH_CLUSTER_MAX_CONNECTIONS', 16),
  };
}

export interface ClusterBenchResult {
  files: number;
  localFilesPerSecond: number;
  clusterFilesPerSecond: number;
  /** Cluster files/s over local's (medians over the rounds). */
  clusterOverLocal: number;
  /** The most client connections the server had at once over the budget the controller planned with, worst run. */
  clusterConnectionPeakOverBudget: number;
  /** The controller's peak RSS reconciling the whole corpus over reconciling a tenth of it. */
  controllerMemoryLargeOverSmall: number;
  controllerHeapLargeOverSmall: number;
  raw: ClusterRunFigures;
}

/** The budget a run's status gave: what everyone on the server together must stay within. */
function budgetOf(side: ClusterSide): number {
  const b = side.budget;
  if (b?.limit === undefined || b.reserved === undefined || b.headroom === undefined)
    throw new Error('the corpus status has no budget figures');
  return b.limit - b.reserved - b.headroom;
}

export async function benchCluster(options: ClusterBenchOptions): Promise<ClusterBenchResult> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mco-bench-p-'));
  const out = path.join(dir, 'figures.json');
  try {
    await new Promise<void>((resolve, reject) => {
      // vitest's report goes to our stderr with the other progress lines: stdout is the bench's table.
      const child = spawn(process.execPath, [VITEST, 'run', '--config', DRIVER_CONFIG], {
        cwd: REPO,
        stdio: ['ignore', 2, 2],
        env: {
          ...process.env,
          BENCH_CLUSTER_OUT: out,
          BENCH_CLUSTER_FILES: String(options.files),
          BENCH_CLUSTER_FILES_PER_SHARD: String(options.filesPerShard),
          BENCH_CLUSTER_ROUNDS: String(options.rounds),
          BENCH_CLUSTER_CPU: options.cpu,
          BENCH_CLUSTER_MAX_CONNECTIONS: String(options.maxConnections),
        },
      });
      child.once('error', reject);
      child.once('exit', (code) =>
        code === 0 ? resolve() : reject(new Error(`the cluster run (test/bench/cluster.run.ts) exited ${code}`)),
      );
    });
    const raw = JSON.parse(await readFile(out, 'utf8')) as ClusterRunFigures;
    const localFilesPerSecond = median(raw.rounds.map((r) => r.local.files / r.local.seconds));
    const clusterFilesPerSecond = median(raw.rounds.map((r) => r.cluster.files / r.cluster.seconds));
    const runs = [...raw.rounds.map((r) => r.cluster), raw.small];
    const large = raw.rounds[0]!.cluster.controller;
    const small = raw.small.controller;
    return {
      files: raw.files,
      localFilesPerSecond,
      clusterFilesPerSecond,
      clusterOverLocal: clusterFilesPerSecond / localFilesPerSecond,
      clusterConnectionPeakOverBudget: Math.max(...runs.map((r) => r.connections.peak.everyone / budgetOf(r))),
      controllerMemoryLargeOverSmall: large.peakRssMb / small.peakRssMb,
      controllerHeapLargeOverSmall: large.peakHeapUsedMb / small.peakHeapUsedMb,
      raw,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Table rows of (p): benchmark, ratio, figures, target. */
export function clusterRows(
  plan: PlanBenchResult,
  cluster: ClusterBenchResult | undefined,
): [string, string, string, string][] {
  const x = (v: number) => `${v.toFixed(2)}x`;
  const s = (v: number) => `${v < 0.01 ? v.toExponential(1) : v.toFixed(3)} s`;
  const verdict = (ok: boolean) => (ok ? 'met' : 'SHORT');
  const planSeconds = plan.controllerPlanSeconds + plan.shardAssignmentSeconds;
  const rows: [string, string, string, string][] = [
    [
      `(p) a plan for ${plan.files / 1e6}M files (${plan.shards} shards)`,
      s(planSeconds),
      `controller's plan from the scan's counts ${s(plan.controllerPlanSeconds)}, every file's shard ${s(plan.shardAssignmentSeconds)}; \`midi-corpus plan\` command ${s(plan.planCommandSeconds)} (node -e 0: ${s(plan.bareNodeSeconds)})`,
      `< 1 s ${verdict(planSeconds < 1)}`,
    ],
  ];
  if (!cluster) return rows;
  const r = cluster.raw;
  const first = r.rounds[0]!;
  const peak = Math.max(...r.rounds.map((x) => x.cluster.connections.peak.everyone));
  rows.push(
    [
      `(p) operator on ${r.nodes.length} real nodes over local, ${r.files} real-world-like files`,
      x(cluster.clusterOverLocal),
      `${cluster.clusterFilesPerSecond.toFixed(0)} files/s (${first.cluster.shards} shards, up to ${first.cluster.peakLivePods} pods) vs ${cluster.localFilesPerSecond.toFixed(0)} files/s (local: ${first.local.shards} shard(s), ${first.local.runners} runner(s)); medians of ${r.rounds.length}`,
      '',
    ],
    [
      '(p) cluster connection peak over budget',
      cluster.clusterConnectionPeakOverBudget.toFixed(2),
      `peak ${peak} of budget ${budgetOf(first.cluster)} (max_connections ${r.maxConnections}); local's peak ${Math.max(...r.rounds.map((x) => x.local.connections.peak.everyone))}`,
      `≤ 1 ${verdict(cluster.clusterConnectionPeakOverBudget <= 1)}`,
    ],
    [
      `(p) controller peak RSS, ${r.files} files over ${r.small.files}`,
      x(cluster.controllerMemoryLargeOverSmall),
      `${first.cluster.controller.peakRssMb.toFixed(0)} MB vs ${r.small.controller.peakRssMb.toFixed(0)} MB; heap used ${first.cluster.controller.peakHeapUsedMb.toFixed(1)} vs ${r.small.controller.peakHeapUsedMb.toFixed(1)} MB`,
      'about 1x',
    ],
  );
  return rows;
}
