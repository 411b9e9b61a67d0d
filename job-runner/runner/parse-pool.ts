import { Worker } from 'node:worker_threads';
import type { ParseReply, ParseResult, ParseTask } from './protocol.js';

/**
 * The runner's parse workers: one worker thread per CPU of the request, each analysing one file at a time.
 *
 * Each worker is sent its next file before it has finished the current one (TASKS_PER_WORKER in all), so it goes
 * straight on to the next file instead of waiting for the main thread, which may be busy writing a batch, to read
 * its answer and send more: measured on 2 shared cores, that wait idled the worker about a quarter of the run.
 *
 * A hostile file must never stall or kill the shard, so every file runs under a deadline: a worker that is still busy
 * when it passes is terminated (a worker thread can be stopped mid-computation; a promise cannot) and a fresh one
 * takes its place. A worker that dies — an exception, running out of its heap limit — fails only the file it held;
 * the files queued behind it go to the new worker. A worker handles its files in the order sent, so the file it holds
 * is the oldest unanswered one, and that file's deadline starts when the one before it is answered (the first file's
 * when the worker says it is ready: a new worker's start-up is not the file's time).
 */

export interface ParsePoolOptions {
  workers: number;
  /** A file whose analysis takes longer than this is recorded as failed and its worker replaced. */
  fileTimeoutMs: number;
  /** The worker script: compiled JS. Defaults to parse-worker.js beside this module (dist/ at run time). */
  workerUrl?: URL;
  /** Heap limit of each worker, so one enormous file fails alone instead of taking the process down. */
  maxWorkerHeapMb?: number;
}

export type ParseJob = Omit<ParseTask, 'id'>;

interface Task {
  id: number;
  job: ParseJob;
  resolve: (r: ParseResult | null) => void;
  /** Known once the worker has read the file: kept with a time-limit or crash failure. */
  hashed: { sha256: string; size: number } | null;
}

interface Slot {
  worker: Worker;
  /** Sent to this worker and not answered yet, oldest (the one it is working on) first. */
  tasks: Task[];
  /** The deadline of tasks[0]. */
  timer: NodeJS.Timeout | null;
  /** Whether the worker has loaded and said so: until then no deadline runs. */
  ready: boolean;
}

export const DEFAULT_WORKER_HEAP_MB = 1024;

/** Files sent to a worker at once: the one it works on and the next. */
export const TASKS_PER_WORKER = 2;

export class ParsePool {
  private readonly slots: Slot[] = [];
  private readonly waiting: Task[] = [];
  private readonly workerUrl: URL;
  private nextId = 1;
  private closed = false;
  /** Workers replaced after a timeout or a crash, for the progress log. */
  replaced = 0;

  constructor(private readonly options: ParsePoolOptions) {
    if (!Number.isInteger(options.workers) || options.workers < 1)
      throw new RangeError(`workers must be a whole number ≥ 1, got ${options.workers}`);
    this.workerUrl = options.workerUrl ?? new URL('./parse-worker.js', import.meta.url);
    for (let i = 0; i < options.workers; i++) this.slots.push(this.spawn());
  }

  get size(): number {
    return this.slots.length;
  }

  /** Files being analysed or queued. */
  get pending(): number {
    return this.waiting.length + this.slots.reduce((n, s) => n + s.tasks.length, 0);
  }

  /**
   * Analyses one file. Never rejects: every failure is a ParseResult with a reason. Null when the pool was closed
   * before the file was done: the file was not analysed and must not be recorded.
   */
  parse(job: ParseJob): Promise<ParseResult | null> {
    if (this.closed) return Promise.resolve(null);
    return new Promise((resolve) => {
      this.waiting.push({ id: this.nextId++, job, resolve, hashed: null });
      this.dispatch();
    });
  }

  /** Stops every worker; files still queued or in progress resolve as null (not analysed). */
  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.waiting.splice(0)) w.resolve(null);
    await Promise.all(
      this.slots.map(async (slot) => {
        this.clearDeadline(slot);
        for (const task of slot.tasks.splice(0)) task.resolve(null);
        await slot.worker.terminate();
      }),
    );
  }

  private spawn(): Slot {
    const worker = new Worker(this.workerUrl, {
      resourceLimits: { maxOldGenerationSizeMb: this.options.maxWorkerHeapMb ?? DEFAULT_WORKER_HEAP_MB },
      stdout: false,
      stderr: false,
    });
    const slot: Slot = { worker, tasks: [], timer: null, ready: false };
    worker.on('message', (reply: ParseReply) => {
      if ('ready' in reply) {
        slot.ready = true;
        if (slot.tasks.length > 0) this.startDeadline(slot);
        return;
      }
      const task = slot.tasks.find((t) => t.id === reply.id);
      if (!task) return;
      if ('hashed' in reply) task.hashed = reply.hashed;
      else this.finish(slot, task, reply.result);
    });
    worker.on('error', (err) => this.replace(slot, `analysis crashed its worker: ${describeWorkerError(err)}`));
    worker.on('exit', (code) => this.replace(slot, `analysis worker exited unexpectedly (code ${code})`));
    // An idle worker must not keep a finished runner alive.
    worker.unref();
    return slot;
  }

  /** Tops every worker up to TASKS_PER_WORKER files, emptiest first, so files spread over idle workers. */
  private dispatch(): void {
    for (let depth = 0; depth < TASKS_PER_WORKER; depth++) {
      for (const slot of this.slots) {
        if (slot.tasks.length > depth || this.waiting.length === 0) continue;
        const task = this.waiting.shift()!;
        slot.tasks.push(task);
        if (slot.tasks.length === 1) {
          slot.worker.ref();
          if (slot.ready) this.startDeadline(slot);
        }
        slot.worker.postMessage({ ...task.job, id: task.id } satisfies ParseTask);
      }
    }
  }

  private finish(slot: Slot, task: Task, result: ParseResult): void {
    const index = slot.tasks.indexOf(task);
    slot.tasks.splice(index, 1);
    task.resolve(result);
    if (index === 0) {
      // The worker has gone on to its next file: that file's time starts now.
      this.clearDeadline(slot);
      if (slot.tasks.length > 0) this.startDeadline(slot);
      else slot.worker.unref();
    }
    this.dispatch();
  }

  private startDeadline(slot: Slot): void {
    const ms = this.options.fileTimeoutMs;
    slot.timer = setTimeout(() => this.replace(slot, `analysis took longer than ${ms} ms`), ms);
  }

  private clearDeadline(slot: Slot): void {
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = null;
  }

  /**
   * Fails the file the slot's worker was working on with `reason`, puts a new worker in the old one's place, and
   * sends the files queued behind it again, ahead of the rest.
   */
  private replace(slot: Slot, reason: string): void {
    if (this.closed) return;
    const index = this.slots.indexOf(slot);
    if (index < 0) return; // already replaced (a terminated worker also emits 'exit')
    this.clearDeadline(slot);
    const [held, ...queued] = slot.tasks.splice(0);
    for (const task of queued) task.hashed = null;
    this.waiting.unshift(...queued);
    slot.worker.removeAllListeners();
    // The old worker may still be computing; terminate() stops it even inside a tight loop.
    slot.worker.on('error', () => {});
    void slot.worker.terminate();
    this.replaced++;
    this.slots[index] = this.spawn();
    held?.resolve({ kind: 'aborted', reason, size: held.hashed?.size ?? null, sha256: held.hashed?.sha256 ?? null });
    this.dispatch();
  }
}

function describeWorkerError(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ERR_WORKER_OUT_OF_MEMORY') return 'it ran out of memory';
  return err.message;
}
