import { realClock, sleep, type Clock } from '../../common/clock.js';
import { inUseByOthers, readLedger, unclaimedBesides, type LedgerPicture } from '../../contract/ledger.js';
import { corpusCounts, type CorpusCounts } from '../db/store.js';
import type { RunnerPool } from '../pool/pool.js';

/**
 * What local mode watches while its runners work, all on its one control connection (which counts in the budget):
 * - the server's sessions, from pg_stat_activity every `sampleMs` (the server ledger's one query, contract/ledger.ts),
 *   the server's own view and not the runners' word for it: the connections this run holds, keeping the peak, and
 *   what everyone else holds, which the run's next runners must fit beside;
 * - the corpus's status counts every `countsMs`, for the progress display.
 * A failed sample (the database restarting) is skipped, not fatal: the runners deal with the outage themselves.
 */

/** One look at the server, from this run's side. */
export interface RunView {
  /** This run's connections: the reader (its control connection, which the ledger's query leaves out), its runners'. */
  own: number;
  /** What everyone else takes from the cap (inUseByOthers): other applications, other runs' and pods' claims. */
  others: number;
  /** Of `others`, the client sessions that claim nothing: other applications (its own runners' probes left out). */
  foreign: number;
  /** Every session's backend_type was visible (pg_read_all_stats): `foreign` is exact, not an upper bound. */
  exact: boolean;
}

/** `picture` as the run whose connections `mine` picks out sees it. The reader must be one of the run's own. */
export function runView(picture: LedgerPicture, mine: (applicationName: string) => boolean): RunView {
  let own = 1 + (picture.unclaimed - unclaimedBesides(picture, mine));
  for (const [name, holder] of picture.holders) if (mine(name)) own += holder.live;
  return {
    own,
    others: inUseByOthers(picture, mine),
    foreign: unclaimedBesides(picture, mine),
    exact: picture.exact,
  };
}

/** The last value seen and the most. */
export interface Seen {
  last: number;
  peak: number;
}

export interface RunMonitorOptions {
  /** Whether an application_name is this run's (run-names.ts isRunsOwn). */
  mine: (applicationName: string) => boolean;
  /** What the run saw before the monitor started: its figures count in the peaks. */
  start?: RunView;
  sampleMs?: number;
  countsMs?: number;
  onUpdate?: () => void;
  clock?: Clock;
}

export class RunMonitor {
  /** This run's connections. */
  peak = 0;
  current = 0;
  others: Seen;
  foreign: Seen;
  /** Whether every look saw every session's backend_type. */
  exact: boolean;
  counts: CorpusCounts | null = null;
  samples = 0;
  private readonly timers = new Set<unknown>();
  private stopped = false;
  private readonly clock: Clock;

  constructor(
    private readonly control: RunnerPool,
    private readonly corpusId: number,
    private readonly options: RunMonitorOptions,
  ) {
    this.clock = options.clock ?? realClock;
    const start = options.start;
    this.others = { last: start?.others ?? 0, peak: start?.others ?? 0 };
    this.foreign = { last: start?.foreign ?? 0, peak: start?.foreign ?? 0 };
    this.exact = start?.exact ?? true;
  }

  start(): void {
    this.loop(this.options.sampleMs ?? 100, () => this.sampleConnections());
    this.loop(this.options.countsMs ?? 1000, () => this.sampleCounts());
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) this.clock.clearTimeout(t);
    // One last look, so a short run still reports what it saw.
    await this.sampleConnections();
  }

  /** Resolves when no backend of the runner named by `podSuffix` is left (a slot is reused only then). */
  async waitUntilGone(podSuffix: string, timeoutMs = 10_000): Promise<void> {
    const deadline = this.clock.now() + timeoutMs;
    while (this.clock.now() < deadline) {
      const left = await this.control
        .use((c) =>
          c.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE '%' || $1`,
            [podSuffix],
          ),
        )
        .then(
          (r) => r.rows[0]!.n,
          () => 0,
        );
      if (left === 0) return;
      await sleep(this.clock, 20);
    }
  }

  /** setTimeout chains rather than setInterval: a slow query never piles up samples behind it. */
  private loop(everyMs: number, sample: () => Promise<void>): void {
    const tick = async () => {
      if (this.stopped) return;
      await sample();
      this.options.onUpdate?.();
      if (this.stopped) return;
      const timer = this.clock.setTimeout(() => {
        this.timers.delete(timer);
        void tick();
      }, everyMs);
      this.timers.add(timer);
    };
    void tick();
  }

  private async sampleConnections(): Promise<void> {
    let view: RunView;
    try {
      view = runView(await this.control.use(readLedger), this.options.mine);
    } catch {
      return; // The database is restarting; the next sample will tell.
    }
    this.current = view.own;
    this.peak = Math.max(this.peak, view.own);
    this.others = { last: view.others, peak: Math.max(this.others.peak, view.others) };
    this.foreign = { last: view.foreign, peak: Math.max(this.foreign.peak, view.foreign) };
    this.exact &&= view.exact;
    this.samples++;
  }

  private async sampleCounts(): Promise<void> {
    try {
      this.counts = await this.control.use((c) => corpusCounts(c, this.corpusId));
    } catch {
      // As above.
    }
  }
}
