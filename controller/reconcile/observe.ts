/**
 * From the informers' caches to the budget planner's input. Pure.
 *
 * Holdings are read from the Jobs and pods themselves (their budget-key and connections-per-pod annotations), so
 * everything that may hold a connection on a database counts: the Jobs of live corpora, Jobs whose corpus was just
 * deleted and that garbage collection has not removed yet, and pods whose Job is already gone but whose process is
 * still stopping. Claims (what a corpus wants) come from the live MidiCorpus objects.
 */
import type { V1Job, V1Pod } from '@kubernetes/client-node';
import { MAX_CONNECTIONS_PER_POD, type MidiCorpus } from '../api/v1alpha1/midicorpus.js';
import type { CorpusBudgetInput } from '../budget/connection-budget.js';
import { ANNOTATION_BUDGET_KEY, ANNOTATION_CONNECTIONS, LABEL_CORPUS_UID, LABEL_ROLE } from '../plan/names.js';
import { failedShards, jobFinished } from '../plan/status.js';

/** A live corpus that draws on the budget being planned. */
export interface CorpusClaim {
  corpus: MidiCorpus;
  /** Connections per runner pod from its spec (used until its run Job exists; then the Job's annotation rules). */
  perPod: number;
  /** Runner pods it wants now; 0 while it scans, is suspended, finished or invalid. */
  demand: number;
  /** It still has to scan: one connection is set aside. */
  scanPending: boolean;
}

/** A pod holds connections until its process has exited: every phase but Succeeded and Failed, Terminating included. */
export function podHoldsConnections(pod: V1Pod): boolean {
  const phase = pod.status?.phase;
  return phase !== 'Succeeded' && phase !== 'Failed';
}

export function isTerminating(pod: V1Pod): boolean {
  return pod.metadata?.deletionTimestamp != null;
}

/** The Job controller may run up to this many pods of the Job without anyone touching it. */
export function jobMayRun(job: V1Job, parallelism: number): number {
  if (job.spec?.suspend === true || jobFinished(job) !== undefined || job.metadata?.deletionTimestamp != null) return 0;
  const completions = job.spec?.completions ?? 1;
  const done = (job.status?.succeeded ?? 0) + (failedShards(job) ?? 0);
  return Math.max(0, Math.min(parallelism, completions - done));
}

export function ownerJobUid(pod: V1Pod): string | undefined {
  return pod.metadata?.ownerReferences?.find((o) => o.kind === 'Job')?.uid;
}

export interface ObserveOptions {
  /** The parallelism to assume for a Job: the larger of the cached one and the one the operator wrote last, until the cache catches up. */
  parallelismOf: (job: V1Job) => number;
}

/** Inputs for connectionBudget() for budget `key`. Corpus entries are keyed `namespace/name`. */
export function budgetInputs(
  key: string,
  claims: readonly CorpusClaim[],
  jobs: readonly V1Job[],
  pods: readonly V1Pod[],
  o: ObserveOptions,
): CorpusBudgetInput[] {
  const byUid = new Map<string, CorpusBudgetInput>();
  const entries: CorpusBudgetInput[] = [];
  for (const c of claims) {
    const entry: CorpusBudgetInput = {
      key: `${c.corpus.metadata.namespace}/${c.corpus.metadata.name}`,
      createdAt: toMillis(c.corpus.metadata.creationTimestamp),
      perPod: c.perPod,
      demand: c.demand,
      livePods: 0,
      potentialPods: 0,
      scanPods: 0,
      scanPending: c.scanPending,
    };
    byUid.set(c.corpus.metadata.uid!, entry);
    entries.push(entry);
  }
  const livePodsByJob = new Map<string, V1Pod[]>();
  for (const pod of pods) {
    if (!podHoldsConnections(pod)) continue;
    const uid = ownerJobUid(pod);
    if (uid === undefined) continue;
    livePodsByJob.set(uid, [...(livePodsByJob.get(uid) ?? []), pod]);
  }
  const jobUids = new Set<string>();
  for (const job of jobs) {
    if (job.metadata?.annotations?.[ANNOTATION_BUDGET_KEY] !== key) continue;
    const uid = job.metadata.uid!;
    jobUids.add(uid);
    const live = livePodsByJob.get(uid)?.length ?? 0;
    const role = job.metadata.labels?.[LABEL_ROLE];
    const perPod = connectionsOf(job.metadata.annotations);
    const corpusUid = job.metadata.labels?.[LABEL_CORPUS_UID] ?? '';
    let entry = byUid.get(corpusUid);
    if (!entry) {
      // Its corpus is gone (or moved to another database): it claims nothing, but holds what it holds.
      entry = {
        key: `job:${job.metadata.namespace}/${job.metadata.name}`,
        createdAt: 0,
        perPod,
        demand: 0,
        livePods: 0,
        potentialPods: 0,
        scanPods: 0,
        scanPending: false,
      };
      byUid.set(`job:${uid}`, entry);
      entries.push(entry);
    }
    if (role === 'scan') {
      const mayStart = jobMayRun(job, 1) > 0 ? 1 : 0;
      entry.scanPods += Math.max(live, mayStart) * perPod;
      continue;
    }
    entry.perPod = perPod;
    const reported = (job.status?.active ?? 0) + (job.status?.terminating ?? 0);
    entry.livePods += live;
    entry.potentialPods += Math.max(jobMayRun(job, o.parallelismOf(job)), live, reported);
  }
  // Pods whose Job has already been deleted: each holds its connections until its process is gone.
  for (const [jobUid, list] of livePodsByJob) {
    if (jobUids.has(jobUid)) continue;
    for (const pod of list) {
      if (pod.metadata?.annotations?.[ANNOTATION_BUDGET_KEY] !== key) continue;
      const perPod = connectionsOf(pod.metadata.annotations);
      entries.push({
        key: `pod:${pod.metadata.namespace}/${pod.metadata.name}`,
        createdAt: 0,
        perPod,
        demand: 0,
        livePods: 1,
        potentialPods: 1,
        scanPods: 0,
        scanPending: false,
      });
    }
  }
  return entries;
}

function connectionsOf(annotations: Record<string, string> | undefined): number {
  const n = Number(annotations?.[ANNOTATION_CONNECTIONS]);
  // An object without the annotation was not made by this version: count it as the largest pod the CRD allows.
  return Number.isInteger(n) && n >= 1 ? n : MAX_CONNECTIONS_PER_POD;
}

/** Informer objects come from list (client-node model classes, Dates) or from watch (raw JSON, strings). */
export function toMillis(t: Date | string | undefined): number {
  if (t === undefined) return 0;
  return t instanceof Date ? t.getTime() : Date.parse(t);
}
