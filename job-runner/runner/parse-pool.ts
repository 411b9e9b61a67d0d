import { Worker } from 'node:worker_threads';
import type { ParseReply, ParseResult, ParseTask } from './protocol.js';

/**
 * The runner's parse workers: one worker thread per CPU of the request, each analysing one file at a time.
 *
 * A hostile file must never stall or kill the shard, so every file runs under a deadline: a worker that is still busy
 * when it passes is terminated (a worker thread can be stopped mid-computation; a promise cannot) and a fresh one
 * takes its place. A worker that dies — an exception, running out of its heap limit — fails only the file it held.
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

interface Slot {
  worker: Worker;
  busy: {
    id: number;
    resolve: (r: ParseResult | null) => void;
    timer: NodeJS.Timeout;
    /** Known once the worker has read the file: kept with a time-limit or crash failure. */
    hashed: { sha256: string; size: number } | null;
  } | null;
}

export const DEFAULT_WORKER_HEAP_MB = 1024;

export class ParsePool {
  private readonly slots: Slot[] = [];
  private readonly waiting: { job: ParseJob; resolve: (r: ParseResult | null) => void }[] = [];
  private readonly workerUrl: URL;
  private nextId = 1;
  private closed = false;
  /** Workers replaced after a timeout or a crash, for the progress log. */
  replaced = 0;

  constructor(private readonly options: ParsePoolOptions) {
    if (!Number.isInteger(options.workers) || options.workers < 1) throw new RangeError(`workers must be a whole number ≥ 1, got ${options.workers}`);
    this.workerUrl = options.workerUrl ?? new URL('./parse-worker.js', import.meta.url);
    for (let i = 0; i < options.workers; i++) this.slots.push(this.spawn());
  }

  get size(): number {
    return this.slots.length;
  }

  /** Files being analysed or queued. */
  get pending(): number {
    return this.waiting.length + this.slots.filter((s) => s.busy).length;
  }

  /**
   * Analyses one file. Never rejects: every failure is a ParseResult with a reason. Null when the pool was closed
   * before the file was done: the file was not analysed and must not be recorded.
   */
  parse(job: ParseJob): Promise<ParseResult | null> {
    if (this.closed) return Promise.resolve(null);
    return new Promise((resolve) => {
      this.waiting.push({ job, resolve });
      this.dispatch();
    });
  }

  /** Stops every worker; files still queued or in progress resolve as null (not analysed). */
  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.waiting.splice(0)) w.resolve(null);
    await Promise.all(this.slots.map(async (slot) => {
      const busy = slot.busy;
      slot.busy = null;
      if (busy) {
        clearTimeout(busy.timer);
        busy.resolve(null);
      }
      await slot.worker.terminate();
    }));
  }

  private spawn(): Slot {
    const worker = new Worker(this.workerUrl, {
      resourceLimits: { maxOldGenerationSizeMb: this.options.maxWorkerHeapMb ?? DEFAULT_WORKER_HEAP_MB },
      stdout: false,
      stderr: false,
    });
    const slot: Slot = { worker, busy: null };
    worker.on('message', (reply: ParseReply) => {
      if (slot.busy?.id !== reply.id) return;
      if ('hashed' in reply) slot.busy.hashed = reply.hashed;
      else this.finish(slot, reply.result);
    });
    worker.on('error', (err) => this.replace(slot, `analysis crashed its worker: ${describeWorkerError(err)}`));
    worker.on('exit', (code) => this.replace(slot, `analysis worker exited unexpectedly (code ${code})`));
    // An idle worker must not keep a finished runner alive.
    worker.unref();
    return slot;
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (slot.busy || this.waiting.length === 0) continue;
      const { job, resolve } = this.waiting.shift()!;
      const id = this.nextId++;
      const timer = setTimeout(() => this.replace(slot, `analysis took longer than ${this.options.fileTimeoutMs} ms`), this.options.fileTimeoutMs);
      slot.busy = { id, resolve, timer, hashed: null };
      slot.worker.ref();
      slot.worker.postMessage({ ...job, id } satisfies ParseTask);
    }
  }

  private finish(slot: Slot, result: ParseResult): void {
    const busy = slot.busy;
    if (!busy) return;
    clearTimeout(busy.timer);
    slot.busy = null;
    slot.worker.unref();
    busy.resolve(result);
    this.dispatch();
  }

  /** Fails the slot's file with `reason`, and puts a new worker in the old one's place. */
  private replace(slot: Slot, reason: string): void {
    if (this.closed) return;
    const index = this.slots.indexOf(slot);
    if (index < 0) return; // already replaced (a terminated worker also emits 'exit')
    const busy = slot.busy;
    slot.busy = null;
    if (busy) clearTimeout(busy.timer);
    slot.worker.removeAllListeners();
    // The old worker may still be computing; terminate() stops it even inside a tight loop.
    slot.worker.on('error', () => {});
    void slot.worker.terminate();
    this.replaced++;
    this.slots[index] = this.spawn();
    busy?.resolve({ kind: 'aborted', reason, size: busy.hashed?.size ?? null, sha256: busy.hashed?.sha256 ?? null });
    this.dispatch();
  }
}

function describeWorkerError(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ERR_WORKER_OUT_OF_MEMORY') return 'it ran out of memory';
  return err.message;
}
