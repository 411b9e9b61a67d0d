/**
 * Benchmarks (g) and (h): the fixed costs that every command and every shard pay, against a bare `node -e 0`.
 *
 * (g) Start-up of the commands that need no cluster: `--version`, `--help`, each command's `--help` and a real `plan`
 *     (pure arithmetic), each a fresh process from spawn to exit. The commands and `node -e 0` take turns round after
 *     round (load from elsewhere comes and goes, and must hit both alike); the figure of each is its median, and the
 *     ratio is that median over the median of `node -e 0` (target ≤ 4).
 * (h) A shard's fixed cost: a `run-shard` process on a shard of one file and on an empty one (a fresh corpus each
 *     round, so the one file is really analysed and written), from spawn to exit and from spawn to its admission by
 *     the server ledger (the IPC message local mode waits for), over `node -e 0` measured beside it (target ≤ 3).
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { applicationNameFor } from '../contract/application-name.js';
import { isAdmittedMessage } from '../contract/run-shard-command.js';
import { migrate } from '../job-runner/db/migrations.js';
import { scanCorpus } from '../job-runner/runner/scan.js';
import { generateCorpus } from '../job-runner/synth/corpus.js';
import { median } from './support/stats.js';

const CLI_MAIN = fileURLToPath(new URL('../cli/main.js', import.meta.url));

/** Every command but `controller`, which needs a cluster; each one's `--help` builds its flags and exits. */
const COMMANDS = [
  'migrate',
  'plan',
  'scan',
  'run-shard',
  'generate-sample',
  'local',
  'db',
  'report',
  'query',
  'export',
];
const PLAN = ['plan', '--files', '100000', '--shards', '20', '--cpu', '2', '--max-connections', '100'];

export interface StartupFigure {
  args: string[];
  medianMs: number;
  overBareNode: number;
}

export interface StartupBenchResult {
  rounds: number;
  bareNodeMedianMs: number;
  commands: StartupFigure[];
  /** The slowest command's ratio: the one the target is about. */
  worstOverBareNode: number;
}

export interface ShardStartResult {
  rounds: number;
  bareNodeMedianMs: number;
  /** Median ms from spawn to exit, and to the ledger's admission. */
  oneFile: { exitMs: number; admittedMs: number };
  emptyShard: { exitMs: number; admittedMs: number };
  oneFileOverBareNode: number;
  emptyShardOverBareNode: number;
}

export interface Timed {
  exitMs: number;
  /** When the process sent ADMITTED_MESSAGE on its IPC channel; null when it sent none. */
  admittedMs: number | null;
}

/** Runs one process to its end; rejects on a non-zero exit, since a failed start would time nothing. */
function timeProcess(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    let admittedMs: number | null = null;
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('message', (m) => {
      if (isAdmittedMessage(m)) admittedMs = performance.now() - started;
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      const exitMs = performance.now() - started;
      if (code !== 0) reject(new Error(`${args.join(' ')} exited with code ${code}: ${stderr.trim().slice(-500)}`));
      else resolve({ exitMs, admittedMs });
    });
  });
}

const BARE = ['-e', '0'];
const EMPTY_SHARD = 5;

export async function benchStartup(rounds: number): Promise<StartupBenchResult> {
  const cases = [['--version'], ['--help'], ...COMMANDS.map((c) => [c, '--help']), PLAN];
  const bare: number[] = [];
  const times = cases.map(() => [] as number[]);
  // One round: node -e 0, then every command, each followed by node -e 0 again, so that both sides meet the same load.
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < cases.length; i++) {
      bare.push((await timeProcess(BARE)).exitMs);
      times[i]!.push((await timeProcess([CLI_MAIN, ...cases[i]!])).exitMs);
    }
  }
  const bareNodeMedianMs = median(bare);
  const commands = cases.map((args, i) => {
    const medianMs = median(times[i]!);
    return { args, medianMs, overBareNode: medianMs / bareNodeMedianMs };
  });
  return {
    rounds,
    bareNodeMedianMs,
    commands,
    worstOverBareNode: Math.max(...commands.map((c) => c.overBareNode)),
  };
}

export async function benchShardStart(databaseUrl: string, rounds: number): Promise<ShardStartResult> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'mco-shard-start-'));
  const root = path.join(tmp, 'corpus');
  const [file] = generateCorpus({ files: 1, seed: 7, profile: 'real-world' });
  await mkdir(root, { recursive: true });
  await writeFile(path.join(root, 'one.mid'), file!.bytes);
  const admin = new pg.Client({
    connectionString: databaseUrl,
    application_name: applicationNameFor({ role: 'bench' }),
  });
  await admin.connect();
  const prefix = `bench-shard-start-${process.pid}`;
  const bare: number[] = [];
  const one: Timed[] = [];
  const empty: Timed[] = [];
  const env = { ...process.env, DATABASE_URL: databaseUrl, LOG_LEVEL: 'warn' };
  const runner = (corpus: string, shard: number) => [
    CLI_MAIN,
    'run-shard',
    '--corpus',
    corpus,
    '--root',
    root,
    '--shard',
    String(shard),
    '--cpu-millis',
    '1000',
  ];
  try {
    await migrate(admin);
    for (let r = 0; r < rounds; r++) {
      // One file, one shard (0); a shard number past the scan's holds no file: the empty shard.
      const corpus = `${prefix}-${r}`;
      await scanCorpus(admin, { corpus, root, shards: { shards: 1 } });
      bare.push((await timeProcess(BARE)).exitMs);
      one.push(await timeProcess(runner(corpus, 0), env));
      bare.push((await timeProcess(BARE)).exitMs);
      empty.push(await timeProcess(runner(corpus, EMPTY_SHARD), env));
    }
  } finally {
    await admin.query('DELETE FROM midi.corpora WHERE key LIKE $1', [`${prefix}-%`]).catch(() => {});
    await admin.end();
    await rm(tmp, { recursive: true, force: true });
  }
  const bareNodeMedianMs = median(bare);
  const figures = (ts: Timed[]) => ({
    exitMs: median(ts.map((t) => t.exitMs)),
    admittedMs: median(ts.map((t) => t.admittedMs ?? Number.NaN)),
  });
  const oneFile = figures(one);
  const emptyShard = figures(empty);
  return {
    rounds,
    bareNodeMedianMs,
    oneFile,
    emptyShard,
    oneFileOverBareNode: oneFile.exitMs / bareNodeMedianMs,
    emptyShardOverBareNode: emptyShard.exitMs / bareNodeMedianMs,
  };
}
