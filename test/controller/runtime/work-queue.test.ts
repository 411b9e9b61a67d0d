import { describe, expect, it } from 'vitest';
import { WorkQueue } from '../../../controller/runtime/work-queue.js';
import { ManualClock } from '../../support/manual-clock.js';

describe('WorkQueue', () => {
  it('hands out each key once however often it is added', async () => {
    const q = new WorkQueue();
    q.add('a');
    q.add('b');
    q.add('a');
    expect(q.length).toBe(2);
    expect(await q.get()).toBe('a');
    expect(await q.get()).toBe('b');
    expect(q.length).toBe(0);
  });

  it('never hands out a key that is being processed; an add meanwhile brings it back after done', async () => {
    const q = new WorkQueue();
    q.add('a');
    const key = await q.get();
    q.add('a');
    expect(q.length).toBe(0);
    q.done(key!);
    expect(q.length).toBe(1);
    expect(await q.get()).toBe('a');
  });

  it('wakes a waiting worker when a key arrives', async () => {
    const q = new WorkQueue();
    const next = q.get();
    q.add('x');
    expect(await next).toBe('x');
  });

  it('backs off a failing key exponentially, capped, and resets on success', () => {
    const clock = new ManualClock();
    const q = new WorkQueue({ baseDelayMs: 1000, maxDelayMs: 8000, clock });
    const delays = [1, 2, 3, 4, 5].map(() => q.addRateLimited('a'));
    expect(delays).toEqual([1000, 2000, 4000, 8000, 8000]);
    expect(q.retries('a')).toBe(5);
    q.forget('a');
    expect(q.addRateLimited('a')).toBe(1000);
  });

  it("keeps each key's backoff apart", () => {
    const q = new WorkQueue({ baseDelayMs: 100, clock: new ManualClock() });
    q.addRateLimited('a');
    q.addRateLimited('a');
    expect(q.addRateLimited('b')).toBe(100);
  });

  it('adds a delayed key when its time comes, and keeps only the earliest of two delays', async () => {
    const clock = new ManualClock();
    const q = new WorkQueue({ clock });
    q.addAfter('a', 5000);
    q.addAfter('a', 1000);
    q.addAfter('a', 3000);
    expect(clock.pending).toBe(1);
    clock.advance(999);
    expect(q.length).toBe(0);
    clock.advance(1);
    expect(q.length).toBe(1);
    expect(await q.get()).toBe('a');
  });

  it('shuts down: waiting workers get undefined, delayed keys are dropped, adds are ignored', async () => {
    const clock = new ManualClock();
    const q = new WorkQueue({ clock });
    const waiting = q.get();
    q.shutDown();
    expect(await waiting).toBeUndefined();
    q.addAfter('a', 10);
    q.add('b');
    clock.advance(100);
    expect(await q.get()).toBeUndefined();
    expect(clock.pending).toBe(0);
  });
});
