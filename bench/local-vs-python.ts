/**
 * Benchmarks (i) and (j): the whole `midi-corpus local` command against the ingester a user would write instead, on
 * a corpus of real-world-like files (job-runner/synth/song.ts's 'real-world' profile: about six tracks, drums, tempo
 * maps), and local mode's shard count.
 *
 * (i) `midi-corpus local <dir> --database-url ...` with its default sharding, against bench/python/ingest.py (mido +
 *     psycopg2, two processes, one connection each, executemany per 100 files) run by Debian's /usr/bin/python3: both
 *     whole commands from spawn to exit, on the same files and the same Postgres, each into a corpus of its own; then
 *     each again over the same corpus, with nothing to write (both hash every file and find it unchanged).
 *     Ratio: local's files/s over the ingester's (target ≥ 20, aim 50).
 * (j) `local --shards N` for N in 1, 2, 4, 8, each into a fresh corpus: what local mode's default is chosen from
 *     (job-runner/local/plan.ts localShardRequest).
 *
 * Beside them, the corpus's shape (tracks and events per file) and, where Debian's planetblupi-music-midi could be
 * fetched (bench/python/python-deps.sh), the same figures of those real files.
 */
import { execFile, spawn } from 'node:child_process';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { parseMidi } from 'midi-file';
import type { LocalRunReport } from '../job-runner/local/report.js';
import { median } from './support/stats.js';

const CLI_MAIN = fileURLToPath(new URL('../cli/main.js', import.meta.url));
const PYTHON_DIR = fileURLToPath(new URL('../../bench/python/', import.meta.url));
/** Debian's: a pyenv python3 on PATH would not see python3-mido and python3-psycopg2. */
const PYTHON = '/usr/bin/python3';
export const SHARD_SWEEP = [1, 2, 4, 8];

export interface CommandRun {
  files: number;
  seconds: number;
  filesPerSecond: number;
}

export interface CorpusShape {
  files: number;
  meanTracks: number;
  minTracks: number;
  maxTracks: number;
  meanEvents: number;
  meanBytes: number;
  withDrums: number;
  meanTempoEvents: number;
  meanMeterEvents: number;
}

export interface LocalVsPythonResult {
  files: number;
  bytes: number;
  python: CommandRun & { processes: number; batch: number; parsed: number; failed: number };
  pythonRerun: CommandRun & { unchanged: number };
  local: CommandRun & { shards: number; runners: number; durationSeconds: number };
  localRerun: CommandRun & { shards: number; durationSeconds: number };
  /** local's files/s over the ingester's. */
  localOverPython: number;
  localOverPythonRerun: number;
  /** Medians over the rounds; `rounds` holds each round's seconds. */
  sweep: (CommandRun & { shards: number; runners: number; rounds: number[] })[];
  shape: { generated: CorpusShape; debianReference: (CorpusShape & { package: string }) | null };
}

function run(files: number, seconds: number): CommandRun {
  return { files, seconds, filesPerSecond: files / seconds };
}

/** Runs a command to its end and returns its stdout's last line as JSON, with the wall time from spawn to exit. */
function timedJson<T>(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ seconds: number; out: T }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('error', reject);
    child.once('exit', (code) => {
      const seconds = (performance.now() - started) / 1000;
      if (code !== 0)
        return reject(new Error(`${path.basename(command)} ${args[1] ?? ''} exited ${code}: ${stderr.slice(-800)}`));
      resolve({ seconds, out: JSON.parse(stdout.trim().split('\n').pop()!) as T });
    });
  });
}

/** Installs mido and psycopg2 for Debian's python3 on first use; the planetblupi files' directory, or null. */
async function pythonDeps(): Promise<string | null> {
  const { stdout } = await promisify(execFile)('bash', [path.join(PYTHON_DIR, 'python-deps.sh')], {
    maxBuffer: 1 << 20,
  });
  return stdout.trim().split('\n').pop() || null;
}

export async function corpusShape(files: Uint8Array[]): Promise<CorpusShape> {
  const per = files.map((bytes) => {
    const tracks = parseMidi(bytes).tracks;
    const events = tracks.flat();
    return {
      tracks: tracks.length,
      events: events.length,
      bytes: bytes.length,
      drums: events.some((e) => 'channel' in e && e.channel === 9),
      tempo: events.filter((e) => e.type === 'setTempo').length,
      meter: events.filter((e) => e.type === 'timeSignature').length,
    };
  });
  const mean = (f: (p: (typeof per)[number]) => number) => per.reduce((n, p) => n + f(p), 0) / per.length;
  return {
    files: per.length,
    meanTracks: mean((p) => p.tracks),
    minTracks: Math.min(...per.map((p) => p.tracks)),
    maxTracks: Math.max(...per.map((p) => p.tracks)),
    meanEvents: mean((p) => p.events),
    meanBytes: mean((p) => p.bytes),
    withDrums: per.filter((p) => p.drums).length,
    meanTempoEvents: mean((p) => p.tempo),
    meanMeterEvents: mean((p) => p.meter),
  };
}

export interface LocalVsPythonOptions {
  databaseUrl: string;
  root: string;
  files: Uint8Array[];
  /** Where local mode keeps its runner logs. */
  dataDir: string;
  /** Rounds of the shard-count sweep. */
  sweepRounds: number;
  step: (line: string) => void;
}

export async function benchLocalVsPython(options: LocalVsPythonOptions): Promise<LocalVsPythonResult> {
  const { databaseUrl, root, dataDir, step } = options;
  const files = options.files.length;
  const reference = await pythonDeps();
  const env = { ...process.env, DATABASE_URL: databaseUrl, LOG_LEVEL: 'warn' };
  const prefix = `bench-local-${process.pid}`;
  const local = (corpus: string, extra: string[] = []) =>
    timedJson<LocalRunReport>(
      process.execPath,
      [CLI_MAIN, 'local', root, '--corpus', corpus, '--data-dir', dataDir, '--json', ...extra],
      env,
    );
  const python = (corpus: string) =>
    timedJson<{ files: number; parsed: number; unchanged: number; failed: number; seconds: number }>(
      PYTHON,
      [path.join(PYTHON_DIR, 'ingest.py'), '--root', root, '--corpus', corpus, '--processes', '2', '--batch', '100'],
      env,
    );
  const settled = (r: LocalRunReport) => r.files.ok + r.files.failed;

  step('python ingester (mido + psycopg2, 2 processes)');
  const py = await python(`${prefix}-python`);
  if (py.out.parsed + py.out.failed !== files) throw new Error(`the ingester parsed ${JSON.stringify(py.out)}`);
  step('python ingester again, nothing to write');
  const pyAgain = await python(`${prefix}-python`);
  if (pyAgain.out.unchanged !== files) throw new Error(`the ingester's rerun: ${JSON.stringify(pyAgain.out)}`);
  step('midi-corpus local, default sharding');
  const lo = await local(`${prefix}-default`);
  if (settled(lo.out) !== files) throw new Error(`local settled ${settled(lo.out)} of ${files}`);
  step('midi-corpus local again, nothing to write');
  const loAgain = await local(`${prefix}-default`);
  // Round after round over every count, so that load from elsewhere falls on each alike; each count's median.
  const seconds = new Map<number, number[]>(SHARD_SWEEP.map((n) => [n, []]));
  const runners = new Map<number, number>();
  for (let round = 0; round < options.sweepRounds; round++) {
    for (const shards of SHARD_SWEEP) {
      step(`midi-corpus local --shards ${shards} (round ${round + 1} of ${options.sweepRounds})`);
      const r = await local(`${prefix}-shards-${shards}-${round}`, ['--shards', String(shards)]);
      if (settled(r.out) !== files) throw new Error(`local --shards ${shards} settled ${settled(r.out)} of ${files}`);
      seconds.get(shards)!.push(r.seconds);
      runners.set(shards, r.out.thisRun.runners);
    }
  }
  const sweep = SHARD_SWEEP.map((shards) => ({
    ...run(files, median(seconds.get(shards)!)),
    shards,
    runners: runners.get(shards)!,
    rounds: seconds.get(shards)!,
  }));

  const referenceFiles = reference
    ? await Promise.all(
        (await readdir(reference))
          .filter((f) => /\.midi?$/i.test(f))
          .map(async (f) => new Uint8Array(await readFile(path.join(reference, f)))),
      )
    : [];
  const pythonRun = run(files, py.seconds);
  const localRun = run(files, lo.seconds);
  return {
    files,
    bytes: options.files.reduce((n, f) => n + f.length, 0),
    python: { ...pythonRun, processes: 2, batch: 100, parsed: py.out.parsed, failed: py.out.failed },
    pythonRerun: { ...run(files, pyAgain.seconds), unchanged: pyAgain.out.unchanged },
    local: {
      ...localRun,
      shards: lo.out.thisRun.shards,
      runners: lo.out.thisRun.runners,
      durationSeconds: lo.out.durationSeconds,
    },
    localRerun: {
      ...run(files, loAgain.seconds),
      shards: loAgain.out.thisRun.shards,
      durationSeconds: loAgain.out.durationSeconds,
    },
    localOverPython: localRun.filesPerSecond / pythonRun.filesPerSecond,
    localOverPythonRerun: pyAgain.seconds / loAgain.seconds,
    sweep,
    shape: {
      generated: await corpusShape(options.files),
      debianReference: referenceFiles.length
        ? { package: 'planetblupi-music-midi', ...(await corpusShape(referenceFiles)) }
        : null,
    },
  };
}

/** The sweep's fastest shard count. */
export function fastestShards(sweep: LocalVsPythonResult['sweep']): number {
  return sweep.reduce((best, r) => (r.seconds < best.seconds ? r : best)).shards;
}
