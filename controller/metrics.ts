/**
 * Prometheus metrics of the controller, in a registry of its own (no global state, so tests can make several).
 * Names start with midi_corpus_; labels never carry a URL or a secret (the budget label is the hashed key).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { V1Pod } from '@kubernetes/client-node';
import type { BudgetPlan } from './budget/connection-budget.js';
import { LABEL_ROLE } from './plan/names.js';
import type { MidiCorpus } from './api/v1alpha1/midicorpus.js';

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

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'midi_corpus_operator_' });
  }

  recordBudget(key: string, plan: BudgetPlan): void {
    let holding = plan.operator;
    for (const c of plan.corpora.values()) holding += c.inUse;
    this.budget.set({ budget: key, kind: 'limit' }, plan.limits.maxConnections);
    this.budget.set({ budget: key, kind: 'allowance' }, plan.allowance);
    this.budget.set({ budget: key, kind: 'in_use' }, holding);
    this.budget.set({ budget: key, kind: 'foreign' }, plan.foreign);
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
  }
}
