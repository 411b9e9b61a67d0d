import cliProgress from 'cli-progress';
import { realClock, type Clock } from '../../common/clock.js';
import type { Logger } from '../../common/log.js';

/** What the progress display shows: files settled out of the total, and the run's connections against its budget. */
export interface ProgressState {
  settled: number;
  total: number;
  ok: number;
  failed: number;
  runners: number;
  connections: number;
  budget: number;
}

export interface ProgressDisplay {
  update(state: ProgressState): void;
  /** The last state, shown whatever the throttle says, then stop: the counts the summary prints below it. */
  finish(state: ProgressState): void;
  /** Stops without a new state (a run that ended early); a no-op once stopped. */
  stop(): void;
}

/** How fast this run settles files, and how long the rest would take at that pace. */
export interface Pace {
  /** Files settled per second since the display started (0 until a file settled). */
  filesPerSecond: number;
  /** Seconds until every file is settled at that rate; 0 when none is left, null while there is no rate yet. */
  secondsLeft: number | null;
}

/**
 * The pace from where the run started (`first`, at `startedAt`) to `now`. Pure.
 *
 * An average over the whole run, not over the last few samples: runners commit results in batches, so the counts move
 * in steps, and a short window would swing between zero and a burst. Files settled before this run (an earlier run's,
 * counted in `settled` from the start) are not part of the rate.
 */
export function paceOf(first: ProgressState, startedAt: number, latest: ProgressState, now: number): Pace {
  const seconds = (now - startedAt) / 1000;
  const done = latest.settled - first.settled;
  const left = Math.max(0, latest.total - latest.settled);
  const filesPerSecond = seconds > 0 && done > 0 ? done / seconds : 0;
  return { filesPerSecond, secondsLeft: left === 0 ? 0 : filesPerSecond > 0 ? left / filesPerSecond : null };
}

/** `12.5`, `480`, `0.3`: three significant figures at most, never an exponent. */
export function formatRate(filesPerSecond: number): string {
  if (filesPerSecond >= 100) return String(Math.round(filesPerSecond));
  if (filesPerSecond >= 10) return filesPerSecond.toFixed(1);
  return filesPerSecond.toFixed(filesPerSecond === 0 ? 0 : 2);
}

/** `45s`, `3m 05s`, `2h 10m`; `?` while unknown. */
export function formatDuration(seconds: number | null): string {
  if (seconds === null) return '?';
  const s = Math.ceil(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** A bar on a terminal; elsewhere (CI, a pipe, a log collector) a log line every `logEveryMs`. */
export function progressDisplay(
  log: Logger,
  options: { tty: boolean; logEveryMs?: number; clock?: Clock; stream?: NodeJS.WritableStream },
): ProgressDisplay {
  const clock = options.clock ?? realClock;
  return options.tty
    ? new BarDisplay(options.stream ?? process.stderr, clock)
    : new LogDisplay(log, options.logEveryMs ?? 5_000, clock);
}

/** Measures the pace from the first state it is given. */
class PaceMeter {
  private first: { state: ProgressState; at: number } | null = null;

  constructor(private readonly clock: Clock) {}

  pace(s: ProgressState): Pace & { elapsedSeconds: number } {
    const now = this.clock.now();
    this.first ??= { state: s, at: now };
    return { ...paceOf(this.first.state, this.first.at, s, now), elapsedSeconds: (now - this.first.at) / 1000 };
  }
}

class BarDisplay implements ProgressDisplay {
  private readonly bar: cliProgress.SingleBar;
  private readonly meter: PaceMeter;
  private started = false;

  constructor(stream: NodeJS.WritableStream, clock: Clock) {
    this.meter = new PaceMeter(clock);
    this.bar = new cliProgress.SingleBar(
      {
        // What matters first: cli-progress cuts the line at the terminal's width (80 columns: after the time left).
        format:
          '{bar} {percentage}% | {value}/{total} files: {ok} ok, {failed} failed | {rate} files/s, {left} left | {runners} runner(s), {connections}/{budget} connections | {elapsed}',
        barsize: 20,
        hideCursor: true,
        stream,
      },
      cliProgress.Presets.shades_classic,
    );
  }

  update(s: ProgressState): void {
    const pace = this.meter.pace(s);
    const payload = {
      ok: s.ok,
      failed: s.failed,
      runners: s.runners,
      connections: s.connections,
      budget: s.budget,
      rate: formatRate(pace.filesPerSecond),
      left: formatDuration(pace.secondsLeft),
      elapsed: formatDuration(pace.elapsedSeconds),
    };
    if (!this.started) {
      this.bar.start(s.total, s.settled, payload);
      this.started = true;
    } else {
      this.bar.setTotal(s.total);
      this.bar.update(s.settled, payload);
    }
  }

  finish(s: ProgressState): void {
    this.update(s);
    this.stop();
  }

  stop(): void {
    // cli-progress draws the bar's latest values once more as it stops: the last frame is the last state.
    if (this.started) this.bar.stop();
    this.started = false;
  }
}

class LogDisplay implements ProgressDisplay {
  private last = Number.NEGATIVE_INFINITY;
  private latest: ProgressState | null = null;
  private readonly meter: PaceMeter;

  constructor(
    private readonly log: Logger,
    private readonly everyMs: number,
    private readonly clock: Clock,
  ) {
    this.meter = new PaceMeter(clock);
  }

  update(s: ProgressState): void {
    this.latest = s;
    const now = this.clock.now();
    if (now - this.last < this.everyMs) return;
    this.last = now;
    this.write(s);
  }

  finish(s: ProgressState): void {
    this.latest = s;
    this.stop();
  }

  stop(): void {
    if (this.latest) this.write(this.latest);
    this.latest = null;
  }

  private write(s: ProgressState): void {
    const { filesPerSecond, secondsLeft } = this.meter.pace(s);
    const left = secondsLeft === null ? null : Math.ceil(secondsLeft);
    this.log.info({ ...s, filesPerSecond: Number(filesPerSecond.toFixed(2)), secondsLeft: left }, 'progress');
  }
}
