/**
 * The reconcile of one MidiCorpus: level-triggered and idempotent. It reads the world (informer caches, the Secret,
 * the database's limit), calls the pure planners, makes at most one write, and returns. Whatever the write changes
 * comes back as an informer event and triggers the next pass, so a crash or restart between two passes loses nothing:
 * Job names are deterministic, and the next pass finds what the last one created.
 *
 * A pass (sync):
 *   runAgain: when spec.rerun asks for a new run (plan/rerun.ts): stop the run in flight, wait for its pods to go, or
 *     reset the status for the new run; each is the pass's one write, and the pass ends there.
 *   observe: read only, each step ending in one case of the Observation (observation.ts) or handing on:
 *     1. checkSpec: what the API server cannot check (the CPU quantity, an image to run)       → invalid
 *     2. readSecret: the database's URL and budget key                                         → invalid
 *     3. readScanAnswer: the scan's totals, from status or from the finished scan pod
 *     4. findPeers: the other corpora on the same budget
 *     5. readLedger: the server's sessions (every consumer's claims, every other connection), or why not
 *     6. readLimits: max_connections (the spec's or the server's), reserved, headroom          → budgetUnknown
 *     7. planBudget: the budget of the database across every corpus and Job on it, less what the
 *        server's other consumers hold                                                         → planned
 *   recordBudget: the pass's only bookkeeping: which budget this corpus and its peers draw on, the plan's metrics.
 *   endVanishedBackends: the backends of this operator's pods that no longer exist are ended, once they have been
 *     seen so for a grace and the API server confirms the pod is gone (a database write, not a cluster write).
 *   decideChildWrite: scan (create the scan Job when a connection is free) or run (create the Indexed Job, then keep
 *     its parallelism and suspend in line with the budget and the spec): at most one write, then the pass ends.
 *     A write the API server refuses for good (400, 403, 404 of what it refers to, 422: runtime/errors.ts) does not
 *     fail the pass, which would retry it with backoff for ever: it is remembered with the corpus's generation, shown
 *     in WriteRejected, and tried again only after the slow rejectedRetryMs, or at once when the spec changes.
 *   status: computed from the observation and the pods' problems (plan/pod-problems.ts), written only when it
 *     differs; Events for the transitions.
 */
import type { V1Job, V1Pod } from '@kubernetes/client-node';
import type { Clock } from '../../common/clock.js';
import type { Logger } from '../../common/log.js';
import { describeError } from '../../contract/describe-error.js';
import { TlsRefusedError } from '../../contract/database-tls.js';
import { ConditionType, isFinalPhase, Reason } from '../api/v1alpha1/conditions.js';
import type { MidiCorpus } from '../api/v1alpha1/midicorpus.js';
import { connectionBudget, mergeLimits, type BudgetPlan, type DatabaseLimits } from '../budget/connection-budget.js';
import { REJECTED_RETRY_MS } from '../defaults.js';
import { cpuMillis } from '../plan/cpu.js';
import { runJob, scanJob } from '../plan/desired-jobs.js';
import { planRerun, rescanDueAt } from '../plan/rerun.js';
import { FINALIZER, GIVE_UP_MS, ROWS_RETRY_MS, isBeingDeleted, planDeletion } from '../plan/deletion.js';
import { corpusKey } from '../../contract/corpus-key.js';
import { podProblems } from '../plan/pod-problems.js';
import {
  computeStatus,
  jobFinished,
  sameStatus,
  setCondition,
  transitionEvents,
  type StatusInput,
} from '../plan/status.js';
import { apiRefusal, classifyApiError } from '../runtime/errors.js';
import { scrubSecrets } from '../../contract/describe-error.js';
import type { ClusterReader, ClusterWriter } from '../kube.js';
import type { DatabaseAccess, Progress } from './database.js';
import { JobExpectations } from './job-expectations.js';
import {
  checkSpec,
  claimOf,
  onDatabase,
  ownJob,
  ownedBy,
  readScanAnswer,
  recordedScanAnswer,
  shardsOf,
  statusInput,
  type Database,
  type Invalid,
  type LedgerOutcome,
  type Observation,
  type Peer,
} from './observation.js';
import { budgetInputs, podHoldsConnections, type CorpusClaim } from './observe.js';
import {
  ForeignCounts,
  foreignConnections,
  livePodNames,
  tailNamesPod,
  vanishedHolders,
  VanishedPods,
} from './server-ledger.js';

/** How often a corpus that is under way is looked at even without events (progress counts, missed events). */
export const RESYNC_MS = 30_000;
/** How soon a corpus with an unusable spec is looked at again (the Secret may appear). */
export const INVALID_RETRY_MS = 60_000;
/** Longest message of the WriteRejected condition (Events are cut at 1024 characters). */
const MAX_REJECTION_MESSAGE = 1000;
/** How soon a corpus waiting for its last run's pods to stop (before running again) is looked at without events. */
export const RERUN_WAIT_MS = 5_000;

export interface Caches {
  corpus(namespace: string, name: string): MidiCorpus | undefined;
  corpora(): readonly MidiCorpus[];
  jobs(): readonly V1Job[];
  pods(): readonly V1Pod[];
}

export interface ReconcilerOptions {
  caches: Caches;
  writer: ClusterWriter;
  reader: ClusterReader;
  database: DatabaseAccess;
  defaultImage: string;
  /** Queues another corpus (a peer on the same database whose share may have changed). */
  enqueue: (key: string) => void;
  /** After each pass that planned a budget: for metrics. */
  onBudget?: (budgetKey: string, plan: BudgetPlan) => void;
  /** The time of status conditions and of startTime and completionTime, and of the vanished pods' grace. */
  clock: Clock;
  log: Logger;
  /** How long a vanished pod's holder is seen before its backends are ended (default VANISHED_GRACE_MS). */
  vanishedGraceMs?: number;
  /** How soon a write refused for good is tried again with the same spec (default REJECTED_RETRY_MS). */
  rejectedRetryMs?: number;
  /** How long a pod may be unschedulable before PodsFailing says so (default UNSCHEDULABLE_GRACE_MS). */
  unschedulableGraceMs?: number;
}

/** A write the API server refused for good: for which generation of the spec, when, and what it said. */
interface Rejection {
  generation: number;
  at: number;
  condition: NonNullable<StatusInput['rejection']>;
}

export interface ReconcileResult {
  /** Look again after this long even if nothing happens. */
  requeueAfterMs?: number;
}

export class Reconciler {
  readonly expectations = new JobExpectations();
  /** Budget key of each corpus at its last pass: who to wake when it goes away. */
  private readonly budgetOf = new Map<string, string>();
  /** The last readings' foreign counts, per budget: a connection seen once moves no pod. */
  private readonly foreign = new ForeignCounts();
  /** Holders of pods that no longer exist, and since when. */
  private readonly vanished: VanishedPods;
  /** Budget keys on which the operator's role was refused ending backends: said once, at info. */
  private readonly refusedEnding = new Set<string>();
  /** Per corpus key: its last write refused for good, until a write succeeds or the spec changes. */
  private readonly rejected = new Map<string, Rejection>();

  constructor(private readonly o: ReconcilerOptions) {
    this.vanished = new VanishedPods(o.vanishedGraceMs);
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
      this.rejected.delete(key);
      return {};
    }
    const deletion = await this.deletion(corpus, key);
    if (deletion) return deletion;
    return this.sync(corpus, key);
  }

  /**
   * spec.deletionPolicy (plan/deletion.ts), one step a pass: put the Delete policy's finalizer on, or take it off; for
   * a corpus being deleted with it, stop its Jobs, wait for its pods, delete its rows and let it go. Undefined when
   * the corpus is not being deleted and its finalizer is as the policy wants: the pass goes on as usual. A corpus
   * being deleted is never scanned or run again.
   */
  private async deletion(corpus: MidiCorpus, key: string): Promise<ReconcileResult | undefined> {
    const uid = corpus.metadata.uid;
    const jobs = this.expectations
      .merge(this.o.caches.jobs())
      .filter((j) => j.metadata?.ownerReferences?.some((o) => o.uid === uid && o.controller));
    const owned = ownedBy(corpus, key, jobs, this.o.caches.pods());
    const now = new Date(this.o.clock.now());
    const step = planDeletion({ corpus, jobs, livePods: owned.pods.filter(podHoldsConnections), now });
    const log = this.o.log.child({ corpus: key });
    const event = (type: 'Normal' | 'Warning', reason: Reason, message: string) =>
      this.o.writer
        .emitEvent(corpus, { type, reason, message })
        .catch((err: unknown) => log.warn({ err: String(err), reason }, 'could not record an Event'));
    const finalizers = (corpus.metadata.finalizers ?? []).filter((f) => f !== FINALIZER);
    switch (step.kind) {
      case 'none':
        return isBeingDeleted(corpus) ? {} : undefined;
      case 'addFinalizer':
        await this.o.writer.setFinalizers(corpus, [...finalizers, FINALIZER]);
        return {};
      case 'removeFinalizer':
        if (step.why === 'gaveUp') {
          const message = `The rows of corpus key ${corpusKey(corpus.metadata.namespace, corpus.metadata.name)} could not be deleted within ${GIVE_UP_MS / 60_000} minutes: the MidiCorpus is let go and its rows are kept (delete them with SQL, or create the corpus again and delete it once the database is back).`;
          log.warn({}, message);
          await event('Warning', Reason.RowsNotDeleted, message);
        }
        await this.o.writer.setFinalizers(corpus, finalizers);
        return {};
      case 'stopJob': {
        const { namespace, name } = step.job.metadata!;
        await this.o.writer.deleteJob(namespace!, name!);
        if (step.job.metadata?.uid) this.expectations.forget(step.job.metadata.uid);
        log.info({ job: name }, "deleting the corpus's Job before deleting its rows");
        return { requeueAfterMs: RERUN_WAIT_MS };
      }
      case 'wait':
        return { requeueAfterMs: RERUN_WAIT_MS };
      case 'deleteRows':
        return this.deleteRows(corpus, key, finalizers, log, event);
    }
  }

  /** The Delete policy's last step: the rows, then the finalizer; or, when the database says no, status and an Event. */
  private async deleteRows(
    corpus: MidiCorpus,
    key: string,
    finalizers: string[],
    log: Logger,
    event: (type: 'Normal' | 'Warning', reason: Reason, message: string) => Promise<void>,
  ): Promise<ReconcileResult> {
    const corpusKeyText = corpusKey(corpus.metadata.namespace, corpus.metadata.name);
    let failure: string;
    const resolution = await this.o.database.resolve(corpus);
    if (resolution.ok) {
      try {
        const files = await this.o.database.deleteCorpusRows(resolution.budgetKey, resolution, corpusKeyText);
        log.info({ files }, "deleted the corpus's rows (spec.deletionPolicy Delete)");
        await event('Normal', Reason.RowsDeleted, `Deleted the rows of corpus key ${corpusKeyText} (${files} files).`);
        await this.o.writer.setFinalizers(corpus, finalizers);
        for (const peer of this.peersOf(key)) this.o.enqueue(peer);
        return {};
      } catch (err) {
        failure = describeError(err);
      }
    } else {
      failure = resolution.message;
    }
    const message =
      `spec.deletionPolicy is Delete but the rows of corpus key ${corpusKeyText} could not be deleted (${failure}). ` +
      `Trying again every ${ROWS_RETRY_MS / 1000} s; after ${GIVE_UP_MS / 60_000} minutes the MidiCorpus is let go with its rows kept. ` +
      'To let it go now and keep the rows: set spec.deletionPolicy to Keep.';
    log.warn({ err: failure }, "could not delete the corpus's rows");
    const now = new Date(this.o.clock.now());
    const status = {
      ...corpus.status,
      conditions: setCondition(
        corpus.status?.conditions ?? [],
        {
          type: ConditionType.Progressing,
          status: 'True',
          reason: Reason.RowsNotDeleted,
          message,
          observedGeneration: corpus.metadata.generation ?? 0,
        },
        now,
      ),
    };
    if (!sameStatus(corpus.status, status)) {
      await this.o.writer.replaceStatus({ ...corpus, status });
      for (const e of transitionEvents(corpus.status, status)) await event('Warning', e.reason, e.message);
    }
    return { requeueAfterMs: ROWS_RETRY_MS };
  }

  private async sync(corpus: MidiCorpus, key: string): Promise<ReconcileResult> {
    const again = await this.runAgain(corpus, key);
    if (again) return again;
    const obs = await this.observe(corpus, key);
    this.recordBudget(obs);
    const log = this.o.log.child({ corpus: key });
    await this.endVanishedBackends(obs, log);
    const peers = onDatabase(obs) ? obs.peers.map((p) => p.key) : [];

    const write = this.decideChildWrite(obs);
    let rejection = this.rejectionOf(key, corpus.metadata.generation ?? 0);
    const retryMs = this.o.rejectedRetryMs ?? REJECTED_RETRY_MS;
    if (write && (!rejection || this.o.clock.now() >= rejection.at + retryMs)) {
      try {
        const job = await write.apply();
        this.rejected.delete(key);
        this.expectations.record(job);
        log.info(
          { job: job.metadata?.name, parallelism: job.spec?.parallelism, suspend: job.spec?.suspend },
          write.what,
        );
        for (const peer of peers) this.o.enqueue(peer);
        return {};
      } catch (err) {
        if (classifyApiError(err, { missingTarget: write.missingTarget }) !== 'permanent') throw err;
        rejection = this.reject(key, corpus.metadata.generation ?? 0, write, err, retryMs);
        log.warn(
          { job: write.job, reason: rejection.condition.reason, retryInMs: retryMs },
          `the API server refused ${write.what}: trying again after the retry interval or when the spec changes`,
        );
      }
    }

    const now = new Date(this.o.clock.now());
    const problems =
      obs.case === 'final'
        ? undefined
        : podProblems(obs.pods, { now: now.getTime(), unschedulableGraceMs: this.o.unschedulableGraceMs });
    const inputOf = (files: Progress | undefined): StatusInput => ({
      ...statusInput(obs, now, files),
      ...(rejection ? { rejection: rejection.condition } : {}),
      ...(problems ? { podProblems: problems.problems } : {}),
    });
    let status = computeStatus(inputOf(await this.progress(obs)));
    const shards = onDatabase(obs) ? shardsOf(obs.scan) : undefined;
    if (isFinalPhase(status.phase) && !isFinalPhase(corpus.status?.phase) && shards !== undefined) {
      // The last word on a corpus: its counts are never looked at again, so they must be exact, not the throttled
      // count from up to 30 s ago. A failure throws: the pass is retried (with backoff) rather than finishing wrong.
      status = computeStatus(inputOf(await this.progress(obs, { force: true, strict: true })));
    }
    if (!sameStatus(corpus.status, status)) {
      await this.o.writer.replaceStatus({ ...corpus, status });
      // What this corpus claims from the budget shows in its status (a scan waiting for a connection, shards done, a
      // suspension, a finish): the corpora sharing the budget must look again, e.g. to shrink and make room for this
      // one's scan. Only on a change, so the wake-ups end when the statuses settle.
      for (const peer of peers) this.o.enqueue(peer);
      for (const event of transitionEvents(corpus.status, status)) {
        await this.o.writer
          .emitEvent(corpus, event)
          .catch((err: unknown) => log.warn({ err: String(err), reason: event.reason }, 'could not record an Event'));
      }
      if (corpus.status?.phase !== status.phase)
        log.info({ from: corpus.status?.phase, to: status.phase }, 'phase changed');
    }
    // A refused write is tried again when its interval is up; an unschedulable pod reported when its grace is.
    const soonest = (ms: number | undefined): ReconcileResult => {
      const due = [
        ms,
        rejection ? Math.max(0, rejection.at + retryMs - now.getTime()) : undefined,
        problems?.recheckInMs,
      ].filter((x): x is number => x !== undefined);
      return due.length > 0 ? { requeueAfterMs: Math.min(...due) } : {};
    };
    if (status.phase === 'Invalid') return soonest(INVALID_RETRY_MS);
    if (isFinalPhase(status.phase)) {
      // A scheduled rescan (spec.rescanEverySeconds) is looked at when it is due; otherwise a final corpus waits for
      // a change of its own.
      const due = rescanDueAt({ ...corpus, status });
      return due === undefined ? {} : { requeueAfterMs: Math.max(0, due - this.o.clock.now()) };
    }
    return soonest(RESYNC_MS);
  }

  /** The corpus's standing refusal, unless its spec has changed since (then the write is tried at once). */
  private rejectionOf(key: string, generation: number): Rejection | undefined {
    const r = this.rejected.get(key);
    if (r && r.generation !== generation) {
      this.rejected.delete(key);
      return undefined;
    }
    return r;
  }

  /** Remembers a refusal for good, with the condition that tells the user about it (no secret, bounded). */
  private reject(key: string, generation: number, write: ChildWrite, err: unknown, retryMs: number): Rejection {
    const refusal = apiRefusal(err);
    const code = refusal?.code ?? 0;
    const reason = REFUSAL_REASONS.find((r) => r === refusal?.reason) ?? REFUSAL_REASON_OF_CODE[code] ?? Reason.Invalid;
    const said = scrubSecrets(refusal?.message ?? 'no message')
      .replace(/\s+/g, ' ')
      .replace(/([^.])$/, '$1.');
    const tail = ` ${REFUSAL_ADVICE[reason] ?? REFUSAL_ADVICE.Invalid}: the operator tries again every ${Math.round(retryMs / 1000)} s, and at once when the spec changes.`;
    const head = `The API server refused ${write.what} ${write.job} (${code} ${refusal?.reason ?? reason}): `;
    const room = MAX_REJECTION_MESSAGE - head.length - tail.length;
    const body = said.length <= room ? said : `${said.slice(0, room - 1)}…`;
    const rejection = { generation, at: this.o.clock.now(), condition: { reason, message: head + body + tail } };
    this.rejected.set(key, rejection);
    return rejection;
  }

  /**
   * A run again (spec.rerun above status.observedRerun), one step a pass: delete the current run's unfinished Job, wait
   * for the corpus's pods to let go of their connections, then reset the status to the new run's Pending. Undefined
   * when no run again is asked for: the pass goes on as usual.
   */
  private async runAgain(corpus: MidiCorpus, key: string): Promise<ReconcileResult | undefined> {
    const owned = ownedBy(corpus, key, this.expectations.merge(this.o.caches.jobs()), this.o.caches.pods());
    const now = new Date(this.o.clock.now());
    const step = planRerun({
      corpus,
      scanJob: owned.scanJob,
      runJob: owned.runJob,
      livePods: owned.pods.filter(podHoldsConnections),
      now,
    });
    const log = this.o.log.child({ corpus: key });
    switch (step.kind) {
      case 'none':
        return undefined;
      case 'stop': {
        const { namespace, name, uid } = step.job.metadata!;
        await this.o.writer.deleteJob(namespace!, name!);
        if (uid) this.expectations.forget(uid);
        log.info(
          { job: name, rerun: corpus.spec.rerun },
          'deleting the Job of the run in flight: spec.rerun asks for a new run',
        );
        await this.o.writer
          .emitEvent(corpus, {
            type: 'Normal',
            reason: Reason.RunSuperseded,
            message: `spec.rerun is ${corpus.spec.rerun}: stopping Job ${name} of the run in flight (what it recorded is kept) before running again.`,
          })
          .catch((err: unknown) => log.warn({ err: String(err) }, 'could not record an Event'));
        // The Job's deletion and its pods' come back as informer events; the look again is for a missed one.
        return { requeueAfterMs: RERUN_WAIT_MS };
      }
      case 'wait':
        log.debug({ pods: step.pods }, "waiting for the last run's pods to stop before running again");
        return { requeueAfterMs: RERUN_WAIT_MS };
      case 'start': {
        await this.o.writer.replaceStatus({ ...corpus, status: step.status });
        for (const event of transitionEvents(corpus.status, step.status)) {
          await this.o.writer
            .emitEvent(corpus, event)
            .catch((err: unknown) => log.warn({ err: String(err), reason: event.reason }, 'could not record an Event'));
        }
        log.info(
          { run: step.status.run, rerun: step.status.observedRerun, from: corpus.status?.phase },
          'running the corpus again',
        );
        for (const peer of this.peersOf(key)) this.o.enqueue(peer);
        return {};
      }
    }
  }

  /**
   * Steps 1–6: reads only. Nothing is written to the cluster and nothing is remembered here: that is recordBudget's
   * (JobExpectations.merge only drops the copies of Jobs that the cache has caught up with).
   */
  private async observe(corpus: MidiCorpus, key: string): Promise<Observation> {
    const jobs = this.expectations.merge(this.o.caches.jobs());
    const owned = ownedBy(corpus, key, jobs, this.o.caches.pods());
    if (isFinalPhase(corpus.status?.phase)) return { ...owned, case: 'final' };

    const spec = checkSpec(corpus, this.o.defaultImage);
    if (!spec.ok) return { ...owned, case: 'invalid', invalid: spec.invalid };

    const secret = await this.readSecret(corpus);
    if (!secret.ok) return { ...owned, case: 'invalid', invalid: secret.invalid };
    const { database } = secret;

    const scan = readScanAnswer(owned);
    const peers = await this.findPeers(corpus, database);
    const usable = peers.filter((p): p is Peer & { cpu: number } => p.cpu !== undefined);

    // Before the limits: the same connection refreshes max_connections, so the limits seldom need one of their own.
    const ledger = await this.readLedger(corpus, database);
    // A refused handshake is the runners' fate too (they would fail their shards at once): start none.
    if (!ledger.ok && ledger.tlsRefused)
      return {
        ...owned,
        case: 'budgetUnknown',
        database,
        scan,
        peers,
        reason: `The database refused the TLS connection: ${ledger.reason}. Nothing new is started meanwhile.`,
        tlsRefused: true,
      };
    const limits = await this.readLimits(database, [corpus, ...usable.map((p) => p.corpus)]);
    if (!limits.ok)
      return {
        ...owned,
        case: 'budgetUnknown',
        database,
        scan,
        peers,
        reason: limits.reason,
        tlsRefused: limits.tlsRefused,
      };

    const claim = claimOf(corpus, owned, scan, spec.cpu);
    const plan = this.planBudget(database, limits.limits, claim, usable, jobs, ledger);
    return { ...owned, case: 'planned', database, scan, peers, claim, ledger, plan };
  }

  /** Step 2: the database's URL and budget key, from the Secret the spec names. */
  private async readSecret(
    corpus: MidiCorpus,
  ): Promise<{ ok: true; database: Database } | { ok: false; invalid: Invalid }> {
    const resolution = await this.o.database.resolve(corpus);
    if (!resolution.ok) return { ok: false, invalid: { reason: resolution.reason, message: resolution.message } };
    return { ok: true, database: resolution };
  }

  /** Step 4: the other live corpora whose Secret leads to the same budget (one whose Secret cannot be read is not one). */
  private async findPeers(corpus: MidiCorpus, database: Database): Promise<Peer[]> {
    const peers: Peer[] = [];
    for (const peer of this.o.caches.corpora()) {
      if (peer.metadata.uid === corpus.metadata.uid) continue;
      const r = await this.o.database.resolve(peer).catch(() => undefined);
      if (!r?.ok || r.budgetKey !== database.budgetKey) continue;
      peers.push({
        corpus: peer,
        key: corpusKey(peer.metadata.namespace, peer.metadata.name),
        url: r.url,
        cpu: cpuMillis(peer.spec.runner.resources.requests?.cpu),
      });
    }
    return peers;
  }

  /**
   * Step 5: the server's sessions, through the corpus's ledger database. When they cannot be read the budget falls
   * back to counting the operator's own pods only, and status says why; the runners' admission still checks the
   * server itself.
   */
  private async readLedger(corpus: MidiCorpus, database: Database): Promise<LedgerOutcome> {
    try {
      const reading = await this.o.database.ledger(database.budgetKey, database, corpus.spec.database.ledgerDatabase);
      return { ok: true, reading };
    } catch (err) {
      return { ok: false, reason: describeError(err), tlsRefused: err instanceof TlsRefusedError };
    }
  }

  /**
   * Step 6: the limits of the database, the strictest of what the corpora on it say. max_connections is the spec's,
   * else the server's, asked at most once a pass; unknown when the server cannot be reached.
   */
  private async readLimits(
    database: Database,
    corpora: readonly MidiCorpus[],
  ): Promise<{ ok: true; limits: DatabaseLimits } | { ok: false; reason: string; tlsRefused: boolean }> {
    const all: DatabaseLimits[] = [];
    let detected: number | undefined;
    try {
      for (const c of corpora) {
        let max = c.spec.database.maxConnections;
        if (max === undefined) {
          detected ??= await this.o.database.maxConnections(database.budgetKey, database);
          max = detected;
        }
        all.push({
          maxConnections: max,
          reservedConnections: c.spec.database.reservedConnections,
          headroom: c.spec.database.headroom,
        });
      }
    } catch (err) {
      if (err instanceof TlsRefusedError)
        return {
          ok: false,
          reason: `The database refused the TLS connection: ${err.message}. Nothing new is started meanwhile.`,
          tlsRefused: true,
        };
      return {
        ok: false,
        reason: `max_connections of the database is unknown (${describeError(err)}); set spec.database.maxConnections or make the database reachable. Nothing new is started meanwhile.`,
        tlsRefused: false,
      };
    }
    return { ok: true, limits: mergeLimits(all) };
  }

  /**
   * Step 7: the budget of the database across the claims of its live corpora (a peer's from its status: only this
   * corpus's scan pod is read) and every Job and pod drawing on it, less the connections of the server's other
   * consumers (none known when the ledger could not be read).
   */
  private planBudget(
    database: Database,
    limits: DatabaseLimits,
    claim: CorpusClaim,
    peers: ReadonlyArray<Peer & { cpu: number }>,
    jobs: readonly V1Job[],
    ledger: LedgerOutcome,
  ): BudgetPlan {
    const claims = [
      claim,
      ...peers.map((p) =>
        claimOf(
          p.corpus,
          { scanJob: ownJob(jobs, p.corpus, 'scan'), runJob: ownJob(jobs, p.corpus, 'run') },
          recordedScanAnswer(p.corpus),
          p.cpu,
        ),
      ),
    ];
    const pods = this.o.caches.pods();
    const inputs = budgetInputs(database.budgetKey, claims, jobs, pods, {
      parallelismOf: (j) => j.spec?.parallelism ?? 1,
    });
    const foreign = ledger.ok
      ? this.foreign.settle(
          database.budgetKey,
          ledger.reading,
          foreignConnections(ledger.reading.picture, pods, database.budgetKey),
          this.o.clock.now(),
        )
      : 0;
    return connectionBudget(limits, inputs, { foreign });
  }

  /**
   * The pass's bookkeeping, the one place it changes the reconciler's state: the budget this corpus and its peers
   * draw on (whom to wake when one of them changes or goes), and the planned budget for the metrics.
   */
  private recordBudget(obs: Observation): void {
    if (!onDatabase(obs)) return;
    this.budgetOf.set(obs.key, obs.database.budgetKey);
    for (const peer of obs.peers) this.budgetOf.set(peer.key, obs.database.budgetKey);
    if (obs.case === 'planned') this.o.onBudget?.(obs.database.budgetKey, obs.plan);
  }

  /**
   * The backends of this operator's pods that no longer exist: they count as foreign until they are gone (the
   * server's keepalives would take up to half a minute, a peer that vanished without a word much longer), and are
   * ended once seen so for the grace and confirmed by the API server, in case the pods cache is behind. Failures are
   * logged, never the pass's: the budget counts the backends either way.
   */
  private async endVanishedBackends(obs: Observation, log: Logger): Promise<void> {
    if (obs.case !== 'planned' || !obs.ledger.ok) return;
    const { budgetKey, url } = obs.database;
    const corpora = [{ corpus: obs.corpus, url }, ...obs.peers.map((p) => ({ corpus: p.corpus, url: p.url }))];
    const candidates = vanishedHolders(obs.ledger.reading.sessions, corpora, this.o.caches.pods());
    for (const holder of this.vanished.due(budgetKey, candidates, this.o.clock.now())) {
      this.vanished.attempted(budgetKey, holder, this.o.clock.now());
      const { namespace, name, uid } = holder.corpus.metadata;
      try {
        const listed = await this.o.reader.corpusPods(namespace, uid!);
        if (livePodNames(listed).some((n) => tailNamesPod(holder.pod, n))) {
          log.debug({ pod: holder.pod }, "a holder's pod is missing from the cache but exists: its backends stay");
          continue;
        }
        const r = await this.o.database.endBackends(budgetKey, obs.database, holder.applicationName, holder.pids);
        if (r.denied) {
          if (!this.refusedEnding.has(budgetKey)) {
            this.refusedEnding.add(budgetKey);
            log.info(
              { pod: holder.pod, budget: budgetKey },
              "the operator's role may not end the backends of pods that no longer exist (it needs their role or " +
                'pg_signal_backend): they count against the budget until the server drops them',
            );
          }
          continue;
        }
        if (r.ended === 0) continue;
        const message = `Ended ${r.ended} database connection(s) of pod ${holder.pod}, which no longer exists: they held connections of this budget.`;
        log.info(
          { pod: holder.pod, ended: r.ended, of: `${namespace}/${name}` },
          'ended the backends of a vanished pod',
        );
        await this.o.writer
          .emitEvent(holder.corpus, { type: 'Normal', reason: Reason.VanishedPodConnectionsEnded, message })
          .catch((err: unknown) => log.warn({ err: String(err) }, 'could not record an Event'));
      } catch (err) {
        log.warn({ pod: holder.pod, err: describeError(err) }, 'could not end the backends of a vanished pod');
      }
    }
  }

  /** The one write to the children this pass makes, if any: only once the budget is planned. */
  private decideChildWrite(obs: Observation): ChildWrite | undefined {
    if (obs.case !== 'planned') return undefined;
    const { corpus, database, plan } = obs;
    const mine = plan.corpora.get(obs.key)!;
    const options = { defaultImage: this.o.defaultImage, budgetKey: database.budgetKey };
    const shards = shardsOf(obs.scan);

    if (shards === undefined) {
      // Scan.
      if (obs.scanJob || corpus.spec.suspend || obs.scan.kind === 'unusable' || !mine.scanFits) return undefined;
      const job = scanJob(corpus, options);
      return { what: 'creating the scan Job', job: job.metadata!.name!, apply: () => this.o.writer.createJob(job) };
    }
    // Run. Nothing to run for an empty corpus; a finished scan without its totals in status waits for them.
    if (shards === 0 || obs.scan.kind !== 'recorded') return undefined;
    if (!obs.runJob) {
      const job = runJob(corpus, { ...options, shards, parallelism: mine.parallelism, perPod: mine.perPod });
      return { what: 'creating the run Job', job: job.metadata!.name!, apply: () => this.o.writer.createJob(job) };
    }
    if (jobFinished(obs.runJob) !== undefined) return undefined;
    const parallelism = mine.parallelism;
    const suspend = corpus.spec.suspend;
    if ((obs.runJob.spec?.parallelism ?? 1) === parallelism && (obs.runJob.spec?.suspend ?? false) === suspend)
      return undefined;
    const { namespace, name } = obs.runJob.metadata!;
    return {
      what: "setting the run Job's parallelism of",
      job: name!,
      // A 404 here means the Job was deleted after the cache saw it: the next pass creates it again.
      missingTarget: true,
      apply: () => this.o.writer.patchJob(namespace!, name!, { parallelism, suspend }),
    };
  }

  /** Files done and failed, from the database; `strict`: a failure throws instead of leaving the counts as they were. */
  private async progress(
    obs: Observation,
    options: { force?: boolean; strict?: boolean } = {},
  ): Promise<Progress | undefined> {
    if (!onDatabase(obs)) return undefined;
    // Once scanned, even with no shards: a run again over an unchanged corpus still has its files' counts to show.
    if (shardsOf(obs.scan) === undefined) return undefined;
    const { corpus, database } = obs;
    try {
      return await this.o.database.progress(
        database.budgetKey,
        database,
        corpusKey(corpus.metadata.namespace, corpus.metadata.name),
        { force: options.force },
      );
    } catch (err) {
      if (options.strict) throw err;
      this.o.log.debug({ corpus: obs.key, err: String(err) }, 'progress counts unavailable');
      return undefined;
    }
  }
}

/** One write to a child Job: what it is (for logs and the WriteRejected message), and the call. */
interface ChildWrite {
  what: string;
  /** The Job's name. */
  job: string;
  /** A 404 would mean the Job itself is gone (the cache is behind), not something it refers to. */
  missingTarget?: boolean;
  apply: () => Promise<V1Job>;
}

/** The API's reasons that WriteRejected carries as they are; others are named after their HTTP code. */
const REFUSAL_REASONS = [Reason.Invalid, Reason.Forbidden, Reason.NotFound, Reason.BadRequest] as const;
/** What the user can do about each refusal. */
const REFUSAL_ADVICE: Partial<Record<Reason, string>> = {
  [Reason.Invalid]: 'Fix the spec',
  [Reason.BadRequest]: 'Fix the spec',
  [Reason.Forbidden]:
    "Let the operator do it (its ServiceAccount's role, a ResourceQuota, an admission policy), or change the spec",
  [Reason.NotFound]: 'Create what it refers to, or change the spec',
};
const REFUSAL_REASON_OF_CODE: Record<number, Reason> = {
  400: Reason.BadRequest,
  403: Reason.Forbidden,
  404: Reason.NotFound,
  422: Reason.Invalid,
};

function splitKey(key: string): [string, string] {
  const i = key.indexOf('/');
  return [key.slice(0, i), key.slice(i + 1)];
}
