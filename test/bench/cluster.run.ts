/**
 * The cluster side of bench (p) (bench/cluster.ts), run through vitest because the real-node harness (test/cluster)
 * and the e2e support are test code, outside the build. Not a test file (`*.run.ts`, only test/bench/vitest.config.ts
 * includes it): it measures, and its checks only refuse to report figures of a run that did not do the whole job.
 *
 * One control plane with two real nodes, one Postgres server outside the cluster (as users run one) and one corpus of
 * real-world-like files on disk (job-runner/synth 'real-world': several tracks, drums, tempo maps), written in ten
 * equal parts so that part-00 alone is a corpus a tenth the size. In alternating rounds, each side from the same files
 * into a corpus key of its own:
 *   local:   `midi-corpus local <dir> --database-url ...` (default sharding), spawn to exit;
 *   cluster: a MidiCorpus applied to the real API server, the controller running (a fresh process each run, so its
 *            peak memory is that run's), its scan Job and Indexed run Job on the nodes, until status says Succeeded.
 * Then the controller's memory: part-00 (N files) through a fresh controller with the same shard count as the whole
 * corpus (10N), so Jobs and pods are alike and only the file count differs.
 * The server's connections are sampled independently (ConnectionSampler) through every run.
 *
 * Environment (set by bench/cluster.ts): BENCH_CLUSTER_OUT (where the JSON goes), BENCH_CLUSTER_FILES,
 * BENCH_CLUSTER_FILES_PER_SHARD, BENCH_CLUSTER_ROUNDS, BENCH_CLUSTER_CPU, BENCH_CLUSTER_MAX_CONNECTIONS.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import os from 'node:os';
import path from 'node:path';
import { expect, it } from 'vitest';
import type { ClusterRunFigures, ClusterSide, ControllerMemory, LocalSide } from '../../bench/cluster-figures.js';
import { GROUP, PLURAL, VERSION } from '../../controller/api/v1alpha1/midicorpus.js';
import { midiCorpusCRDYaml } from '../../controller/api/crd.js';
import { generateCorpus } from '../../job-runner/synth/corpus.js';
import type { LocalRunReport } from '../../job-runner/local/report.js';
import { startCluster, type TestCluster } from '../cluster/cluster.js';
import { projectImage } from '../cluster/project-image.js';
import { CLUSTER_START_TIMEOUT_MS, eventually } from '../cluster/vitest.js';
import { ConnectionSampler } from '../e2e/support/database.js';
import {
  E2E_CLUSTER,
  applyOrFail,
  corpusVolumeObjects,
  createDatabaseSecret,
  jobPods,
  readCorpus,
  repoRoot,
} from '../e2e/support/operator.js';
import { startScenario, type Scenario } from '../e2e/support/scenario.js';

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const FILES = env('BENCH_CLUSTER_FILES', 20_000);
const FILES_PER_SHARD = env('BENCH_CLUSTER_FILES_PER_SHARD', 1000);
const ROUNDS = env('BENCH_CLUSTER_ROUNDS', 1);
const MAX_CONNECTIONS = env('BENCH_CLUSTER_MAX_CONNECTIONS', 16);
const CPU = process.env.BENCH_CLUSTER_CPU ?? '1';
const PARTS = 10;
const CLI = path.join(repoRoot, 'dist', 'cli', 'main.js');
/** A corpus of 20 000 files takes minutes through two nodes on two shared cores; a hung run must still end. */
const RUN_TIMEOUT_MS = 60 * 60_000;

/** The most resident memory the process ever had, in MB (VmHWM of /proc/<pid>/status). */
function peakRssMb(pid: number): number {
  return Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024;
}

/** A controller process against the real API server, watching one namespace, as the Deployment would run it. */
class ControllerProcess {
  private child?: ChildProcess;
  private metricsPort?: number;
  private heapPeak = 0;
  private heapSamples = 0;
  private sampling?: Promise<void>;
  private stopped = false;
  private memory?: ControllerMemory;

  constructor(
    private readonly cluster: TestCluster,
    private readonly namespace: string,
    private readonly image: string,
    private readonly dir: string,
  ) {}

  async start(): Promise<void> {
    const logFile = path.join(this.dir, `controller-${this.namespace}.log`);
    this.child = spawn(
      process.execPath,
      [
        CLI,
        'controller',
        `--namespace=${this.namespace}`,
        '--leader-elect=false',
        '--metrics-port=0',
        '--health-port=0',
        `--runner-image=${this.image}`,
      ],
      {
        env: { ...process.env, KUBECONFIG: this.cluster.kubeconfigPath, POD_NAME: `bench-${this.namespace}` },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    this.child.stderr!.pipe(createWriteStream(logFile));
    const running = await eventually(
      `the controller of ${this.namespace} to list and watch`,
      async () =>
        (await readFile(logFile, 'utf8'))
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as { msg?: string; metrics?: number })
          .find((l) => l.msg === 'controller running'),
      120_000,
    );
    this.metricsPort = running.metrics;
    this.sampling = this.sampleHeap();
  }

  private async sampleHeap(): Promise<void> {
    while (!this.stopped) {
      try {
        const text = await (await fetch(`http://127.0.0.1:${this.metricsPort}/metrics`)).text();
        const used = Number(/^nodejs_heap_size_used_bytes (\d+(?:\.\d+)?)/m.exec(text)?.[1]);
        if (Number.isFinite(used)) {
          this.heapPeak = Math.max(this.heapPeak, used);
          this.heapSamples++;
        }
      } catch {
        // Between two samples the process may be stopping: the last one stands.
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }

  /** Its memory figures, then SIGTERM and its exit. */
  async stop(): Promise<ControllerMemory> {
    if (this.memory) return this.memory;
    this.stopped = true;
    await this.sampling;
    const rss = peakRssMb(this.child!.pid!);
    if (this.child!.exitCode === null && this.child!.signalCode === null) {
      const exited = once(this.child!, 'exit');
      this.child!.kill('SIGTERM');
      await exited;
    }
    this.memory = { peakRssMb: rss, peakHeapUsedMb: this.heapPeak / (1 << 20), heapSamples: this.heapSamples };
    return this.memory;
  }
}

it(
  'bench (p): a real-world-like corpus through the operator on two real nodes and through local, side by side',
  async () => {
    const out = process.env.BENCH_CLUSTER_OUT;
    if (!out) throw new Error('BENCH_CLUSTER_OUT must name the file the figures go to (bench/cluster.ts sets it)');
    const work = await mkdtemp(path.join(os.tmpdir(), 'mco-bench-cluster-'));
    // The runner pods read the corpus as the image's user (65532): mkdtemp's 0700 would shut them out.
    await chmod(work, 0o755);
    const root = path.join(work, 'corpus');
    const perPart = Math.floor(FILES / PARTS);
    const files = perPart * PARTS;
    let bytes = 0;
    // Written part by part: 20 000 real-world-like songs at once would hold their bytes in memory for nothing.
    for (let part = 0; part < PARTS; part++) {
      for (const f of generateCorpus({ files: perPart, seed: 700 + part, profile: 'real-world' })) {
        const target = path.join(root, `part-${String(part).padStart(2, '0')}`, ...f.path.split('/'));
        await mkdir(path.dirname(target), { recursive: true });
        await writeFile(target, f.bytes);
        bytes += f.bytes.length;
      }
    }
    await chmod(root, 0o755);

    const started = Date.now();
    const cluster = await startCluster(E2E_CLUSTER);
    const controllers: ControllerProcess[] = [];
    let scenario: Scenario | undefined;
    try {
      const image = await projectImage();
      await cluster.importImage(image.archive);
      const clusterStartSeconds = (Date.now() - started) / 1000;
      const crd = await cluster.kubectl(['apply', '-f', '-'], midiCorpusCRDYaml());
      expect(crd.code, crd.stderr).toBe(0);
      await cluster.kubectl(['wait', '--for=condition=Established', `crd/${PLURAL}.${GROUP}`, '--timeout=60s']);
      // 'host': the controller runs on this machine, so the Secret gives the server's address on the cluster network,
      // which it and the pods both reach (a ClusterIP is reachable from pods only).
      scenario = await startScenario(cluster, 'bench-db', MAX_CONNECTIONS, { via: 'host' });
      const s = scenario;
      const shards = Math.ceil(files / FILES_PER_SHARD);

      const runLocal = async (round: number): Promise<LocalSide> => {
        const sampler = new ConnectionSampler(s.db.url);
        await sampler.start();
        const t = performance.now();
        const report = await localRun(root, s.ownerUrl, `bench-local-${round}`, path.join(work, `local-${round}`));
        const seconds = (performance.now() - t) / 1000;
        const connections = await sampler.stop();
        expect(report.outcome).toBe('complete');
        expect(report.files.ok + report.files.failed).toBe(files);
        return {
          seconds,
          files,
          shards: report.thisRun.shards,
          runners: report.thisRun.runners,
          connections,
          reportedBudget: report.connections.budget,
          reportedPeak: report.connections.peak,
        };
      };

      const runCluster = async (namespace: string, source: string, corpusFiles: number): Promise<ClusterSide> => {
        await cluster.createNamespace(namespace);
        await createDatabaseSecret(cluster, namespace, s.podUrl);
        const claim = 'corpus';
        await applyOrFail(cluster, ...corpusVolumeObjects({ namespace, claim, dir: root }));
        const controller = new ControllerProcess(cluster, namespace, image.ref, work);
        controllers.push(controller);
        await controller.start();
        const sampler = new ConnectionSampler(s.db.url);
        await sampler.start();
        const name = 'songs';
        const t = performance.now();
        await applyOrFail(cluster, {
          apiVersion: `${GROUP}/${VERSION}`,
          kind: 'MidiCorpus',
          metadata: { name, namespace },
          spec: {
            source: { volume: { persistentVolumeClaim: { claimName: claim, readOnly: true } }, path: source },
            database: { secretRef: { name: 'db' } },
            sharding: { targetShards: shards },
            runner: { resources: { requests: { cpu: CPU, memory: '256Mi' } } },
          },
        });
        const phases: Record<string, number> = {};
        let peakLivePods = 0;
        let budget: ClusterSide['budget'];
        const status = await eventually(
          `${namespace}/${name} to finish`,
          async () => {
            const st = (await readCorpus(cluster, namespace, name))?.status;
            if (st?.phase && phases[st.phase] === undefined) phases[st.phase] = (performance.now() - t) / 1000;
            // The figures the controller planned with while the corpus was under way (a final status need not keep them).
            if (st?.budget && (st.phase === 'Scanning' || st.phase === 'Running')) budget = st.budget;
            const live = (await jobPods(cluster, namespace, `${name}-run`)).filter(
              (p) => p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed',
            );
            peakLivePods = Math.max(peakLivePods, live.length);
            return st?.phase === 'Succeeded' || st?.phase === 'Failed' ? st : undefined;
          },
          RUN_TIMEOUT_MS,
        );
        const seconds = (performance.now() - t) / 1000;
        const connections = await sampler.stop();
        const memory = await controller.stop();
        expect(status).toMatchObject({
          phase: 'Succeeded',
          files: { total: corpusFiles, processed: corpusFiles },
          shards: { total: shards, succeeded: shards },
        });
        return {
          files: corpusFiles,
          seconds,
          phases,
          shards,
          peakLivePods,
          budget: budget ?? status.budget,
          connections,
          controller: memory,
        };
      };

      const rounds: ClusterRunFigures['rounds'] = [];
      for (let round = 0; round < ROUNDS; round++) {
        // Alternating which side goes first, so that a slow stretch of the shared machine falls on both alike.
        let local: LocalSide;
        let clustered: ClusterSide;
        if (round % 2 === 0) {
          local = await runLocal(round);
          clustered = await runCluster(`bench-${round}`, '', files);
        } else {
          clustered = await runCluster(`bench-${round}`, '', files);
          local = await runLocal(round);
        }
        rounds.push({ local, cluster: clustered });
      }
      const small = await runCluster('bench-small', 'part-00', perPart);

      const figures: ClusterRunFigures = {
        files,
        bytes,
        filesPerShard: FILES_PER_SHARD,
        cpu: CPU,
        maxConnections: MAX_CONNECTIONS,
        nodes: cluster.nodeNames(),
        clusterStartSeconds,
        rounds,
        small,
      };
      await writeFile(out, `${JSON.stringify(figures, null, 2)}\n`);
    } finally {
      for (const c of controllers) await c.stop().catch(() => {});
      await scenario?.cleanup().catch(() => {});
      await cluster.stop();
      await rm(work, { recursive: true, force: true });
    }
  },
  CLUSTER_START_TIMEOUT_MS + 4 * RUN_TIMEOUT_MS,
);

/** `midi-corpus local` to its end; its --json report. */
function localRun(root: string, url: string, corpus: string, dataDir: string): Promise<LocalRunReport> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'local', root, '--corpus', corpus, '--data-dir', dataDir, '--json'], {
      env: { ...process.env, DATABASE_URL: url, LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`midi-corpus local exited ${code}: ${stderr.slice(-800)}`));
      resolve(JSON.parse(stdout.trim().split('\n').pop()!) as LocalRunReport);
    });
  });
}
