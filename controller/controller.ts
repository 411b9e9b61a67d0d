/**
 * The MidiCorpus controller: informers on MidiCorpus objects and on the Jobs and pods the operator created, a work
 * queue of corpus keys, one worker running the reconcile, leader election, health and metrics endpoints.
 *
 * One worker, on purpose: budget decisions for a database must be taken one at a time, each seeing the previous
 * one's writes (see budget/connection-budget.ts). Reconciles are short (cache reads, at most one write), so one
 * worker handles hundreds of corpora.
 *
 * Every replica runs the informers (a standby takes over with a warm cache); only the leader runs the worker.
 *
 * Everything that reaches outside the process (the informers, the writes, the databases, the Lease, the ports, the
 * clock) is given to the constructor; wiring.ts builds the real ones, tests give fakes.
 */
import type { V1Job, V1Pod } from '@kubernetes/client-node';
import type { Registry } from 'prom-client';
import type { Clock } from '../common/clock.js';
import type { Logger } from '../common/log.js';
import type { MidiCorpus } from './api/v1alpha1/midicorpus.js';
import { ANNOTATION_BUDGET_KEY, ANNOTATION_CORPUS } from './plan/names.js';
import type { DatabaseAccess } from './reconcile/database.js';
import { Reconciler } from './reconcile/reconciler.js';
import { describeApiError, isConflict } from './runtime/errors.js';
import type { HttpEndpoints } from './runtime/http.js';
import type { Informer, InformerEvent } from './runtime/informer.js';
import type { ClusterReader, ClusterWriter } from './kube.js';
import type { Leadership, LeadershipCallbacks } from './runtime/leader-election.js';
import { ControllerMetrics } from './metrics.js';
import { WorkQueue } from './runtime/work-queue.js';

/** After this many 409s in a row on one key, requeue with backoff instead of at once. */
const CONFLICTS_BEFORE_BACKOFF = 5;
/** First retry delay of a failing key; it doubles with each failure in a row, and a success resets it. */
const RETRY_BASE_MS = 500;
/** Longest retry delay of a failing key. */
const RETRY_MAX_MS = 300_000;

/** Builds one informer, given what the controller does with its events and errors. */
export type InformerFactory<T> = (handlers: {
  onEvent: (event: InformerEvent, obj: T) => void;
  onError: (err: unknown) => void;
}) => Informer<T>;

export interface ControllerOptions {
  /** The MidiCorpus objects, and the Jobs and pods the operator created (CHILD_SELECTOR). */
  informers: { corpora: InformerFactory<MidiCorpus>; jobs: InformerFactory<V1Job>; pods: InformerFactory<V1Pod> };
  /** The writes a reconcile makes. */
  writer: ClusterWriter;
  /** The reads a reconcile makes past the caches. */
  reader: ClusterReader;
  database: DatabaseAccess;
  /** Starts the campaign for leadership; absent: this replica leads as soon as it has started. */
  campaign?: (callbacks: LeadershipCallbacks) => Leadership;
  /** Serves /healthz, /readyz and /metrics. */
  serve: (o: { registry: Registry; ready: () => boolean }) => Promise<HttpEndpoints>;
  /** Runner image for corpora that do not name one. */
  runnerImage: string;
  /** The work queue's delays and the status times. */
  clock: Clock;
  log: Logger;
  /** Called when leadership is lost: the process must stop acting at once (the CLI exits). */
  onLostLeadership: () => void;
  /** How soon a write the API server refused for good is tried again with the same spec (the reconciler's default). */
  rejectedRetryMs?: number;
  /** How long a pod may be unschedulable before the corpus says so (the reconciler's default). */
  unschedulableGraceMs?: number;
}

export class Controller {
  readonly metrics = new ControllerMetrics();
  private readonly queue: WorkQueue;
  private readonly reconciler: Reconciler;
  private readonly corpora: Informer<MidiCorpus>;
  private readonly jobs: Informer<V1Job>;
  private readonly pods: Informer<V1Pod>;
  private readonly leadership?: Leadership;
  /** 409s in a row, by key. */
  private readonly conflicts = new Map<string, number>();
  private http?: HttpEndpoints;
  private worker?: Promise<void>;
  private leading = false;
  private stopping = false;

  constructor(private readonly o: ControllerOptions) {
    this.queue = new WorkQueue({ baseDelayMs: RETRY_BASE_MS, maxDelayMs: RETRY_MAX_MS, clock: o.clock });
    const onError = (informer: string) => () => this.metrics.watchRestarts.inc({ informer });
    this.corpora = o.informers.corpora({
      onEvent: (_e, c) => this.enqueue(`${c.metadata.namespace}/${c.metadata.name}`),
      onError: onError('midicorpora'),
    });
    this.jobs = o.informers.jobs({
      onEvent: (e, job) => {
        if (e === 'delete' && job.metadata?.uid) this.reconciler.expectations.forget(job.metadata.uid);
        this.enqueueOwner(job);
      },
      onError: onError('jobs'),
    });
    this.pods = o.informers.pods({ onEvent: (_e, pod) => this.enqueueOwner(pod), onError: onError('pods') });

    this.reconciler = new Reconciler({
      caches: {
        corpus: (ns, name) => this.corpora.get(name, ns),
        corpora: () => this.corpora.list(),
        jobs: () => this.jobs.list(),
        pods: () => this.pods.list(),
      },
      writer: o.writer,
      reader: o.reader,
      database: o.database,
      defaultImage: o.runnerImage,
      enqueue: (key) => this.enqueue(key),
      onBudget: (key, plan) => this.metrics.recordBudget(key, plan),
      clock: o.clock,
      log: o.log,
      rejectedRetryMs: o.rejectedRetryMs,
      unschedulableGraceMs: o.unschedulableGraceMs,
    });
    this.leadership = o.campaign?.({
      onStartedLeading: () => this.startLeading(),
      onStoppedLeading: () => {
        this.leading = false;
        this.metrics.leader.set(0);
        this.queue.shutDown();
        o.onLostLeadership();
      },
    });
  }

  get synced(): boolean {
    return this.corpora.synced && this.jobs.synced && this.pods.synced;
  }

  async start(): Promise<{ health: number; metrics: number }> {
    this.http = await this.o.serve({ registry: this.metrics.registry, ready: () => this.synced });
    await Promise.all([this.corpora.start(), this.jobs.start(), this.pods.start()]);
    this.o.log.info({ synced: this.synced }, 'informers started');
    if (this.leadership) this.leadership.start();
    else this.startLeading();
    return this.http.ports;
  }

  /** Graceful shutdown: finish the reconcile in flight, release the Lease, stop watching, close the endpoints. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.queue.shutDown();
    await this.worker;
    await this.leadership?.stop();
    await Promise.all([this.corpora.stop(), this.jobs.stop(), this.pods.stop()]);
    await this.http?.close();
    this.metrics.leader.set(0);
    this.o.log.info('controller stopped');
  }

  private startLeading(): void {
    if (this.leading || this.stopping) return;
    this.leading = true;
    this.metrics.leader.set(1);
    for (const c of this.corpora.list()) this.queue.add(`${c.metadata.namespace}/${c.metadata.name}`);
    this.worker = this.work();
  }

  private enqueue(key: string): void {
    this.queue.add(key);
    this.metrics.queueDepth.set(this.queue.length);
  }

  /**
   * A Job or pod changed: its corpus, and the corpora on the budget it draws on, may need to act. The budget comes
   * from the object's own annotation, not from its corpus: once a corpus is deleted and forgotten, its pods still stop
   * one by one, and each one gone frees connections the others are waiting for.
   */
  private enqueueOwner(obj: V1Job | V1Pod): void {
    const name = obj.metadata?.annotations?.[ANNOTATION_CORPUS];
    const namespace = obj.metadata?.namespace;
    if (name && namespace) this.enqueue(`${namespace}/${name}`);
    const budget = obj.metadata?.annotations?.[ANNOTATION_BUDGET_KEY];
    if (budget) for (const key of this.reconciler.corporaOn(budget)) this.enqueue(key);
  }

  private async work(): Promise<void> {
    while (true) {
      const key = await this.queue.get();
      if (key === undefined) return;
      const timer = this.metrics.duration.startTimer();
      try {
        const result = await this.reconciler.reconcile(key);
        this.queue.forget(key);
        this.conflicts.delete(key);
        if (result.requeueAfterMs !== undefined) this.queue.addAfter(key, result.requeueAfterMs);
        this.metrics.reconciles.inc({ result: 'success' });
      } catch (err) {
        if (isConflict(err)) {
          // Someone wrote first (or the cache is behind our own create): look again now, with fresh data.
          const n = (this.conflicts.get(key) ?? 0) + 1;
          this.conflicts.set(key, n);
          if (n <= CONFLICTS_BEFORE_BACKOFF) this.queue.add(key);
          else this.queue.addRateLimited(key);
          this.metrics.reconciles.inc({ result: 'conflict' });
        } else {
          const delay = this.queue.addRateLimited(key);
          this.metrics.reconciles.inc({ result: 'error' });
          this.metrics.errors.inc();
          this.o.log.warn({ corpus: key, retryInMs: delay, err: describeApiError(err) }, 'reconcile failed');
        }
      } finally {
        this.queue.done(key);
        timer();
        this.metrics.queueDepth.set(this.queue.length);
        this.metrics.recordObjects(this.corpora.list(), this.pods.list());
      }
    }
  }
}
