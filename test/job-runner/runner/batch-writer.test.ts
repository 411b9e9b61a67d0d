import { afterEach, describe, expect, it, vi } from 'vitest';
import { BatchWriter } from '../../../job-runner/runner/batch-writer.js';
import { settled } from '../../support/wait.js';

/** A write function whose calls stay pending until the test settles them. */
function controlledWrites() {
  const calls: { batch: number[]; resolve: () => void; reject: (e: unknown) => void }[] = [];
  const write = (batch: number[]) => new Promise<void>((resolve, reject) => calls.push({ batch, resolve, reject }));
  return { calls, write };
}

describe('BatchWriter', () => {
  afterEach(() => vi.useRealTimers());

  it('sends a batch as soon as it is full', () => {
    const { calls, write } = controlledWrites();
    const w = new BatchWriter({ maxFiles: 3, maxDelayMs: 60_000, maxInFlight: 2, write });
    [1, 2, 3, 4].forEach((i) => w.add(i));
    expect(calls.map((c) => c.batch)).toEqual([[1, 2, 3]]);
  });

  it('never has more than maxInFlight batches being written, and sends the next when one commits', async () => {
    const { calls, write } = controlledWrites();
    const committed: number[][] = [];
    const w = new BatchWriter({
      maxFiles: 2,
      maxDelayMs: 60_000,
      maxInFlight: 2,
      write,
      onCommitted: (b) => committed.push(b),
    });
    for (let i = 1; i <= 7; i++) w.add(i);
    expect(calls.map((c) => c.batch)).toEqual([
      [1, 2],
      [3, 4],
    ]);
    expect(w.batchesInFlight).toBe(2);
    calls[0]!.resolve();
    await settled();
    expect(calls.map((c) => c.batch)).toEqual([
      [1, 2],
      [3, 4],
      [5, 6],
    ]);
    expect(committed).toEqual([[1, 2]]);
  });

  it('sends a partial batch once its oldest result has waited maxDelayMs', async () => {
    vi.useFakeTimers();
    const { calls, write } = controlledWrites();
    const w = new BatchWriter({ maxFiles: 50, maxDelayMs: 200, maxInFlight: 1, write });
    w.add(1);
    w.add(2);
    await vi.advanceTimersByTimeAsync(199);
    expect(calls).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls.map((c) => c.batch)).toEqual([[1, 2]]);
  });

  it('holds the producer back once two full batches wait for a slot', async () => {
    const { calls, write } = controlledWrites();
    const w = new BatchWriter({ maxFiles: 2, maxDelayMs: 60_000, maxInFlight: 1, write });
    [1, 2, 3, 4, 5].forEach((i) => w.add(i));
    let early = false;
    void w.waitForRoom().then(() => {
      early = true;
    });
    await settled();
    expect(early).toBe(true);
    w.add(6);
    let room = false;
    void w.waitForRoom().then(() => {
      room = true;
    });
    await settled();
    expect(room).toBe(false);
    calls[0]!.resolve();
    await settled();
    expect(room).toBe(true);
  });

  it('drain sends the rest and waits for every write', async () => {
    const seen: number[][] = [];
    const w = new BatchWriter<number>({
      maxFiles: 3,
      maxDelayMs: 60_000,
      maxInFlight: 1,
      write: async (b) => void seen.push(b),
    });
    [1, 2, 3, 4, 5].forEach((i) => w.add(i));
    await w.drain();
    expect(seen).toEqual([
      [1, 2, 3],
      [4, 5],
    ]);
    expect(w.backlog).toBe(0);
  });

  it('on shutdown drops what is buffered and lets the batch being written finish', async () => {
    const { calls, write } = controlledWrites();
    const committed: number[][] = [];
    const w = new BatchWriter({
      maxFiles: 2,
      maxDelayMs: 60_000,
      maxInFlight: 1,
      write,
      onCommitted: (b) => committed.push(b),
    });
    [1, 2, 3, 4, 5].forEach((i) => w.add(i));
    const done = w.abandon();
    calls[0]!.resolve();
    await done;
    expect(calls.map((c) => c.batch)).toEqual([[1, 2]]);
    expect(committed).toEqual([[1, 2]]);
  });

  it('stops at the first failed write and reports it from drain', async () => {
    const { calls, write } = controlledWrites();
    const w = new BatchWriter({ maxFiles: 1, maxDelayMs: 60_000, maxInFlight: 1, write });
    [1, 2, 3].forEach((i) => w.add(i));
    calls[0]!.reject(new Error('database gone'));
    await expect(w.drain()).rejects.toThrow('database gone');
    expect(calls).toHaveLength(1);
  });
});
