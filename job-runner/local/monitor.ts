import { realClock, sleep, type Clock } from '../../common/clock.js';
import { corpusCounts, type CorpusCounts } from '../db/store.js';
import type { RunnerPool } from '../pool/pool.js';

/**
 * What local mode watches while its runners work, all on its one control connection (which counts in the budget):
 * - the connections this run holds, from pg_stat_activity every `sampleMs` — the server's own view, not the runners'
 *   word for it — keeping the peak;
 * - the corpus's status counts every `countsMs`, for the progress display.
 * A failed sample (the database restarting) is skipped, not fatal: the runners deal with the outage themselves.
 */

/** Every connection of the operator carries an application_name starting so (contract/application-name.ts). */
export const OUR_APPLICATION_PREFIX = 'mco ';

const OUR_BACKENDS_SQL = `SELECT count(*)::int AS n FROM pg_stat_activity
  WHERE datname = current_database() AND application_name LIKE '${OUR_APPLICATION_PREFIX}%'`;

export class RunMonitor {
  peak = 0;
  current = 0;
  counts: CorpusCounts | null = null;
  samples = 0;
  private readonly timers = new Set<unknown>();
  private stopped = false;
  private readonly clock: Clock;

  constructor(
    private readonly control: RunnerPool,
    private readonly corpusId: number,
    private readonly options: { sampleMs?: number; countsMs?: number; onUpdate?: () => void; clock?: Clock } = {},
  ) {
    this.clock = options.clock ?? realClock;
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
    try {
      const { rows } = await this.control.use((c) => c.query<{ n: number }>(OUR_BACKENDS_SQL));
      this.current = rows[0]!.n;
      this.peak = Math.max(this.peak, this.current);
      this.samples++;
    } catch {
      // The database is restarting; the next sample will tell.
    }
  }

  private async sampleCounts(): Promise<void> {
    try {
      this.counts = await this.control.use((c) => corpusCounts(c, this.corpusId));
    } catch {
      // As above.
    }
  }
}
