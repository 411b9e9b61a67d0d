import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, closeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { migrate } from '../db/migrations.js';
import { corpusCounts, failures, findCorpus, type CorpusCounts } from '../db/store.js';
import type { Logger } from '../../common/log.js';
import { describeError } from '../../contract/describe-error.js';
import { errorKind, TransientError } from '../../contract/error-kinds.js';
import { EXIT_OK, EXIT_TEMPFAIL, exitCodeOf } from '../../contract/exit-codes.js';
import { runShardArgs } from '../../contract/run-shard-command.js';
import { DEFAULT_INCLUDE } from '../runner/list.js';
import { applicationNameFor, processName } from '../../contract/application-name.js';
import type { CapSettings } from '../../contract/cap-options.js';
import { Admission } from '../pool/admission.js';
import { RunnerPool } from '../pool/pool.js';
import type { PoolTuning } from '../../contract/pool-sizing.js';
import { UsageError } from '../runner/errors.js';
import { withRetry } from '../runner/retry.js';
import { scanCorpus } from '../runner/scan.js';
import { openLocalDatabase, type LocalDatabase } from './database.js';
import { readLedger, readServerLimits } from '../../contract/ledger.js';
import { RunMonitor, runView, type RunView } from './monitor.js';
import { BudgetTooSmallError, localShardRequest, planLocalRun, runnersAllowed, type LocalPlan } from './plan.js';
import { isRunsOwn, runnerPod, type RunNames } from './run-names.js';
import { progressDisplay, type ProgressDisplay, type ProgressState } from './progress.js';
import { sumRunnerSummaries, type LocalOutcome, type LocalRunReport } from './report.js';
import { Supervisor, type SupervisorResult } from './supervisor.js';

/**
 * `midi-corpus local <dir>`: the cluster's flow on one machine.
 *
 *   database (embedded or --database-url) → migrate → budget → scan (COPY, shard numbers) → K × `run-shard` → summary
 *
 * The runners are the same `run-shard` processes a Kubernetes Indexed Job runs, with DATABASE_URL in their
 * environment (never on a command line, where `ps` would show it). Local mode itself holds one connection, its control
 * connection, for the scan, the progress counts and the pg_stat_activity samples; it counts in the budget.
 *
 * The budget is the server's cap, shared with whoever else uses the server: the run plans its runners beside what the
 * others hold when it starts, and each slot looks again before its next runner (plan.ts runnersAllowed); every runner
 * is admitted by the server ledger itself, so two runs, or a run beside the operator, never together pass the cap.
 */

export interface LocalOptions {
  dir: string;
  /** Corpus key; default: the directory's absolute path (unique on this machine, and says what it is). */
  corpus?: string;
  databaseUrl?: string;
  dataDir: string;
  port?: number;
  include?: string[];
  filesPerShard?: number;
  shards?: number;
  cpuMillisPerRunner: number;
  maxRunners?: number;
  tuning: PoolTuning;
  /** The cap this run plans for, and every runner (and its own control connection) is admitted against. */
  cap: CapSettings;
  maxFileBytes?: number;
  fileTimeoutMs?: number;
  splitOutput?: string;
  shardAttempts: number;
  retryFailed: boolean;
  tty: boolean;
}

/** Local mode's own connections while runners run: the control connection. */
const OWN_CONNECTIONS = 1;
/** Failures and skipped entries listed in the report (the counts are complete; the lists are for reading). */
const REPORT_LIST_LIMIT = 1000;

export interface LocalRunResult {
  report: LocalRunReport;
  /** How to look at the results afterwards (printed for a person; holds no secret). */
  lookAt: string[];
  exitCode: number;
}

export async function runLocal(options: LocalOptions, log: Logger, signal: AbortSignal): Promise<LocalRunResult> {
  const started = process.hrtime.bigint();
  const dir = path.resolve(options.dir);
  const corpus = options.corpus ?? dir;
  const logsDir = path.resolve(options.dataDir, 'logs', new Date().toISOString().replace(/[:.]/g, '-'));
  const db = await openLocalDatabase({
    databaseUrl: options.databaseUrl,
    dataDir: options.dataDir,
    port: options.port,
  });
  log.info(
    { database: db.description, embedded: db.embedded !== null, dataDir: db.embedded?.dataDir },
    'database ready',
  );
  const controlName = applicationNameFor({ role: 'local', corpus, pod: processName(), claim: OWN_CONNECTIONS });
  const names: RunNames = { controlName, runId: `local${process.pid}` };
  const control = new RunnerPool({
    connectionString: db.url,
    size: { max: OWN_CONNECTIONS, warm: OWN_CONNECTIONS },
    applicationName: controlName,
    admission: new Admission({
      connectionString: db.url,
      ledgerDatabase: options.cap.ledgerDatabase,
      holder: controlName,
      claim: OWN_CONNECTIONS,
      cap: options.cap,
      signal,
      log,
    }),
    statsIntervalMs: 0,
    log,
  });
  let progress: ProgressDisplay | undefined;
  try {
    await control.open();
    await control.use(migrate);
    const limits = await control.use(readServerLimits);
    const { cap } = options;
    if (cap.maxConnections !== undefined && cap.maxConnections > limits.maxConnections) {
      log.warn(
        { asked: cap.maxConnections, server: limits.maxConnections },
        "--max-connections is above the server's max_connections; using the server's",
      );
    }
    const maxConnections = Math.min(limits.maxConnections, cap.maxConnections ?? Number.POSITIVE_INFINITY);
    const reserved = cap.reserved ?? limits.reserved;
    // Read once the control connection is admitted, so it is the run's own and not one of the others.
    const start = runView(await control.use(readLedger), isRunsOwn(names));
    const plan = planOrUsageError({
      cpus: os.availableParallelism(),
      cpuMillisPerRunner: options.cpuMillisPerRunner,
      tuning: options.tuning,
      maxRunners: options.maxRunners,
      maxConnections,
      reserved,
      headroom: cap.headroom,
      ownConnections: OWN_CONNECTIONS,
      others: start.others,
    });
    logOthers(log, start, plan);
    const scan = await control.use((c) =>
      scanCorpus(c, {
        corpus,
        root: dir,
        include: options.include,
        shards:
          options.shards !== undefined
            ? { shards: options.shards }
            : options.filesPerShard !== undefined
              ? { filesPerShard: options.filesPerShard }
              : // As many as the slots would want: the run grows into them when others leave.
                (n) => localShardRequest(n, plan.slots),
      }),
    );
    const corpusId = (await control.use((c) => findCorpus(c, corpus)))!;
    const runners = Math.min(plan.runners, scan.shards);
    log.info(
      { ...scan, runners, slots: plan.slots, perRunner: plan.perRunner, budget: plan.budget, others: start.others },
      'scan recorded; starting runners',
    );

    progress = progressDisplay(log, { tty: options.tty });
    const outcome = await runRunners({
      options,
      progress,
      plan,
      db,
      control,
      corpus,
      corpusId,
      dir,
      scanShards: scan.shards,
      names,
      start,
      logsDir,
      log,
      signal,
    });
    const counts = await withRetry(() => control.use((c) => corpusCounts(c, corpusId)));
    // The bar's last frame shows the very counts the summary prints: the monitor's last sample may be a second old.
    progress.finish(progressState(counts, 0, outcome.monitor.current, plan.budget));
    const notAnalysed = await withRetry(() => control.use((c) => failures(c, corpusId, REPORT_LIST_LIMIT)));
    const status = judgeRun(outcome.result, counts, scan.shards, {
      listed: scan.files,
      dir,
      include: options.include ?? DEFAULT_INCLUDE,
    });
    if (status.outcome === 'empty') log.warn({ dir, include: options.include ?? DEFAULT_INCLUDE }, status.message!);
    const report: LocalRunReport = {
      corpus,
      outcome: status.outcome,
      message: status.message,
      files: counts,
      failures: notAnalysed,
      thisRun: {
        shards: scan.shards,
        shardsCompleted: outcome.result.completed.length,
        runners,
        peakRunners: outcome.peakRunners,
        retries: outcome.result.retries,
        ...sumRunnerSummaries(outcome.result.summaries),
      },
      connections: {
        budget: plan.budget,
        peak: outcome.monitor.peak,
        samples: outcome.monitor.samples,
        perRunner: plan.perRunner.max,
        maxConnections,
        reserved,
        headroom: cap.headroom,
        others: { atStart: start.others, ...outcome.monitor.others },
        foreign: { atStart: start.foreign, ...outcome.monitor.foreign, exact: outcome.monitor.exact },
      },
      durationSeconds: Number(process.hrtime.bigint() - started) / 1e9,
      database: db.description,
      logsDir,
    };
    return { report, lookAt: lookAtLines(db, corpus), exitCode: status.exitCode };
  } finally {
    // Restores the cursor when the run ended early (a no-op once finished).
    progress?.stop();
    await control.close().catch(() => {});
    await db
      .stop()
      .catch((e: unknown) => log.warn({ err: describeError(e) }, 'embedded Postgres did not stop cleanly'));
  }
}

/** Says what others hold when they change the plan, and when their count is only an upper bound. */
function logOthers(log: Logger, start: RunView, plan: LocalPlan): void {
  if (start.others === 0) return;
  const fields = {
    others: start.others,
    foreign: start.foreign,
    exact: start.exact,
    runners: plan.runners,
    slots: plan.slots,
  };
  if (plan.runners < plan.slots)
    log.info(fields, 'others hold connections on the server: starting fewer runners, more as they leave');
  if (!start.exact)
    log.info(
      fields,
      "other applications' connections are an upper bound: this role may not see every session's type (grant pg_monitor for an exact count)",
    );
}

function planOrUsageError(input: Parameters<typeof planLocalRun>[0]): LocalPlan {
  try {
    return planLocalRun(input);
  } catch (e) {
    if (e instanceof BudgetTooSmallError || e instanceof RangeError) throw new UsageError(e.message);
    throw e;
  }
}

interface RunnersContext {
  options: LocalOptions;
  /** Stopped by runLocal, once it has the counts the summary prints. */
  progress: ProgressDisplay;
  plan: LocalPlan;
  db: LocalDatabase;
  control: RunnerPool;
  corpus: string;
  corpusId: number;
  dir: string;
  scanShards: number;
  names: RunNames;
  /** What the run saw on the server before its runners. */
  start: RunView;
  logsDir: string;
  log: Logger;
  signal: AbortSignal;
}

async function runRunners(
  ctx: RunnersContext,
): Promise<{ result: SupervisorResult; monitor: RunMonitor; peakRunners: number }> {
  const { options, plan, log, progress } = ctx;
  let active = 0;
  let peakRunners = 0;
  const monitor = new RunMonitor(ctx.control, ctx.corpusId, {
    mine: isRunsOwn(ctx.names),
    start: ctx.start,
    onUpdate: () => {
      const c = monitor.counts;
      if (c) progress.update(progressState(c, active, monitor.current, plan.budget));
    },
  });
  mkdirSync(ctx.logsDir, { recursive: true });
  const podOf = (slot: number) => runnerPod(ctx.names.runId, slot);
  const supervisor = new Supervisor({
    shards: Array.from({ length: ctx.scanShards }, (_, i) => i),
    parallel: Math.min(plan.slots, ctx.scanShards),
    // Runners that would only wait in the server ledger are not started: a slot waits while others hold their room.
    runnersAllowed: () => runnersAllowed(plan, monitor.others.last),
    maxAttempts: options.shardAttempts,
    spawnRunner: (shard, slot, attempt) => spawnRunner(ctx, shard, podOf(slot), attempt),
    // A slot's next runner starts only once the last one's backends are gone: a closing backend still counts.
    slotReleased: (slot) => monitor.waitUntilGone(podOf(slot)),
    onActive: (n) => {
      active = n;
      peakRunners = Math.max(peakRunners, n);
    },
    log,
  });
  const onAbort = () => supervisor.stop(new TransientError('interrupted: run the same command again to continue'));
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  monitor.start();
  try {
    const result = await supervisor.run();
    return { result, monitor, peakRunners };
  } finally {
    ctx.signal.removeEventListener('abort', onAbort);
    await monitor.stop();
  }
}

function progressState(c: CorpusCounts, runners: number, connections: number, budget: number): ProgressState {
  return { settled: c.total - c.pending, total: c.total, ok: c.ok, failed: c.failed, runners, connections, budget };
}

/** The compiled CLI beside this module (dist/cli/main.js): runners are the very command a Job pod runs. */
const CLI_MAIN = fileURLToPath(new URL('../../cli/main.js', import.meta.url));

function spawnRunner(ctx: RunnersContext, shard: number, pod: string, attempt: number): ChildProcess {
  const { options } = ctx;
  const args = [
    CLI_MAIN,
    ...runShardArgs({
      corpus: ctx.corpus,
      root: ctx.dir,
      shard,
      cpuMillis: options.cpuMillisPerRunner,
      splitOutput: options.splitOutput && path.resolve(options.splitOutput),
      pool: options.tuning,
      cap: options.cap,
      maxFileBytes: options.maxFileBytes,
      fileTimeoutMs: options.fileTimeoutMs,
      retryFailed: options.retryFailed,
    }),
  ];
  // One log file per attempt: the runner's pino lines, for reading after a failure.
  const logFd = openSync(path.join(ctx.logsDir, `shard-${shard}-attempt-${attempt}.log`), 'a');
  const { JOB_COMPLETION_INDEX: _i, CPU_REQUEST_MILLIS: _c, MEMORY_LIMIT_BYTES: _m, ...env } = process.env;
  try {
    return spawn(process.execPath, args, {
      env: { ...env, DATABASE_URL: ctx.db.url, POD_NAME: pod },
      // The IPC channel is the runner's lifeline: it closes when this process dies, even by SIGKILL, and the runner
      // then shuts down as on SIGTERM (installShutdownHandlers). The runner sends one message on it, once the server
      // ledger admitted it (ADMITTED_MESSAGE): the supervisor's cue to start the next.
      stdio: ['ignore', 'pipe', logFd, 'ipc'],
    });
  } finally {
    closeSync(logFd);
  }
}

/** Whether the run finished its work, and the exit code that says so. */
function judgeRun(
  result: SupervisorResult,
  counts: CorpusCounts,
  shards: number,
  scan: { listed: number; dir: string; include: string[] },
): { outcome: LocalOutcome; message: string | null; exitCode: number } {
  const stopped = result.stoppedBecause;
  if (stopped) {
    const outcome = stopped instanceof TransientError ? 'interrupted' : 'failed';
    return { outcome, message: stopped.message, exitCode: exitCodeOf(errorKind(stopped)) };
  }
  // Nothing to do is not an error (exit 0), but it is worth a warning: it is usually a wrong directory or glob.
  if (scan.listed === 0)
    return {
      outcome: 'empty',
      message: `nothing to ingest: no file under ${scan.dir} matches ${scan.include.join(' ')} (see --include)`,
      exitCode: EXIT_OK,
    };
  if (result.gaveUp.length > 0 || result.completed.length < shards || counts.pending > 0) {
    const which = result.gaveUp.map((g) => `shard ${g.shard}: ${g.reason}`).join('; ');
    return {
      outcome: 'incomplete',
      message: `${counts.pending} file(s) still pending${which ? ` (${which})` : ''}; run the same command again to continue`,
      exitCode: EXIT_TEMPFAIL,
    };
  }
  return { outcome: 'complete', message: null, exitCode: EXIT_OK };
}

function lookAtLines(db: LocalDatabase, corpus: string): string[] {
  // `query` needs no psql (the project does not install it) and starts the embedded server for the query itself.
  const sql = '"SELECT * FROM midi.v_corpora"';
  const corpusFlag = `--corpus ${shellWord(corpus)}`;
  const where = db.embedded
    ? `--data-dir ${path.relative(process.cwd(), db.embedded.dataDir) || '.'}`
    : '--database-url "$DATABASE_URL"';
  // The last line points at the report: a page with every figure and failure is where most people want to go next.
  return [
    `npx midi-corpus query ${where} ${sql}`,
    `a report with charts (statuses, failures, keys, tempi, meters, instruments) as one HTML file:`,
    `  npx midi-corpus report ${where} ${corpusFlag}`,
  ];
}

/** A corpus key as one shell word (a local run's key is a path, which may hold spaces or quotes). */
function shellWord(s: string): string {
  return /^[\w./:@-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
