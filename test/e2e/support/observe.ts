/**
 * Watches one corpus through its run (polling every ~200 ms): the budget figures the controller wrote in its status,
 * the run Job's parallelism over time, and how many runner pods existed at once. The sampler in database.ts counts
 * the connections themselves; this says what the controller meant to allow.
 */
import type { BudgetStatus, MidiCorpusStatus } from '../../../controller/api/v1alpha1/midicorpus.js';
import type { TestCluster } from '../../cluster/cluster.js';
import { jobPods, readCorpus, readJob } from './operator.js';

export interface CorpusHistory {
  /** The last budget figures the status showed while the corpus was under way. */
  budget?: BudgetStatus;
  /** Every distinct run-Job parallelism seen, in order. */
  parallelism: number[];
  /** Most runner pods that existed at once without having exited (Pending, Running, Terminating). */
  peakLivePods: number;
  /** Statuses seen, one per change of phase. */
  phases: string[];
  /** The last status read. */
  last?: MidiCorpusStatus;
}

export class CorpusObserver {
  private stopped = false;
  private running?: Promise<void>;
  readonly history: CorpusHistory = { parallelism: [], peakLivePods: 0, phases: [] };

  constructor(
    private readonly cluster: TestCluster,
    private readonly namespace: string,
    private readonly name: string,
    private readonly runJob = `${name}-run`,
  ) {}

  start(): this {
    this.running = this.loop();
    return this;
  }

  async stop(): Promise<CorpusHistory> {
    this.stopped = true;
    await this.running;
    return this.history;
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      await this.observe().catch(() => {});
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  private async observe(): Promise<void> {
    const h = this.history;
    const status = (await readCorpus(this.cluster, this.namespace, this.name))?.status;
    if (status) {
      h.last = status;
      if (status.phase && h.phases.at(-1) !== status.phase) h.phases.push(status.phase);
      if (status.budget && (status.phase === 'Scanning' || status.phase === 'Running')) h.budget = status.budget;
    }
    const job = await readJob(this.cluster, this.namespace, this.runJob);
    const parallelism = job?.spec?.parallelism;
    if (parallelism !== undefined && h.parallelism.at(-1) !== parallelism) h.parallelism.push(parallelism);
    const live = (await jobPods(this.cluster, this.namespace, this.runJob)).filter(
      (p) => p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed',
    );
    h.peakLivePods = Math.max(h.peakLivePods, live.length);
  }
}
