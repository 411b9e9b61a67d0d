/**
 * Groups per-file results into batches and writes each batch as one transaction, with a bounded number in flight.
 *
 * A batch is sent when it holds `maxFiles` results or when its oldest result has waited `maxDelayMs` (so a slow
 * trickle of files still commits promptly). At most `maxInFlight` batches are being written at once: the runner sets
 * it to its pool's max (no control query runs while files are parsed). When every slot is busy, results wait
 * in the buffer, and `waitForRoom()` tells the producer to stop parsing once two batches' worth are waiting:
 * a stalled database slows the runner down instead of filling its memory.
 */

export interface BatchWriterOptions<T> {
  maxFiles: number;
  maxDelayMs: number;
  maxInFlight: number;
  /** Writes one batch in one transaction; rejects if it could not (after its own retries). */
  write: (batch: T[]) => Promise<void>;
  /** Called after each committed batch. */
  onCommitted?: (batch: T[]) => void;
}

export class BatchWriter<T> {
  private buffer: T[] = [];
  private timer: NodeJS.Timeout | null = null;
  private inFlight = 0;
  private readonly writes = new Set<Promise<void>>();
  private roomWaiters: (() => void)[] = [];
  /** The first write that failed; once set, nothing more is sent. */
  failure: unknown = null;
  private abandoned = false;

  constructor(private readonly options: BatchWriterOptions<T>) {
    for (const k of ['maxFiles', 'maxInFlight'] as const) {
      if (!Number.isInteger(options[k]) || options[k] < 1)
        throw new RangeError(`${k} must be a whole number ≥ 1, got ${options[k]}`);
    }
  }

  /** Results buffered or being written. */
  get backlog(): number {
    return this.buffer.length + this.inFlight;
  }

  get batchesInFlight(): number {
    return this.inFlight;
  }

  add(item: T): void {
    if (this.abandoned || this.failure) return;
    this.buffer.push(item);
    if (this.buffer.length >= this.options.maxFiles) this.sendFull();
    else this.timer ??= setTimeout(() => this.sendDue(), this.options.maxDelayMs);
  }

  /**
   * Resolves while there is room: less than two full batches buffered (one waiting for a slot, one filling), so the
   * parse workers keep going while a batch is written; or once the writer has failed or been abandoned.
   */
  waitForRoom(): Promise<void> {
    if (this.hasRoom()) return Promise.resolve();
    return new Promise((resolve) => this.roomWaiters.push(resolve));
  }

  /** Sends everything buffered and waits for every write. Rejects with the first failure. */
  async drain(): Promise<void> {
    while (!this.failure && (this.buffer.length > 0 || this.inFlight > 0)) {
      this.sendDue();
      await Promise.race(this.writes);
    }
    if (this.failure) {
      await Promise.allSettled([...this.writes]);
      throw this.failure;
    }
  }

  /**
   * Shutdown: drops the buffered results (those files were not committed, so the next run analyses them again) and
   * waits for the batches already being written, which each commit or roll back as a whole.
   */
  async abandon(): Promise<void> {
    this.abandoned = true;
    this.clearTimer();
    this.buffer = [];
    this.wakeRoomWaiters();
    await Promise.allSettled([...this.writes]);
  }

  private hasRoom(): boolean {
    return this.abandoned || this.failure !== null || this.buffer.length < 2 * this.options.maxFiles;
  }

  /** Sends every full batch that has a free slot. */
  private sendFull(): void {
    while (this.canSend() && this.buffer.length >= this.options.maxFiles) this.send();
  }

  /** Timer fired or draining: send what there is, full batches first. */
  private sendDue(): void {
    this.clearTimer();
    while (this.canSend() && this.buffer.length > 0) this.send();
  }

  private canSend(): boolean {
    return !this.abandoned && this.failure === null && this.inFlight < this.options.maxInFlight;
  }

  private send(): void {
    const batch = this.buffer.splice(0, this.options.maxFiles);
    if (this.buffer.length === 0) this.clearTimer();
    this.inFlight++;
    const write = this.options
      .write(batch)
      .then(
        () => this.options.onCommitted?.(batch),
        (e: unknown) => {
          this.failure ??= e;
        },
      )
      .finally(() => {
        this.inFlight--;
        this.writes.delete(write);
        // A slot freed: what waited for it goes now (full batches at once; a partial one when its time came).
        this.sendFull();
        if (this.canSend() && this.buffer.length > 0)
          this.timer ??= setTimeout(() => this.sendDue(), this.options.maxDelayMs);
        if (this.hasRoom()) this.wakeRoomWaiters();
      });
    this.writes.add(write);
  }

  private wakeRoomWaiters(): void {
    for (const wake of this.roomWaiters.splice(0)) wake();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
