import type { ChildProcess } from 'node:child_process';
import { backoffDelay, type BackoffPolicy } from '../../common/backoff.js';
import { realClock, sleep, type Clock } from '../../common/clock.js';
import type { Logger } from '../../common/log.js';
import { PermanentError, type TransientError } from '../../contract/error-kinds.js';
import { EXIT_OK, EXIT_USAGE } from '../../contract/exit-codes.js';
import { isAdmittedMessage } from '../../contract/run-shard-command.js';
import type { ShardSummary } from '../runner/run-shard.js';

/**
 * Runs runner processes over a list of shards, up to a number at a time, the way a Kubernetes Indexed Job with
 * `parallelism` does: each exit is judged by its code (contract/exit-codes.ts) — 0 done, 64 the run is misconfigured
 * (stop everything: every other shard would fail the same way), anything else (75, a crash, a kill) run the shard
 * again after a backoff, up to a limit. As the controller patches a Job's parallelism when budgets move, fewer run
 * while runnersAllowed says so: a running runner is never stopped for it, its slot just waits before its next one.
 */

export interface RunnerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export type AfterExit =
  | { action: 'done' }
  | { action: 'retry'; delayMs: number }
  | { action: 'fail-run'; reason: string }
  | { action: 'give-up'; reason: string };

/** A shard's runner again after 1 s, 2 s, 4 s … up to 15 s: one supervisor, nothing to spread out, so no jitter. */
export const RUNNER_RETRY_BACKOFF: BackoffPolicy = { baseMs: 1_000, maxMs: 15_000 };

/** What to do after a runner of a shard exits on its `attempt`-th try (1-based). Pure. */
export function afterRunnerExit(exit: RunnerExit, attempt: number, maxAttempts: number): AfterExit {
  if (exit.code === EXIT_OK) return { action: 'done' };
  const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
  if (exit.code === EXIT_USAGE)
    return { action: 'fail-run', reason: `a runner ${how} (bad arguments or configuration): retrying cannot help` };
  if (attempt >= maxAttempts) return { action: 'give-up', reason: `runner ${how} on each of ${attempt} attempts` };
  return { action: 'retry', delayMs: backoffDelay(attempt - 1, RUNNER_RETRY_BACKOFF) };
}

/** How often a slot waiting for its turn asks runnersAllowed again, besides whenever a runner exits. */
export const ROOM_RECHECK_MS = 250;

export interface SupervisorOptions {
  shards: number[];
  /** Runner processes at once, at most: the slots. */
  parallel: number;
  /**
   * Runner processes that may run at once now (local mode: those that fit beside what others hold on the server), read
   * before each start. A slot past it waits; one runner may always run, so the run never stalls. Default: `parallel`.
   * Nor does a slot start a runner while one already running has not said it was admitted (ADMITTED_MESSAGE): until
   * then it may be waiting for room, probing the ledger over a connection no claim counts, and a second would probe
   * beside it.
   */
  runnersAllowed?: () => number;
  maxAttempts: number;
  /** Starts the runner of `shard` in `slot` (0..parallel-1; a slot is reused only after its runner's connections closed). */
  spawnRunner: (shard: number, slot: number, attempt: number) => ChildProcess;
  /** Resolves once the connections of the runner that ran in `slot` are gone from the server. */
  slotReleased?: (slot: number) => Promise<void>;
  log: Logger;
  /** Called whenever the number of running runners changes. */
  onActive?: (active: number) => void;
  /** Times the backoffs. */
  clock?: Clock;
}

export interface SupervisorResult {
  completed: number[];
  gaveUp: { shard: number; reason: string }[];
  /**
   * Set when the run stopped early: a PermanentError when a runner said the run is misconfigured, a TransientError
   * when the run was interrupted (the same command continues it).
   */
  stoppedBecause: PermanentError | TransientError | null;
  /** The --json summaries the runners printed on their last attempt. */
  summaries: ShardSummary[];
  /** Runner exits that were retried. */
  retries: number;
}

export class Supervisor {
  private readonly queue: { shard: number; attempt: number; notBefore: number }[];
  private readonly running = new Map<number, ChildProcess>();
  private readonly result: SupervisorResult = {
    completed: [],
    gaveUp: [],
    stoppedBecause: null,
    summaries: [],
    retries: 0,
  };
  /** Aborted by stop(): also wakes the slots waiting out a backoff. */
  private readonly stopped = new AbortController();
  /** Slots waiting for their turn, woken by every runner's exit and admission. */
  private readonly waitingForTurn = new Set<() => void>();
  /** Slots whose runner said the server ledger admitted it. */
  private readonly admitted = new Set<number>();
  private readonly clock: Clock;

  constructor(private readonly options: SupervisorOptions) {
    this.queue = options.shards.map((shard) => ({ shard, attempt: 1, notBefore: 0 }));
    this.clock = options.clock ?? realClock;
  }

  /** Runs every shard; resolves when all are done, given up on, or the run was stopped. */
  async run(): Promise<SupervisorResult> {
    const slots = Array.from({ length: Math.max(1, this.options.parallel) }, (_, slot) => this.slotLoop(slot));
    await Promise.all(slots);
    return this.result;
  }

  /** Stops launching and asks every running runner to finish up (SIGTERM: they exit 75 after their batch). */
  stop(reason: PermanentError | TransientError): void {
    if (this.stopping) return;
    this.result.stoppedBecause ??= reason;
    this.stopped.abort();
    for (const child of this.running.values()) child.kill('SIGTERM');
  }

  private get stopping(): boolean {
    return this.stopped.signal.aborted;
  }

  private async slotLoop(slot: number): Promise<void> {
    for (;;) {
      if (this.stopping) return;
      const next = this.takeNext();
      if (next === null) return;
      const wait = next.notBefore - this.clock.now();
      if (wait > 0) await sleep(this.clock, wait, this.stopped.signal);
      // Checked last, with no wait between the check and the start: two slots never both take the one place left.
      while (!this.stopping && !this.hasTurn()) await this.turnMayHaveCome();
      if (this.stopping) return;
      const exit = await this.runOnce(next.shard, slot, next.attempt);
      await this.options.slotReleased?.(slot);
      this.judge(next.shard, next.attempt, exit);
    }
  }

  private hasTurn(): boolean {
    if (this.running.size === 0) return true;
    for (const slot of this.running.keys()) if (!this.admitted.has(slot)) return false;
    return this.running.size < (this.options.runnersAllowed?.() ?? this.options.parallel);
  }

  private wakeWaitingForTurn(): void {
    for (const wake of [...this.waitingForTurn]) wake();
  }

  /**
   * Resolves when a runner exits or is admitted, the run stops, or ROOM_RECHECK_MS have passed (what others hold may
   * have changed).
   */
  private turnMayHaveCome(): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        this.waitingForTurn.delete(wake);
        this.clock.clearTimeout(timer);
        this.stopped.signal.removeEventListener('abort', wake);
        resolve();
      };
      const timer = this.clock.setTimeout(wake, ROOM_RECHECK_MS);
      this.waitingForTurn.add(wake);
      this.stopped.signal.addEventListener('abort', wake, { once: true });
    });
  }

  private takeNext(): { shard: number; attempt: number; notBefore: number } | null {
    if (this.queue.length === 0) return null;
    // The one that may start soonest: fresh shards before ones waiting out a backoff.
    this.queue.sort((a, b) => a.notBefore - b.notBefore);
    return this.queue.shift()!;
  }

  private runOnce(shard: number, slot: number, attempt: number): Promise<RunnerExit> {
    const child = this.options.spawnRunner(shard, slot, attempt);
    this.running.set(slot, child);
    this.admitted.delete(slot);
    this.options.onActive?.(this.running.size);
    child.on('message', (message) => {
      if (!isAdmittedMessage(message)) return;
      this.admitted.add(slot);
      this.wakeWaitingForTurn();
    });
    let stdout = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    return new Promise((resolve) => {
      child.once('error', (err) => {
        this.options.log.error({ shard, err: err.message }, 'runner could not be started');
      });
      child.once('close', (code, signal) => {
        this.running.delete(slot);
        this.admitted.delete(slot);
        this.options.onActive?.(this.running.size);
        this.wakeWaitingForTurn();
        const summary = lastJsonLine(stdout);
        if (code === EXIT_OK && summary) this.result.summaries.push(summary as ShardSummary);
        resolve({ code, signal });
      });
    });
  }

  private judge(shard: number, attempt: number, exit: RunnerExit): void {
    const decision = afterRunnerExit(exit, attempt, this.options.maxAttempts);
    switch (decision.action) {
      case 'done':
        this.result.completed.push(shard);
        return;
      case 'retry':
        if (this.stopping) return;
        this.result.retries++;
        this.options.log.warn(
          { shard, attempt, exitCode: exit.code, signal: exit.signal, retryInMs: decision.delayMs },
          'runner did not finish its shard; it will run again',
        );
        this.queue.push({ shard, attempt: attempt + 1, notBefore: this.clock.now() + decision.delayMs });
        return;
      case 'give-up':
        this.options.log.error({ shard, reason: decision.reason }, 'giving up on a shard');
        this.result.gaveUp.push({ shard, reason: decision.reason });
        return;
      case 'fail-run':
        this.options.log.error({ shard, reason: decision.reason }, 'stopping the run');
        this.stop(new PermanentError(decision.reason));
    }
  }
}

function lastJsonLine(text: string): unknown {
  const line = text.trim().split('\n').pop();
  if (!line) return null;
  try {
    return JSON.parse(line);
  } catch {
    return null;
  }
}
