/**
 * The MidiCorpus controller: informers on MidiCorpus objects and on the Jobs and pods the operator created, a work
 * queue of corpus keys, one worker running the reconcile, leader election, health and metrics endpoints.
 *
 * One worker, on purpose: budget decisions for a database must be taken one at a time, each seeing the previous
 * one's writes (see budget/connection-budget.ts). Reconciles are short (cache reads, at most one write), so one
 * worker handles hundreds of corpora.
 *
 * Every replica runs the informers (a standby takes over with a warm cache); only the leader runs the worker.
 */
import {
  CoordinationV1Api,
  type KubeConfig,
  type KubernetesObject,
  type V1Job,
  type V1Pod,
} from '@kubernetes/client-node';
import type { Logger } from '../common/log.js';
import type { MidiCorpus } from './api/v1alpha1/midicorpus.js';
import { ANNOTATION_BUDGET_KEY, ANNOTATION_CORPUS, CHILD_SELECTOR } from './plan/names.js';
import { DatabaseAccess } from './reconcile/database.js';
import { Reconciler } from './reconcile/reconciler.js';
import { describeApiError, isConflict } from './runtime/errors.js';
import { startHttp } from './runtime/http.js';
import { RestartingInformer, type InformerEvent } from './runtime/informer.js';
import { KubeClient } from './kube.js';
import { LeaderElector } from './runtime/leader-election.js';
import { ControllerMetrics } from './metrics.js';
import { WorkQueue } from './runtime/work-queue.js';

export interface ControllerOptions {
  kubeConfig: KubeConfig;
  /** Watch one namespace; empty: all. */
  namespace: string;
  leaderElect: boolean;
  leaseName: string;
  leaseNamespace: string;
  /** Leader-election identity and Events' reportingInstance: the pod name. */
  identity: string;
  metricsPort: number;
  healthPort: number;
  /** Runner image for corpora that do not name one. */
  runnerImage: string;
  log: Logger;
  /** Called when leadership is lost: the process must stop acting at once (the CLI exits). */
  onLostLeadership: () => void;
}

/** After this many 409s in a row on one key, requeue with backoff instead of at once. */
const CONFLICTS_BEFORE_BACKOFF = 5;

export class Controller {
  readonly metrics = new ControllerMetrics();
  private readonly kube: KubeClient;
  private readonly queue = new WorkQueue({ baseDelayMs: 500, maxDelayMs: 300_000 });
  private readonly reconciler: Reconciler;
  private readonly corpora: RestartingInformer<MidiCorpus>;
  private readonly jobs: RestartingInformer<V1Job>;
  private readonly pods: RestartingInformer<V1Pod>;
  private readonly elector?: LeaderElector;
  private readonly conflicts = new Map<string, number>();
  private http?: Awaited<ReturnType<typeof startHttp>>;
  private worker?: Promise<void>;
  private leading = false;
  private stopping = false;

  constructor(private readonly o: ControllerOptions) {
    this.kube = new KubeClient({ kubeConfig: o.kubeConfig, namespace: o.namespace, identity: o.identity });
    const informer = <T extends KubernetesObject>(
      name: string,
      source: KubeClient['jobs' | 'pods' | 'corpora'],
      selector: string | undefined,
      onEvent: (e: InformerEvent, obj: T) => void,
    ) =>
      new RestartingInformer<T>({
        name,
        kubeConfig: o.kubeConfig,
        path: source.path(),
        list: source.list as () => Promise<never>,
        labelSelector: selector,
        onEvent,
        onError: () => this.metrics.watchRestarts.inc({ informer: name }),
        log: o.log,
      });
    this.corpora = informer<MidiCorpus>('midicorpora', this.kube.corpora, undefined, (_e, c) =>
      this.enqueue(`${c.metadata.namespace}/${c.metadata.name}`),
    );
    this.jobs = informer<V1Job>('jobs', this.kube.jobs, CHILD_SELECTOR, (e, job) => {
      if (e === 'delete' && job.metadata?.uid) this.reconciler.expectations.forget(job.metadata.uid);
      this.enqueueOwner(job);
    });
    this.pods = informer<V1Pod>('pods', this.kube.pods, CHILD_SELECTOR, (_e, pod) => this.enqueueOwner(pod));

    const database = new DatabaseAccess({ readSecret: (ns, name) => this.kube.readSecret(ns, name) });
    this.reconciler = new Reconciler({
      caches: {
        corpus: (ns, name) => this.corpora.get(name, ns),
        corpora: () => this.corpora.list(),
        jobs: () => this.jobs.list(),
        pods: () => this.pods.list(),
      },
      writer: this.kube,
      database,
      defaultImage: o.runnerImage,
      enqueue: (key) => this.enqueue(key),
      onBudget: (key, plan) => this.metrics.recordBudget(key, plan),
      log: o.log,
    });
    if (o.leaderElect) {
      this.elector = new LeaderElector({
        api: o.kubeConfig.makeApiClient(CoordinationV1Api),
        namespace: o.leaseNamespace,
        name: o.leaseName,
        identity: o.identity,
        onStartedLeading: () => this.startLeading(),
        onStoppedLeading: () => {
          this.leading = false;
          this.metrics.leader.set(0);
          this.queue.shutDown();
          o.onLostLeadership();
        },
        log: o.log,
      });
    }
  }

  get synced(): boolean {
    return this.corpora.synced && this.jobs.synced && this.pods.synced;
  }

  async start(): Promise<{ health: number; metrics: number }> {
    this.http = await startHttp({
      healthPort: this.o.healthPort,
      metricsPort: this.o.metricsPort,
      registry: this.metrics.registry,
      ready: () => this.synced,
    });
    await Promise.all([this.corpora.start(), this.jobs.start(), this.pods.start()]);
    this.o.log.info({ namespace: this.o.namespace || '(all)', synced: this.synced }, 'informers started');
    if (this.elector) this.elector.start();
    else this.startLeading();
    return this.http.ports;
  }

  /** Graceful shutdown: finish the reconcile in flight, release the Lease, stop watching, close the endpoints. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.queue.shutDown();
    await this.worker;
    await this.elector?.stop();
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
