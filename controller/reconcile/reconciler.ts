/**
 * The reconcile of one MidiCorpus: level-triggered and idempotent. It reads the world (informer caches, the Secret,
 * the database's limit), calls the pure planners, makes at most one write, and returns. Whatever the write changes
 * comes back as an informer event and triggers the next pass, so a crash or restart between two passes loses nothing:
 * Job names are deterministic, and the next pass finds what the last one created.
 *
 * Steps (each: observe → decide → at most one write → return):
 *   1. Validate what the API server cannot (the CPU quantity, an image to run).
 *   2. Resolve the database: the Secret's URL and budget key; max_connections from the spec or the server.
 *   3. Plan the budget of that database across every corpus and Job on it.
 *   4. Scan: create the scan Job when a connection is free; read its answer when it is done.
 *   5. Run: create the Indexed Job, then keep its parallelism and suspend in line with the budget and the spec.
 *   6. Status: computed from all of the above, written only when it differs; Events for the transitions.
 */
import type { V1Job, V1Pod } from '@kubernetes/client-node';
import type { Logger } from '../../common/log.js';
import { describeError } from '../../contract/describe-error.js';
import { poolSizeFor } from '../../contract/pool-sizing.js';
import { Reason } from '../api/v1alpha1/conditions.js';
import type { MidiCorpus } from '../api/v1alpha1/midicorpus.js';
import { connectionBudget, mergeLimits, type BudgetPlan, type DatabaseLimits } from '../budget/connection-budget.js';
import { cpuMillis } from '../plan/cpu.js';
import { runJob, scanJob } from '../plan/desired-jobs.js';
import { LABEL_CORPUS_UID, LABEL_ROLE, childName, type ChildRole } from '../plan/names.js';
import { corpusKey } from '../../contract/corpus-key.js';
import { parseScanResult, scanTerminationMessage, type ScanResult } from '../plan/scan-result.js';
import {
  computeStatus,
  failedShards,
  jobFinished,
  sameStatus,
  transitionEvents,
  type BudgetObservation,
  type StatusInput,
} from '../plan/status.js';
import type { ClusterWriter } from '../kube.js';
import { budgetInputs, isTerminating, podHoldsConnections, type CorpusClaim } from './observe.js';
import type { DatabaseAccess, Resolution } from './database.js';
import { JobExpectations } from './job-expectations.js';

/** How often a corpus that is under way is looked at even without events (progress counts, missed events). */
export const RESYNC_MS = 30_000;
/** How soon a corpus with an unusable spec is looked at again (the Secret may appear). */
export const INVALID_RETRY_MS = 60_000;

export interface Caches {
  corpus(namespace: string, name: string): MidiCorpus | undefined;
  corpora(): readonly MidiCorpus[];
  jobs(): readonly V1Job[];
  pods(): readonly V1Pod[];
}

export interface ReconcilerOptions {
  caches: Caches;
  writer: ClusterWriter;
  database: Pick<DatabaseAccess, 'resolve' | 'maxConnections' | 'progress'>;
  defaultImage: string;
  /** Queues another corpus (a peer on the same database whose share may have changed). */
  enqueue: (key: string) => void;
  /** After each pass that planned a budget: for metrics. */
  onBudget?: (budgetKey: string, plan: BudgetPlan) => void;
  now?: () => Date;
  log: Logger;
}

export interface ReconcileResult {
  /** Look again after this long even if nothing happens. */
  requeueAfterMs?: number;
}

/** Everything a pass learned about one corpus before deciding. */
interface Observation {
  corpus: MidiCorpus;
  key: string;
  scanJob?: V1Job;
  runJob?: V1Job;
  pods: V1Pod[];
  invalid?: { reason: Reason; message: string };
  resolution?: Extract<Resolution, { ok: true }>;
  scanResult?: ScanResult;
  scanProblem?: string;
  shards?: number;
  budgetUnknown?: string;
  plan?: BudgetPlan;
  peers: string[];
  claim?: CorpusClaim;
}

export class Reconciler {
  readonly expectations = new JobExpectations();
  /** Budget key of each corpus at its last pass: who to wake when it goes away. */
  private readonly budgetOf = new Map<string, string>();
  private readonly now: () => Date;

  constructor(private readonly o: ReconcilerOptions) {
    this.now = o.now ?? (() => new Date());
  }

  /** Corpora last seen on the same budget as `key` (for waking them when a Job or pod of `key` changes). */
  peersOf(key: string): string[] {
    const budget = this.budgetOf.get(key);
    if (budget === undefined) return [];
    return [...this.budgetOf].filter(([k, b]) => b === budget && k !== key).map(([k]) => k);
  }

  /**
   * Corpora last seen drawing on `budgetKey`. For waking them when a Job or pod annotated with that budget changes:
   * the pods of a deleted corpus keep stopping (and releasing connections) after the corpus itself is forgotten, and
   * each of those changes may let the others grow.
   */
  corporaOn(budgetKey: string): string[] {
    return [...this.budgetOf].filter(([, b]) => b === budgetKey).map(([k]) => k);
  }

  /** The thin outer reconcile: fetch, handle "gone", then the real work. */
  async reconcile(key: string): Promise<ReconcileResult> {
    const [namespace, name] = splitKey(key);
    const corpus = this.o.caches.corpus(namespace, name);
    if (!corpus) {
      // Deleted: its Jobs and pods go with it (ownerReferences); its peers may grow once the pods are gone, and the
      // pod events will wake them. Wake them now too, for the claim that just disappeared.
      for (const peer of this.peersOf(key)) this.o.enqueue(peer);
      this.budgetOf.delete(key);
      return {};
    }
    return this.sync(corpus, key);
  }

  private async sync(corpus: MidiCorpus, key: string): Promise<ReconcileResult> {
    const obs = await this.observe(corpus, key);
    const log = this.o.log.child({ corpus: key });

    // Step 4/5: at most one write to the children.
    const write = this.decideChildWrite(obs);
    if (write) {
      const job = await write.apply();
      this.expectations.record(job);
      log.info({ job: job.metadata?.name, parallelism: job.spec?.parallelism, suspend: job.spec?.suspend }, write.what);
      for (const peer of obs.peers) this.o.enqueue(peer);
      return {};
    }

    // Step 6: status.
    let status = computeStatus(this.statusInput(obs, await this.progress(obs)));
    if (isFinal(status.phase) && !isFinal(corpus.status?.phase) && obs.shards !== undefined && obs.shards > 0) {
      // The last word on a corpus: its counts are never looked at again, so they must be exact, not the throttled
      // count from up to 30 s ago. A failure throws: the pass is retried (with backoff) rather than finishing wrong.
      status = computeStatus(this.statusInput(obs, await this.progress(obs, { force: true, strict: true })));
    }
    if (!sameStatus(corpus.status, status)) {
      await this.o.writer.replaceStatus({ ...corpus, status });
      // What this corpus claims from the budget shows in its status (a scan waiting for a connection, shards done, a
      // suspension, a finish): the corpora sharing the budget must look again, e.g. to shrink and make room for this
      // one's scan. Only on a change, so the wake-ups end when the statuses settle.
      for (const peer of obs.peers) this.o.enqueue(peer);
      for (const event of transitionEvents(corpus.status, status)) {
        await this.o.writer
          .emitEvent(corpus, event)
          .catch((err: unknown) => log.warn({ err: String(err), reason: event.reason }, 'could not record an Event'));
      }
      if (corpus.status?.phase !== status.phase)
        log.info({ from: corpus.status?.phase, to: status.phase }, 'phase changed');
    }
    if (status.phase === 'Invalid') return { requeueAfterMs: INVALID_RETRY_MS };
    if (isFinal(status.phase)) return {};
    return { requeueAfterMs: RESYNC_MS };
  }

  /** Steps 1–3: everything read, nothing written. */
  private async observe(corpus: MidiCorpus, key: string): Promise<Observation> {
    const jobs = this.expectations.merge(this.o.caches.jobs());
    const uid = corpus.metadata.uid!;
    const obs: Observation = {
      corpus,
      key,
      scanJob: ownJob(jobs, corpus, 'scan'),
      runJob: ownJob(jobs, corpus, 'run'),
      pods: this.o.caches.pods().filter((p) => p.metadata?.labels?.[LABEL_CORPUS_UID] === uid),
      peers: [],
    };
    const old = corpus.status;
    const terminal = old?.phase === 'Succeeded' || old?.phase === 'Failed';
    if (terminal) return obs;

    // Step 1: what the API server's schema cannot check.
    const cpu = cpuMillis(corpus.spec.runner.resources.requests?.cpu);
    if (cpu === undefined) {
      obs.invalid = {
        reason: Reason.InvalidCpuRequest,
        message: `runner.resources.requests.cpu "${String(corpus.spec.runner.resources.requests?.cpu)}" is not a positive CPU quantity.`,
      };
      return obs;
    }
    if (!corpus.spec.runner.image && !this.o.defaultImage) {
      obs.invalid = {
        reason: Reason.NoRunnerImage,
        message: 'No runner image: set spec.runner.image (the operator was started without --runner-image).',
      };
      return obs;
    }

    // Step 2: the database.
    const resolution = await this.o.database.resolve(corpus);
    if (!resolution.ok) {
      obs.invalid = { reason: resolution.reason, message: resolution.message };
      return obs;
    }
    obs.resolution = resolution;
    this.budgetOf.set(key, resolution.budgetKey);

    // The scan's answer: recorded in status once; read from the scan pod until then.
    if (old?.shards?.total !== undefined) {
      obs.shards = old.shards.total;
    } else if (jobFinished(obs.scanJob) === 'Complete') {
      const scanPods = obs.pods.filter((p) => p.metadata?.labels?.[LABEL_ROLE] === 'scan');
      const message = scanTerminationMessage(scanPods);
      if (message !== undefined) {
        const parsed = parseScanResult(message, corpusKey(corpus.metadata.namespace, corpus.metadata.name));
        if (parsed.ok) {
          obs.scanResult = parsed.result;
          obs.shards = parsed.result.shards;
        } else {
          obs.scanProblem = parsed.message;
        }
      } else if (!scanPods.some(podHoldsConnections)) {
        // The pod cache may lag behind the Job's: only when no scan pod is still running there is the answer lost.
        obs.scanProblem = 'the scan pod is gone before its answer was read; recreate the MidiCorpus to scan again';
      }
    }

    // Step 3: the budget of this database, across all corpora and Jobs on it.
    obs.claim = this.claimOf(corpus, obs, cpu);
    const claims: CorpusClaim[] = [obs.claim];
    const limits: DatabaseLimits[] = [];
    let detected: number | undefined;
    const limitsOf = async (c: MidiCorpus): Promise<DatabaseLimits | undefined> => {
      let max = c.spec.database.maxConnections;
      if (max === undefined) {
        if (detected === undefined)
          detected = await this.o.database.maxConnections(resolution.budgetKey, resolution.url);
        max = detected;
      }
      return {
        maxConnections: max,
        reservedConnections: c.spec.database.reservedConnections,
        headroom: c.spec.database.headroom,
      };
    };
    try {
      limits.push((await limitsOf(corpus))!);
      for (const peer of this.o.caches.corpora()) {
        if (peer.metadata.uid === uid) continue;
        const peerKey = corpusKey(peer.metadata.namespace, peer.metadata.name);
        const r = await this.o.database.resolve(peer).catch(() => undefined);
        if (!r?.ok || r.budgetKey !== resolution.budgetKey) continue;
        this.budgetOf.set(peerKey, r.budgetKey);
        obs.peers.push(peerKey);
        const peerCpu = cpuMillis(peer.spec.runner.resources.requests?.cpu);
        if (peerCpu === undefined) continue;
        limits.push((await limitsOf(peer))!);
        const peerObs: Observation = {
          corpus: peer,
          key: peerKey,
          scanJob: ownJob(jobs, peer, 'scan'),
          runJob: ownJob(jobs, peer, 'run'),
          pods: [],
          peers: [],
        };
        if (peer.status?.shards?.total !== undefined) peerObs.shards = peer.status.shards.total;
        claims.push(this.claimOf(peer, peerObs, peerCpu));
      }
    } catch (err) {
      obs.budgetUnknown = `max_connections of the database is unknown (${describeError(err)}); set spec.database.maxConnections or make the database reachable. Nothing new is started meanwhile.`;
      return obs;
    }
    const inputs = budgetInputs(resolution.budgetKey, claims, jobs, this.o.caches.pods(), {
      parallelismOf: (j) => j.spec?.parallelism ?? 1,
    });
    obs.plan = connectionBudget(mergeLimits(limits), inputs);
    this.o.onBudget?.(resolution.budgetKey, obs.plan);
    return obs;
  }

  /** What a corpus wants from the budget now. */
  private claimOf(
    corpus: MidiCorpus,
    obs: Pick<Observation, 'scanJob' | 'runJob' | 'shards' | 'scanProblem'>,
    cpu: number,
  ): CorpusClaim {
    const perPod = poolSizeFor(cpu, corpus.spec.runner.pool).max;
    const phase = corpus.status?.phase;
    const stopped =
      phase === 'Succeeded' ||
      phase === 'Failed' ||
      phase === 'Invalid' ||
      corpus.spec.suspend ||
      obs.scanProblem !== undefined ||
      jobFinished(obs.scanJob) === 'Failed' ||
      jobFinished(obs.runJob) !== undefined;
    if (stopped) return { corpus, perPod, demand: 0, scanPending: false };
    if (obs.shards === undefined) return { corpus, perPod, demand: 0, scanPending: true };
    const done =
      (obs.runJob?.status?.succeeded ?? corpus.status?.shards?.succeeded ?? 0) +
      (failedShards(obs.runJob) ?? corpus.status?.shards?.failed ?? 0);
    return {
      corpus,
      perPod,
      demand: Math.max(0, Math.min(corpus.spec.runner.maxParallelism, obs.shards - done)),
      scanPending: false,
    };
  }

  /** Steps 4 and 5: the one write to the children this pass makes, if any. */
  private decideChildWrite(obs: Observation): { what: string; apply: () => Promise<V1Job> } | undefined {
    const { corpus, resolution, plan } = obs;
    if (obs.invalid || !resolution || !plan || obs.budgetUnknown) return undefined;
    const phase = corpus.status?.phase;
    if (phase === 'Succeeded' || phase === 'Failed') return undefined;
    const mine = plan.corpora.get(obs.key)!;
    const options = { defaultImage: this.o.defaultImage, budgetKey: resolution.budgetKey };

    if (obs.shards === undefined) {
      // Step 4: scan.
      if (obs.scanJob || corpus.spec.suspend || obs.scanProblem || !mine.scanFits) return undefined;
      return { what: 'creating the scan Job', apply: () => this.o.writer.createJob(scanJob(corpus, options)) };
    }
    // Step 5: run. Nothing to run for an empty corpus; a finished scan without its totals in status waits for them.
    if (obs.shards === 0 || corpus.status?.shards?.total === undefined) return undefined;
    if (!obs.runJob) {
      return {
        what: 'creating the run Job',
        apply: () =>
          this.o.writer.createJob(
            runJob(corpus, { ...options, shards: obs.shards!, parallelism: mine.parallelism, perPod: mine.perPod }),
          ),
      };
    }
    if (jobFinished(obs.runJob) !== undefined) return undefined;
    const parallelism = mine.parallelism;
    const suspend = corpus.spec.suspend;
    if ((obs.runJob.spec?.parallelism ?? 1) === parallelism && (obs.runJob.spec?.suspend ?? false) === suspend)
      return undefined;
    const { namespace, name } = obs.runJob.metadata!;
    return {
      what: "setting the run Job's parallelism",
      apply: () => this.o.writer.patchJob(namespace!, name!, { parallelism, suspend }),
    };
  }

  /** Files done and failed, from the database; `strict`: a failure throws instead of leaving the counts as they were. */
  private async progress(
    obs: Observation,
    options: { force?: boolean; strict?: boolean } = {},
  ): Promise<{ processed: number; failed: number } | undefined> {
    if (!obs.resolution || obs.shards === undefined || obs.shards === 0) return undefined;
    const { corpus } = obs;
    try {
      return await this.o.database.progress(
        obs.resolution.budgetKey,
        obs.resolution.url,
        corpusKey(corpus.metadata.namespace, corpus.metadata.name),
        { force: options.force },
      );
    } catch (err) {
      if (options.strict) throw err;
      this.o.log.debug({ corpus: obs.key, err: String(err) }, 'progress counts unavailable');
      return undefined;
    }
  }

  private statusInput(obs: Observation, files: { processed: number; failed: number } | undefined): StatusInput {
    const runPods = obs.pods.filter((p) => p.metadata?.labels?.[LABEL_ROLE] === 'run' && podHoldsConnections(p));
    const input: StatusInput = {
      corpus: obs.corpus,
      now: this.now(),
      runPods: {
        active: runPods.filter((p) => !isTerminating(p)).length,
        terminating: runPods.filter(isTerminating).length,
      },
    };
    if (obs.invalid) input.invalid = obs.invalid;
    if (obs.scanJob) input.scanJob = obs.scanJob;
    if (obs.runJob) input.runJob = obs.runJob;
    if (obs.scanResult) input.scanResult = obs.scanResult;
    if (obs.scanProblem) input.scanProblem = obs.scanProblem;
    if (obs.budgetUnknown) input.budgetUnknown = obs.budgetUnknown;
    if (files) input.files = files;
    if (obs.plan && obs.resolution && obs.claim) {
      const mine = obs.plan.corpora.get(obs.key)!;
      const l = obs.plan.limits;
      const scanWaiting = obs.shards === undefined && !obs.scanJob && !mine.scanFits && !obs.corpus.spec.suspend;
      const budget: BudgetObservation = {
        figures: {
          poolKey: obs.resolution.budgetKey,
          limit: l.maxConnections,
          reserved: l.reservedConnections,
          headroom: l.headroom,
          operator: obs.plan.operator,
          allowance: obs.plan.allowance,
          share: mine.share,
          perPod: mine.perPod,
          parallelism: mine.parallelism,
          inUse: mine.inUse,
        },
        demand: obs.claim.demand,
        planned: mine.planned,
        corpora: 1 + obs.peers.length,
        scanWaiting,
      };
      if (mine.limitedBy && obs.shards !== undefined) budget.limitedBy = mine.limitedBy;
      input.budget = budget;
    }
    return input;
  }
}

/** Succeeded and Failed are final: nothing starts again, and the status is not recomputed afterwards. */
function isFinal(phase: string | undefined): boolean {
  return phase === 'Succeeded' || phase === 'Failed';
}

function splitKey(key: string): [string, string] {
  const i = key.indexOf('/');
  return [key.slice(0, i), key.slice(i + 1)];
}

/** The corpus's Job of that role: the deterministic name, owned by this very corpus (not a namesake being deleted). */
function ownJob(jobs: readonly V1Job[], corpus: MidiCorpus, role: ChildRole): V1Job | undefined {
  const name = childName(corpus.metadata.name, role);
  return jobs.find(
    (j) =>
      j.metadata?.namespace === corpus.metadata.namespace &&
      j.metadata?.name === name &&
      j.metadata?.ownerReferences?.some((o) => o.uid === corpus.metadata.uid && o.controller),
  );
}
