/**
 * Benchmark (l): `midi-corpus scan` against the shell's cheapest way to record the same listing, on the same files, in
 * one run: `find <dir> -type f -printf '%P\t%s\t%T@\n' | psql -c '\copy … from stdin'` and a `CREATE UNIQUE INDEX` on
 * the path. The files are empty (the scan reads no contents) and made on tmpfs when there is one, so both sides measure
 * the walk and the database, not a disk. For each corpus size, in a database of its own (the same server):
 *
 * - find + COPY + index, timed as one shell command;
 * - the first scan of the corpus (every file added), the real command as a process: time and peak resident memory;
 * - a rescan of the unchanged corpus (every file compared with its row; still pending, so still work).
 *
 * Figures: scan ÷ find+COPY+index and rescan ÷ the same at the largest size (target ≤ 2), and the scan's peak RSS at
 * the largest size over the smallest (about 1 when the listing is streamed). Beside each time, the CPU it took: the
 * commands' own (bash's `times`: find and psql, or the scan) and the server's backends' (the postmaster's reaped
 * children, read from /proc). On a machine shared with other work, wall times follow how much CPU each side got;
 * the CPU seconds say how much work each side is.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { ScanSummary } from '../contract/scan-summary.js';
import { measureProcess } from './measure-process.js';
import { median } from './support/stats.js';
import { inFreshDatabase } from './support/database.js';

const CLI_MAIN = fileURLToPath(new URL('../cli/main.js', import.meta.url));
const FILES_PER_DIRECTORY = 1000;

export interface ScanRun {
  seconds: number;
  peakRssMb: number;
  /** CPU seconds of the command and its children, and of the database backends that served it. */
  cpu: { command: number; server: number };
}

export interface ScanSize {
  files: number;
  /** Medians over the rounds. */
  findCopyIndexSeconds: number;
  findCopyIndexCpu: { command: number; server: number };
  scan: ScanRun;
  rescan: ScanRun;
  scanOverFindCopy: number;
  rescanOverFindCopy: number;
  /** The same in CPU seconds, command and server together. */
  scanCpuOverFindCopy: number;
  rescanCpuOverFindCopy: number;
  rounds: Array<{ findCopyIndex: ScanRun; scan: ScanRun; rescan: ScanRun }>;
  summary: ScanSummary;
}

export interface ScanBenchResult {
  directory: { path: string; tmpfs: boolean };
  sizes: ScanSize[];
  /** At the largest size. */
  scanOverFindCopy: number;
  rescanOverFindCopy: number;
  scanCpuOverFindCopy: number;
  rescanCpuOverFindCopy: number;
  /** The scan's peak RSS at the largest size over the smallest's: about 1 when nothing is held per file. */
  peakRssLargeOverSmall: number;
}

export async function benchScan(
  serverUrl: string,
  options: {
    sizes: number[];
    rounds: number;
    /** The server's data directory (cluster in pgdata/). */ dataDir: string;
  },
): Promise<ScanBenchResult> {
  const serverCpu = postmasterChildrenCpu(path.join(options.dataDir, 'pgdata'));
  for (const tool of ['find', 'psql']) {
    try {
      execFileSync(tool, ['--version'], { stdio: 'ignore' });
    } catch {
      throw new Error(`benchmark (l) needs ${tool} on the PATH (Debian: findutils, postgresql-client)`);
    }
  }
  const base = tmpfsDirectory();
  const tmp = await mkdtemp(path.join(base.path, 'mco-bench-scan-'));
  const sizes: ScanSize[] = [];
  try {
    for (const files of [...options.sizes].sort((a, b) => a - b)) {
      const root = path.join(tmp, `corpus-${files}`);
      makeEmptyFiles(root, files);
      const rounds: ScanSize['rounds'] = [];
      let summary: ScanSummary | undefined;
      for (let r = 0; r < options.rounds; r++) {
        const round = await inFreshDatabase(serverUrl, `mco_bench_scan_${files}`, 'mco bench scan', async (url) => {
          const baseline = await findCopyIndex(url, root, serverCpu);
          const first = await scan(url, root, `bench-scan-${files}`, serverCpu);
          const again = await scan(url, root, `bench-scan-${files}`, serverCpu);
          if (first.summary.added !== files || again.summary.unchanged !== files)
            throw new Error(`scan of ${files} files recorded ${JSON.stringify([first.summary, again.summary])}`);
          summary = first.summary;
          return { findCopyIndex: baseline, scan: first.run, rescan: again.run };
        });
        rounds.push(round);
      }
      await rm(root, { recursive: true, force: true });
      const baseline = medianRun(rounds.map((r) => r.findCopyIndex));
      const findCopyIndexSeconds = baseline.seconds;
      const scanRun = medianRun(rounds.map((r) => r.scan));
      const rescanRun = medianRun(rounds.map((r) => r.rescan));
      sizes.push({
        files,
        findCopyIndexSeconds,
        findCopyIndexCpu: baseline.cpu,
        scan: scanRun,
        rescan: rescanRun,
        scanOverFindCopy: scanRun.seconds / findCopyIndexSeconds,
        rescanOverFindCopy: rescanRun.seconds / findCopyIndexSeconds,
        scanCpuOverFindCopy: totalCpu(scanRun) / totalCpu(baseline),
        rescanCpuOverFindCopy: totalCpu(rescanRun) / totalCpu(baseline),
        rounds,
        summary: summary!,
      });
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  const small = sizes[0]!;
  const large = sizes[sizes.length - 1]!;
  return {
    directory: base,
    sizes,
    scanOverFindCopy: large.scanOverFindCopy,
    rescanOverFindCopy: large.rescanOverFindCopy,
    scanCpuOverFindCopy: large.scanCpuOverFindCopy,
    rescanCpuOverFindCopy: large.rescanCpuOverFindCopy,
    peakRssLargeOverSmall: large.scan.peakRssMb / small.scan.peakRssMb,
  };
}

/** os.tmpdir() if it is a tmpfs, else /dev/shm if that is one, else os.tmpdir() all the same (said in the result). */
function tmpfsDirectory(): { path: string; tmpfs: boolean } {
  const mounts = readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => f.length > 2)
    .map(([, dir, type]) => ({ dir: dir!, type: type! }));
  const fsType = (p: string) =>
    mounts
      .filter((m) => p === m.dir || p.startsWith(m.dir.endsWith('/') ? m.dir : `${m.dir}/`))
      .sort((a, b) => b.dir.length - a.dir.length)[0]?.type;
  for (const candidate of [os.tmpdir(), '/dev/shm']) {
    if (fsType(candidate) === 'tmpfs') return { path: candidate, tmpfs: true };
  }
  return { path: os.tmpdir(), tmpfs: false };
}

/** `files` empty .mid files, a thousand per directory. */
function makeEmptyFiles(root: string, files: number): void {
  for (let d = 0; d * FILES_PER_DIRECTORY < files; d++) {
    const dir = path.join(root, `d${String(d).padStart(4, '0')}`);
    mkdirSync(dir, { recursive: true });
    for (let i = 0; i < FILES_PER_DIRECTORY && d * FILES_PER_DIRECTORY + i < files; i++)
      closeSync(openSync(path.join(dir, `song${String(i).padStart(4, '0')}.mid`), 'w'));
  }
}

/** The shell's find | psql \copy, then the unique index, timed as one command. The password goes in the environment. */
async function findCopyIndex(databaseUrl: string, root: string, serverCpu: () => number): Promise<ScanRun> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query('DROP TABLE IF EXISTS bench_scan_find');
    await client.query(
      'CREATE TABLE bench_scan_find (path text NOT NULL, size bigint NOT NULL, mtime float8 NOT NULL)',
    );
  } finally {
    await client.end();
  }
  const url = new URL(databaseUrl);
  const script = [
    'set -eo pipefail',
    `find "$ROOT" -type f -printf '%P\\t%s\\t%T@\\n' | psql -qX -v ON_ERROR_STOP=1 -c '\\copy bench_scan_find from stdin'`,
    `psql -qX -v ON_ERROR_STOP=1 -c 'CREATE UNIQUE INDEX ON bench_scan_find (path)'`,
    'times >&2',
  ].join('\n');
  const server = serverCpu();
  const run = await measureProcess('bash', ['-c', script], {
    env: {
      PATH: process.env.PATH,
      ROOT: root,
      PGHOST: url.hostname,
      PGPORT: url.port,
      PGUSER: decodeURIComponent(url.username),
      PGPASSWORD: decodeURIComponent(url.password),
      PGDATABASE: url.pathname.slice(1),
    },
  });
  if (run.code !== 0) throw new Error(`find | psql exited ${run.code}: ${run.stderr.slice(-500)}`);
  return {
    seconds: run.seconds,
    peakRssMb: run.peakRssMb,
    cpu: { command: childrenCpu(run.stderr), server: serverCpu() - server },
  };
}

/** The real command, under bash for its CPU (`times`); the peak RSS sampled is bash's child's, the scan's. */
async function scan(
  databaseUrl: string,
  root: string,
  corpus: string,
  serverCpu: () => number,
): Promise<{ run: ScanRun; summary: ScanSummary }> {
  const server = serverCpu();
  const run = await measureProcess(
    'bash',
    [
      '-c',
      '"$NODE" "$CLI" scan --corpus "$CORPUS" --root "$ROOT" --files-per-shard 1000 --json; s=$?; times >&2; exit $s',
    ],
    {
      env: {
        ...process.env,
        DATABASE_URL: databaseUrl,
        NODE: process.execPath,
        CLI: CLI_MAIN,
        CORPUS: corpus,
        ROOT: root,
      },
      children: true,
    },
  );
  if (run.code !== 0) throw new Error(`scan of ${root} exited ${run.code}: ${run.stderr.slice(-500)}`);
  const summary = JSON.parse(run.stdout.trim().split('\n').pop()!) as ScanSummary;
  const cpu = { command: childrenCpu(run.stderr), server: serverCpu() - server };
  return { run: { seconds: run.seconds, peakRssMb: run.peakRssMb, cpu }, summary };
}

/** The children's user + system seconds from the last line bash's `times` printed ("0m1.234s 0m0.567s"). */
function childrenCpu(stderr: string): number {
  const last = stderr.trim().split('\n').pop() ?? '';
  const m = /^(\d+)m([\d.]+)s (\d+)m([\d.]+)s$/.exec(last);
  if (!m) throw new Error(`no CPU times from bash in ${JSON.stringify(last)}`);
  return Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4]);
}

/**
 * CPU seconds so far of the postmaster's finished children (cutime + cstime in /proc/<pid>/stat): every backend that
 * served a command, once the command has disconnected and the postmaster has reaped it.
 */
function postmasterChildrenCpu(clusterDir: string): () => number {
  const pid = readFileSync(path.join(clusterDir, 'postmaster.pid'), 'utf8').split('\n')[0]!.trim();
  const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
  return () => {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[13]) + Number(fields[14])) / ticks;
  };
}

export function totalCpu(r: ScanRun): number {
  return r.cpu.command + r.cpu.server;
}

function medianRun(runs: ScanRun[]): ScanRun {
  return {
    seconds: median(runs.map((r) => r.seconds)),
    peakRssMb: median(runs.map((r) => r.peakRssMb)),
    cpu: { command: median(runs.map((r) => r.cpu.command)), server: median(runs.map((r) => r.cpu.server)) },
  };
}
