/**
 * A keyed, rate-limited work queue, after client-go's workqueue: a key is in the queue at most once, a key being
 * processed is never handed out twice (if it is added meanwhile, it comes back once the worker is done), and failures
 * requeue it after an exponential per-key delay that success resets.
 */
import { backoffDelay } from '../../common/backoff.js';
import { realClock, type Clock } from '../../common/clock.js';

export interface WorkQueueOptions {
  /** First retry delay of a failing key. */
  baseDelayMs?: number;
  /** Longest retry delay. */
  maxDelayMs?: number;
  clock?: Clock;
}

export class WorkQueue {
  private readonly queue: string[] = [];
  /** Keys waiting in `queue` (for de-duplication). */
  private readonly queued = new Set<string>();
  /** Keys handed to a worker and not yet `done`. */
  private readonly processing = new Set<string>();
  /** Keys added while processing: re-queued on `done`. */
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  /** Pending delayed adds, by key: only the earliest is kept. */
  private readonly delayed = new Map<string, { at: number; handle: unknown }>();
  private readonly waiters: Array<(key: string | undefined) => void> = [];
  private shuttingDown = false;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly clock: Clock;

  constructor(options: WorkQueueOptions = {}) {
    this.baseDelayMs = options.baseDelayMs ?? 500;
    this.maxDelayMs = options.maxDelayMs ?? 300_000;
    this.clock = options.clock ?? realClock;
  }

  /** Queues the key now (no-op if already queued). */
  add(key: string): void {
    if (this.shuttingDown) return;
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    const waiter = this.waiters.shift();
    if (waiter) {
      this.processing.add(key);
      waiter(key);
      return;
    }
    this.queued.add(key);
    this.queue.push(key);
  }

  /** Queues the key after `ms` (an earlier pending add wins). */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (ms <= 0) return this.add(key);
    const at = this.clock.now() + ms;
    const pending = this.delayed.get(key);
    if (pending && pending.at <= at) return;
    if (pending) this.clock.clearTimeout(pending.handle);
    const handle = this.clock.setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, ms);
    this.delayed.set(key, { at, handle });
  }

  /** Queues the key after its backoff delay, and lengthens the next one. Returns the delay used. */
  addRateLimited(key: string): number {
    const attempt = this.failures.get(key) ?? 0;
    this.failures.set(key, attempt + 1);
    const delay = backoffDelay(attempt, { baseMs: this.baseDelayMs, maxMs: this.maxDelayMs });
    this.addAfter(key, delay);
    return delay;
  }

  /** Resets the key's backoff (after a successful reconcile). */
  forget(key: string): void {
    this.failures.delete(key);
  }

  /** Failures recorded for the key since it last succeeded. */
  retries(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** The next key to process; undefined once the queue is shut down. Every key handed out must be passed to `done`. */
  get(): Promise<string | undefined> {
    const key = this.queue.shift();
    if (key !== undefined) {
      this.queued.delete(key);
      this.processing.add(key);
      return Promise.resolve(key);
    }
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.delete(key)) this.add(key);
  }

  get length(): number {
    return this.queue.length;
  }

  /** Stops handing out keys: waiting `get`s resolve undefined, delayed adds are dropped. */
  shutDown(): void {
    this.shuttingDown = true;
    for (const { handle } of this.delayed.values()) this.clock.clearTimeout(handle);
    this.delayed.clear();
    this.queue.length = 0;
    this.queued.clear();
    for (const waiter of this.waiters.splice(0)) waiter(undefined);
  }
}
