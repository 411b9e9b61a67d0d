/**
 * An in-memory stand-in for the Kubernetes API as the reconciler sees it (its caches and its writers), for testing the
 * reconcile's decisions one state at a time, in milliseconds; test/e2e runs the controller against a real control
 * plane (test/cluster). It is not a simulator of the Job controller: tests move pods and Job conditions by hand, one
 * step at a time, so every intermediate state is explicit.
 */
import type { V1Job, V1Pod } from '@kubernetes/client-node';
import {
  DATABASE_SECRET_LABEL,
  DATABASE_SECRET_LABEL_VALUE,
  type MidiCorpus,
} from '../../../controller/api/v1alpha1/midicorpus.js';
import type { SecretContent } from '../../../controller/reconcile/database.js';
import type { CorpusEvent } from '../../../controller/plan/status.js';
import type { Caches } from '../../../controller/reconcile/reconciler.js';
import type { ClusterReader, ClusterWriter } from '../../../controller/kube.js';
import { LABEL_CORPUS_UID } from '../../../controller/plan/names.js';

/** The annotation the Job controller gives an Indexed Job's pods. */
export const COMPLETION_INDEX = 'batch.kubernetes.io/job-completion-index';

/** 5 characters of the alphabet Kubernetes' name generator draws from, different for each `n`. */
function randomSuffix(n: number): string {
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  let out = '';
  for (let i = 0, x = n * 7919 + 104_729; i < 5; i++, x = Math.floor(x / alphabet.length))
    out += alphabet[x % alphabet.length];
  return out;
}

const conflict = (what: string) => Object.assign(new Error(`409 ${what}`), { code: 409 });

export class World implements Caches, ClusterWriter, ClusterReader {
  readonly corpusMap = new Map<string, MidiCorpus>();
  jobList: V1Job[] = [];
  podList: V1Pod[] = [];
  readonly events: Array<CorpusEvent & { corpus: string }> = [];
  readonly writes: string[] = [];
  /** Secrets by `namespace/name`: set them with setSecret. */
  readonly secrets = new Map<string, SecretContent>();
  private serial = 0;

  /** A Secret with `data`; labelled for MidiCorpora, as a user would, unless `labels` says otherwise. */
  setSecret(
    key: string,
    data: Record<string, string>,
    labels: Record<string, string> = { [DATABASE_SECRET_LABEL]: DATABASE_SECRET_LABEL_VALUE },
  ): void {
    this.secrets.set(key, { labels, data });
  }

  addCorpus(c: MidiCorpus): void {
    c.metadata.resourceVersion = String(++this.serial);
    this.corpusMap.set(`${c.metadata.namespace}/${c.metadata.name}`, c);
  }

  // Caches
  corpus(namespace: string, name: string): MidiCorpus | undefined {
    return this.corpusMap.get(`${namespace}/${name}`);
  }
  corpora(): readonly MidiCorpus[] {
    return [...this.corpusMap.values()];
  }
  jobs(): readonly V1Job[] {
    return this.jobList;
  }
  pods(): readonly V1Pod[] {
    return this.podList.filter((p) => !this.uncachedPods.has(p.metadata?.name ?? ''));
  }

  // Reader: what the API server would list (the caches are the same objects here, unless a test hides some)
  /** Pods the pods cache does not show (yet): a test's stale cache. corpusPods still lists them. */
  readonly uncachedPods = new Set<string>();
  async corpusPods(namespace: string, corpusUid: string): Promise<V1Pod[]> {
    return this.podList.filter(
      (p) => p.metadata?.namespace === namespace && p.metadata?.labels?.[LABEL_CORPUS_UID] === corpusUid,
    );
  }

  // Writers
  async createJob(job: V1Job): Promise<V1Job> {
    if (this.job(job.metadata!.name!)) throw conflict(`job ${job.metadata!.name} exists`);
    const created: V1Job = structuredClone({
      ...job,
      metadata: { ...job.metadata, uid: `job-uid-${++this.serial}`, generation: 1 },
      status: {},
    });
    this.jobList.push(created);
    this.writes.push(`create ${job.metadata!.name} parallelism=${job.spec?.parallelism}`);
    return structuredClone(created);
  }

  async patchJob(namespace: string, name: string, spec: { parallelism: number; suspend: boolean }): Promise<V1Job> {
    const job = this.job(name)!;
    job.spec = { ...job.spec!, ...spec };
    job.metadata!.generation = (job.metadata!.generation ?? 1) + 1;
    this.writes.push(`patch ${name} parallelism=${spec.parallelism} suspend=${spec.suspend}`);
    return structuredClone(job);
  }

  async deleteJob(namespace: string, name: string): Promise<void> {
    const job = this.job(name);
    if (!job) return;
    this.jobList = this.jobList.filter((j) => j !== job);
    // The garbage collector's part, in the background: the Job's pods turn Terminating (removeTerminating ends them).
    for (const p of this.livePods(name)) p.metadata!.deletionTimestamp = new Date();
    this.writes.push(`delete ${name}`);
  }

  async setFinalizers(corpus: MidiCorpus, finalizers: string[]): Promise<void> {
    const key = `${corpus.metadata.namespace}/${corpus.metadata.name}`;
    const current = this.corpusMap.get(key)!;
    if (current.metadata.resourceVersion !== corpus.metadata.resourceVersion)
      throw conflict(`midicorpus ${key} changed`);
    this.writes.push(`finalizers ${key} [${finalizers.join(',')}]`);
    // The API server deletes an object being deleted once its last finalizer is gone.
    if (current.metadata.deletionTimestamp && finalizers.length === 0) {
      this.corpusMap.delete(key);
      return;
    }
    this.corpusMap.set(key, {
      ...current,
      metadata: { ...current.metadata, finalizers, resourceVersion: String(++this.serial) },
    });
  }

  async replaceStatus(corpus: MidiCorpus): Promise<MidiCorpus> {
    const key = `${corpus.metadata.namespace}/${corpus.metadata.name}`;
    const current = this.corpusMap.get(key)!;
    if (current.metadata.resourceVersion !== corpus.metadata.resourceVersion)
      throw conflict(`midicorpus ${key} changed`);
    const next = {
      ...current,
      status: structuredClone(corpus.status),
      metadata: { ...current.metadata, resourceVersion: String(++this.serial) },
    };
    this.corpusMap.set(key, next);
    this.writes.push(`status ${key} ${corpus.status?.phase}`);
    return next;
  }

  async emitEvent(corpus: MidiCorpus, event: CorpusEvent): Promise<void> {
    this.events.push({ ...event, corpus: corpus.metadata.name });
  }

  // What the Job controller and the kubelet would do, step by step
  job(name: string): V1Job | undefined {
    return this.jobList.find((j) => j.metadata?.name === name);
  }

  /**
   * Creates `n` running pods for a Job, with the labels and annotations of its template, named as the Job controller
   * names them: `<job>-<index>-` for an Indexed Job (the next indexes without a live pod), `<job>-` otherwise, cut to
   * 58 characters, and 5 random characters.
   */
  startPods(jobName: string, n: number): V1Pod[] {
    const job = this.job(jobName)!;
    const indexed = job.spec?.completionMode === 'Indexed';
    const taken = new Set(this.livePods(jobName).map((p) => p.metadata?.annotations?.[COMPLETION_INDEX]));
    const made: V1Pod[] = [];
    for (let i = 0, index = 0; i < n; i++, index++) {
      while (indexed && taken.has(String(index))) index++;
      taken.add(String(index));
      const base = `${jobName}-${indexed ? `${index}-` : ''}`.slice(0, 58);
      const pod: V1Pod = {
        metadata: {
          name: `${base}${randomSuffix(++this.serial)}`,
          namespace: job.metadata!.namespace,
          labels: { ...job.spec!.template.metadata!.labels },
          annotations: {
            ...job.spec!.template.metadata!.annotations,
            ...(indexed ? { [COMPLETION_INDEX]: String(index) } : {}),
          },
          ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: jobName, uid: job.metadata!.uid! }],
        },
        status: { phase: 'Running' },
      };
      this.podList.push(pod);
      made.push(pod);
    }
    return made;
  }

  /** The scan pod exits 0 with its JSON summary as termination message; the Job completes. */
  finishScan(jobName: string, message: string): void {
    const [pod] = this.podList.filter((p) => p.metadata?.ownerReferences?.[0]?.name === jobName);
    const p = pod ?? this.startPods(jobName, 1)[0]!;
    p.status = {
      phase: 'Succeeded',
      containerStatuses: [
        {
          name: 'scan',
          image: 'x',
          imageID: '',
          ready: false,
          restartCount: 0,
          state: { terminated: { exitCode: 0, message } },
        },
      ],
    };
    this.job(jobName)!.status = { succeeded: 1, conditions: [{ type: 'Complete', status: 'True' }] };
  }

  livePods(jobName: string): V1Pod[] {
    return this.podList.filter(
      (p) =>
        p.metadata?.ownerReferences?.[0]?.name === jobName &&
        p.status?.phase !== 'Succeeded' &&
        p.status?.phase !== 'Failed',
    );
  }

  /** The Job controller deletes pods above parallelism: they turn Terminating (and still hold connections). */
  trimToParallelism(jobName: string): void {
    const job = this.job(jobName)!;
    const live = this.livePods(jobName).filter((p) => !p.metadata?.deletionTimestamp);
    for (const p of live.slice(job.spec?.suspend ? 0 : job.spec!.parallelism!))
      p.metadata!.deletionTimestamp = new Date();
  }

  /** Terminating pods finish stopping and disappear. */
  removeTerminating(): void {
    this.podList = this.podList.filter((p) => !p.metadata?.deletionTimestamp);
  }
}
