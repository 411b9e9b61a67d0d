/**
 * Prometheus metrics of the controller, in a registry of its own (no global state, so tests can make several).
 * Names start with midi_corpus_, except the process and Node.js metrics, which keep prom-client's standard names
 * (process_cpu_seconds_total, nodejs_heap_size_used_bytes, ...) so that the dashboards and alerts written for every
 * other Node.js service work here too. Labels never carry a URL or a secret (the budget label is the hashed key).
 *
 * Per-corpus series (midi_corpus_corpus_*) are the corpus's status as the leader last wrote it, the way
 * kube-state-metrics exports a Job's: labelled namespace and midicorpus, refreshed after every reconcile pass, and
 * removed when the corpus is gone, so a deleted corpus leaves no series behind. Only the leader records them (only
 * it runs the work loop), so two replicas never export two copies.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { V1Pod } from '@kubernetes/client-node';
import type { BudgetPlan } from './budget/connection-budget.js';
import { LABEL_ROLE } from './plan/names.js';
import { ConditionType, isFinalPhase, PHASES } from './api/v1alpha1/conditions.js';
import type { MidiCorpus } from './api/v1alpha1/midicorpus.js';
import { corpusKey } from '../contract/corpus-key.js';

/** The labels of every per-corpus series. */
type CorpusLabels = { namespace: string; midicorpus: string };

/** What the counters of one corpus were last advanced to, so the next pass adds only the difference. */
interface CounterMark {
  uid: string | undefined;
  labels: CorpusLabels;
  processed: number;
  failed: number;
}

export class ControllerMetrics {
  readonly registry = new Registry();
  readonly reconciles = new Counter({
    name: 'midi_corpus_reconciles_total',
    help: 'Reconcile passes, by result (success, requeue, conflict, error).',
    labelNames: ['result'],
    registers: [this.registry],
  });
  readonly errors = new Counter({
    name: 'midi_corpus_reconcile_errors_total',
    help: 'Reconcile passes that failed and were retried with backoff.',
    registers: [this.registry],
  });
  readonly duration = new Histogram({
    name: 'midi_corpus_reconcile_duration_seconds',
    help: 'Time of one reconcile pass.',
    buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [this.registry],
  });
  readonly budget = new Gauge({
    name: 'midi_corpus_budget_connections',
    help: "Connection budget of each database (budget = hashed key): limit, allowance for runners, connections that pods may hold now (in_use), and connections of the server's other consumers subtracted from the allowance (foreign).",
    labelNames: ['budget', 'kind'],
    registers: [this.registry],
  });
  readonly pods = new Gauge({
    name: 'midi_corpus_pods',
    help: "Pods of the operator's Jobs, by role and phase (Terminating counted apart).",
    labelNames: ['role', 'phase'],
    registers: [this.registry],
  });
  readonly corpora = new Gauge({
    name: 'midi_corpus_corpora',
    help: 'MidiCorpus objects, by phase.',
    labelNames: ['phase'],
    registers: [this.registry],
  });
  readonly watchRestarts = new Counter({
    name: 'midi_corpus_watch_restarts_total',
    help: 'Informer restarts after a watch or list error.',
    labelNames: ['informer'],
    registers: [this.registry],
  });
  readonly leader = new Gauge({
    name: 'midi_corpus_leader',
    help: '1 while this replica leads.',
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({
    name: 'midi_corpus_queue_depth',
    help: 'Keys waiting in the work queue.',
    registers: [this.registry],
  });

  // Per corpus, from its status.
  readonly corpusPhase = new Gauge({
    name: 'midi_corpus_corpus_phase',
    help: 'Phase of each MidiCorpus: one series per phase, 1 for the current one and 0 for the others.',
    labelNames: ['namespace', 'midicorpus', 'phase'],
    registers: [this.registry],
  });
  readonly corpusFiles = new Gauge({
    name: 'midi_corpus_corpus_files',
    help: 'Files of each MidiCorpus (status.files): found by the scan (total), recorded ok, failed or skipped (processed), failed.',
    labelNames: ['namespace', 'midicorpus', 'kind'],
    registers: [this.registry],
  });
  readonly corpusFilesProcessed = new Counter({
    name: 'midi_corpus_corpus_files_processed_total',
    help: 'Files of each MidiCorpus recorded (ok, failed or skipped), as seen by this controller: rate() is the throughput.',
    labelNames: ['namespace', 'midicorpus'],
    registers: [this.registry],
  });
  readonly corpusFilesFailed = new Counter({
    name: 'midi_corpus_corpus_files_failed_total',
    help: 'Files of each MidiCorpus recorded as failed, as seen by this controller: divided by the processed rate, the failure rate.',
    labelNames: ['namespace', 'midicorpus'],
    registers: [this.registry],
  });
  readonly corpusShards = new Gauge({
    name: 'midi_corpus_corpus_shards',
    help: 'Shards of each MidiCorpus (status.shards): total, succeeded, failed.',
    labelNames: ['namespace', 'midicorpus', 'kind'],
    registers: [this.registry],
  });
  readonly corpusBudget = new Gauge({
    name: 'midi_corpus_corpus_budget_connections',
    help: "Connections of each unfinished MidiCorpus on its budget (status.budget): its fair share, one runner pod's pool (per_pod), and what its runner pods hold (in_use).",
    labelNames: ['namespace', 'midicorpus', 'budget', 'kind'],
    registers: [this.registry],
  });
  readonly corpusBudgetLimited = new Gauge({
    name: 'midi_corpus_corpus_budget_limited',
    help: 'Whether the connection budget holds an unfinished MidiCorpus below the parallelism it asked for (its BudgetLimited condition): 1 or 0.',
    labelNames: ['namespace', 'midicorpus', 'budget'],
    registers: [this.registry],
  });
  readonly corpusRunnerPods = new Gauge({
    name: 'midi_corpus_corpus_runner_pods',
    help: 'Runner pods of each unfinished MidiCorpus: allowed now by the budget (parallelism), running or pending (active), being deleted (terminating).',
    labelNames: ['namespace', 'midicorpus', 'kind'],
    registers: [this.registry],
  });

  /** Corpus key → how far its counters were advanced. */
  private readonly counterMarks = new Map<string, CounterMark>();
  /** Budget key → the corpora its last plan covered: the budget's series go when none of them is left unfinished. */
  private readonly budgetCorpora = new Map<string, Set<string>>();

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  recordBudget(key: string, plan: BudgetPlan): void {
    let holding = plan.operator;
    for (const c of plan.corpora.values()) holding += c.inUse;
    this.budget.set({ budget: key, kind: 'limit' }, plan.limits.maxConnections);
    this.budget.set({ budget: key, kind: 'allowance' }, plan.allowance);
    this.budget.set({ budget: key, kind: 'in_use' }, holding);
    this.budget.set({ budget: key, kind: 'foreign' }, plan.foreign);
    // A corpus is on one budget at a time: one that moved (its Secret or poolKey changed) leaves the old one.
    for (const [other, members] of this.budgetCorpora)
      if (other !== key) for (const corpus of plan.corpora.keys()) members.delete(corpus);
    this.budgetCorpora.set(key, new Set(plan.corpora.keys()));
  }

  /** Recomputed from the caches on each scrape-worthy change. */
  recordObjects(corpora: readonly MidiCorpus[], pods: readonly V1Pod[]): void {
    this.corpora.reset();
    for (const c of corpora) this.corpora.inc({ phase: c.status?.phase ?? 'Pending' });
    this.pods.reset();
    for (const p of pods) {
      const phase =
        p.metadata?.deletionTimestamp != null && p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed'
          ? 'Terminating'
          : (p.status?.phase ?? 'Unknown');
      this.pods.inc({ role: p.metadata?.labels?.[LABEL_ROLE] ?? 'unknown', phase });
    }
    this.recordCorpora(corpora);
  }

  /**
   * The per-corpus series. The gauges are rebuilt from the list (a corpus not in it has none); the counters cannot be
   * rebuilt, so each is advanced by what its status count grew since the last pass, and removed with its corpus. A
   * corpus deleted and created again under the same name (another uid) starts new counters.
   */
  private recordCorpora(corpora: readonly MidiCorpus[]): void {
    for (const g of [
      this.corpusPhase,
      this.corpusFiles,
      this.corpusShards,
      this.corpusBudget,
      this.corpusBudgetLimited,
      this.corpusRunnerPods,
    ])
      g.reset();
    const unfinished = new Set<string>();
    const present = new Set<string>();
    for (const c of corpora) {
      const key = corpusKey(c.metadata.namespace, c.metadata.name);
      const labels: CorpusLabels = { namespace: c.metadata.namespace, midicorpus: c.metadata.name };
      const status = c.status ?? {};
      const phase = status.phase ?? 'Pending';
      present.add(key);
      if (!isFinalPhase(phase)) unfinished.add(key);

      for (const p of PHASES) this.corpusPhase.set({ ...labels, phase: p }, p === phase ? 1 : 0);
      const files = { total: status.files?.total, processed: status.files?.processed, failed: status.files?.failed };
      for (const [kind, n] of Object.entries(files)) if (n !== undefined) this.corpusFiles.set({ ...labels, kind }, n);
      const shards = {
        total: status.shards?.total,
        succeeded: status.shards?.succeeded,
        failed: status.shards?.failed,
      };
      for (const [kind, n] of Object.entries(shards))
        if (n !== undefined) this.corpusShards.set({ ...labels, kind }, n);
      this.advanceCounters(key, c.metadata.uid, labels, status.files?.processed ?? 0, status.files?.failed ?? 0);

      // A finished corpus draws on no budget and has no runner pods: what its status last said is history.
      const b = status.budget;
      if (isFinalPhase(phase) || !b) continue;
      const budget = b.poolKey ?? '';
      const figures = { share: b.share, per_pod: b.perPod, in_use: b.inUse };
      for (const [kind, n] of Object.entries(figures))
        if (n !== undefined) this.corpusBudget.set({ ...labels, budget, kind }, n);
      const limited = status.conditions?.find((x) => x.type === ConditionType.BudgetLimited)?.status === 'True';
      this.corpusBudgetLimited.set({ ...labels, budget }, limited ? 1 : 0);
      const pods = { parallelism: b.parallelism, active: status.pods?.active, terminating: status.pods?.terminating };
      for (const [kind, n] of Object.entries(pods))
        if (n !== undefined) this.corpusRunnerPods.set({ ...labels, kind }, n);
    }
    for (const [key, mark] of this.counterMarks) if (!present.has(key)) this.dropCounters(key, mark);
    for (const [budget, members] of this.budgetCorpora) {
      if ([...members].some((k) => unfinished.has(k))) continue;
      for (const kind of ['limit', 'allowance', 'in_use', 'foreign']) this.budget.remove({ budget, kind });
      this.budgetCorpora.delete(budget);
    }
  }

  private advanceCounters(
    key: string,
    uid: string | undefined,
    labels: CorpusLabels,
    processed: number,
    failed: number,
  ): void {
    let mark = this.counterMarks.get(key);
    if (mark && mark.uid !== uid) {
      this.dropCounters(key, mark);
      mark = undefined;
    }
    if (!mark) {
      // First sight (a new corpus, or a new leader): the counter starts at the status count. Prometheus's rate()
      // takes a new series' first sample as its start, so a new leader shows no burst of throughput.
      mark = { uid, labels, processed: 0, failed: 0 };
      this.counterMarks.set(key, mark);
      this.corpusFilesProcessed.inc(labels, 0);
      this.corpusFilesFailed.inc(labels, 0);
    }
    // A count that went down (a run again, whose files are recorded anew) is not taken back, counters only grow; it
    // becomes the new mark, so the files of the run again count as they are recorded.
    if (processed > mark.processed) this.corpusFilesProcessed.inc(labels, processed - mark.processed);
    if (failed > mark.failed) this.corpusFilesFailed.inc(labels, failed - mark.failed);
    mark.processed = processed;
    mark.failed = failed;
  }

  private dropCounters(key: string, mark: CounterMark): void {
    this.corpusFilesProcessed.remove(mark.labels);
    this.corpusFilesFailed.remove(mark.labels);
    this.counterMarks.delete(key);
  }
}
