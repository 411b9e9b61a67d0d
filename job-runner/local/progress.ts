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
  stop(): void;
}

/** A bar on a terminal; elsewhere (CI, a pipe, a log collector) a log line every `logEveryMs`. */
export function progressDisplay(
  log: Logger,
  options: { tty: boolean; logEveryMs?: number; clock?: Clock },
): ProgressDisplay {
  return options.tty ? new BarDisplay() : new LogDisplay(log, options.logEveryMs ?? 5_000, options.clock ?? realClock);
}

class BarDisplay implements ProgressDisplay {
  private readonly bar = new cliProgress.SingleBar(
    {
      format:
        '{bar} {percentage}% | {value}/{total} files | {ok} ok, {failed} failed | {runners} runner(s) | {connections}/{budget} connections | {duration_formatted}',
      hideCursor: true,
      stream: process.stderr,
    },
    cliProgress.Presets.shades_classic,
  );
  private started = false;

  update(s: ProgressState): void {
    const payload = { ok: s.ok, failed: s.failed, runners: s.runners, connections: s.connections, budget: s.budget };
    if (!this.started) {
      this.bar.start(s.total, s.settled, payload);
      this.started = true;
    } else {
      this.bar.setTotal(s.total);
      this.bar.update(s.settled, payload);
    }
  }

  stop(): void {
    if (this.started) this.bar.stop();
  }
}

class LogDisplay implements ProgressDisplay {
  private last = Number.NEGATIVE_INFINITY;
  private latest: ProgressState | null = null;

  constructor(
    private readonly log: Logger,
    private readonly everyMs: number,
    private readonly clock: Clock,
  ) {}

  update(s: ProgressState): void {
    this.latest = s;
    const now = this.clock.now();
    if (now - this.last < this.everyMs) return;
    this.last = now;
    this.log.info({ ...s }, 'progress');
  }

  stop(): void {
    if (this.latest) this.log.info({ ...this.latest }, 'progress');
  }
}
