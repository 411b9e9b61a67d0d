import type { Clock } from '../../common/clock.js';

/** A clock that moves only when told to: timers fire, in order, as `advance` passes their time. */
export class ManualClock implements Clock {
  private timers: Array<{ at: number; fn: () => void; id: number; everyMs?: number }> = [];
  private nextId = 1;
  /** Every delay asked for, in order (an interval's once): what tests assert on. */
  readonly delays: number[] = [];

  /** It shows `time` (milliseconds since the epoch) until advanced. */
  constructor(private time = 0) {}

  now(): number {
    return this.time;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    return this.add(fn, ms);
  }

  clearTimeout(handle: unknown): void {
    this.timers = this.timers.filter((t) => t.id !== handle);
  }

  setInterval(fn: () => void, ms: number): unknown {
    return this.add(fn, ms, ms);
  }

  clearInterval(handle: unknown): void {
    this.clearTimeout(handle);
  }

  advance(ms: number): void {
    const end = this.time + ms;
    while (true) {
      const due = this.timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!due) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.time = due.at;
      if (due.everyMs !== undefined) this.timers.push({ ...due, at: due.at + due.everyMs });
      due.fn();
    }
    this.time = end;
  }

  get pending(): number {
    return this.timers.length;
  }

  private add(fn: () => void, ms: number, everyMs?: number): number {
    const id = this.nextId++;
    this.delays.push(ms);
    this.timers.push({ at: this.time + ms, fn, id, everyMs });
    return id;
  }
}
