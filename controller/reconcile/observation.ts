/**
 * What one reconcile pass has learned about a corpus, as the case it is in, and the pure steps that learn it. The
 * reconciler runs the steps (reconciler.ts, observe) and decides from the case; the status planner gets its input
 * from it (statusInput), so the two never list the same facts twice.
 */
import type { V1Job, V1Pod } from '@kubernetes/client-node';
import type { LedgerReading } from '../../contract/ledger.js';
import { poolSizeFor } from '../../contract/pool-sizing.js';
import { Reason, isFinalPhase } from '../api/v1alpha1/conditions.js';
import type { MidiCorpus } from '../api/v1alpha1/midicorpus.js';
import type { BudgetPlan } from '../budget/connection-budget.js';
import { cpuMillis } from '../plan/cpu.js';
import { LABEL_CORPUS_UID, LABEL_ROLE, childName, type ChildRole } from '../plan/names.js';
import { corpusKey } from '../../contract/corpus-key.js';
import { currentRun } from '../plan/rerun.js';
import { parseScanResult, scanTerminationMessage, type ScanResult } from '../plan/scan-result.js';
import { failedShards, jobFinished, type BudgetObservation, type StatusInput } from '../plan/status.js';
import type { Progress, Resolution } from './database.js';
import { isTerminating, podHoldsConnections, type CorpusClaim } from './observe.js';

/** What every pass sees of a corpus: the object and the Jobs and pods it owns (the status planner's names). */
export interface Owned extends Pick<StatusInput, 'corpus' | 'scanJob' | 'runJob'> {
  /** `namespace/name`: the work queue's key. */
  key: string;
  pods: V1Pod[];
}

/** Why the spec cannot be acted on (an InvalidSpec reason and message). */
export type Invalid = NonNullable<StatusInput['invalid']>;

/** A corpus's database, from its Secret. */
export type Database = Extract<Resolution, { ok: true }>;

/** The scan's answer, as far as this pass knows it. */
export type ScanAnswer =
  /** Recorded in status by an earlier pass: the scan pod is never read again. */
  | { kind: 'recorded'; shards: number }
  /** Read from the finished scan pod's termination message this pass. */
  | { kind: 'read'; result: ScanResult }
  /** The scan succeeded but its answer is unusable (or lost): the corpus fails. */
  | { kind: 'unusable'; problem: string }
  /** No answer yet: the scan has not run, runs, or its pod is not in the cache yet. */
  | { kind: 'awaited' };

/** Another corpus drawing on the same budget. */
export interface Peer {
  corpus: MidiCorpus;
  key: string;
  /** The URL its pods connect with (from its Secret): never logged or written anywhere. */
  url: string;
  /** Millicores of its runner pods; undefined when its CPU request is unusable (then it claims nothing). */
  cpu: number | undefined;
}

/** The server's ledger as this pass read it, or why it could not (a scrubbed message, no URL). */
export type LedgerOutcome =
  | { ok: true; reading: LedgerReading }
  | { ok: false; reason: string; /** The server refused the TLS handshake. */ tlsRefused?: boolean };

/** The cases of a pass. Each carries what is known in it; the decisions switch on `case`. */
export type Observation =
  /** Succeeded or Failed: nothing more is looked at, nothing is started. */
  | (Owned & { case: 'final' })
  /** The spec cannot be acted on: nothing is started until it is fixed (or the Secret appears). */
  | (Owned & { case: 'invalid'; invalid: Invalid })
  /** The database is known but its max_connections is not: nothing new is started meanwhile. */
  | (Owned & {
      case: 'budgetUnknown';
      database: Database;
      scan: ScanAnswer;
      peers: Peer[];
      reason: string;
      /** The server refused the TLS handshake: a configuration problem, not an outage. */
      tlsRefused: boolean;
    })
  /** The budget of the database is planned across every corpus and Job on it: children may be written. */
  | (Owned & {
      case: 'planned';
      database: Database;
      scan: ScanAnswer;
      peers: Peer[];
      claim: CorpusClaim;
      /** What the plan's `foreign` was read from. */
      ledger: LedgerOutcome;
      plan: BudgetPlan;
    });

/** The cases in which the corpus's database is known. */
export type OnDatabase = Extract<Observation, { case: 'budgetUnknown' | 'planned' }>;

export function onDatabase(obs: Observation): obs is OnDatabase {
  return obs.case === 'budgetUnknown' || obs.case === 'planned';
}

/** The corpus and what it owns among the Jobs (the operator's newest copies) and pods. */
export function ownedBy(corpus: MidiCorpus, key: string, jobs: readonly V1Job[], pods: readonly V1Pod[]): Owned {
  const uid = corpus.metadata.uid!;
  return {
    corpus,
    key,
    scanJob: ownJob(jobs, corpus, 'scan'),
    runJob: ownJob(jobs, corpus, 'run'),
    pods: pods.filter((p) => p.metadata?.labels?.[LABEL_CORPUS_UID] === uid),
  };
}

/** Step 1: what the API server's schema cannot check. The runner pods' CPU, in millicores, when the spec is usable. */
export function checkSpec(
  corpus: MidiCorpus,
  defaultImage: string,
): { ok: true; cpu: number } | { ok: false; invalid: Invalid } {
  const cpu = cpuMillis(corpus.spec.runner.resources.requests?.cpu);
  if (cpu === undefined)
    return {
      ok: false,
      invalid: {
        reason: Reason.InvalidCpuRequest,
        message: `runner.resources.requests.cpu "${String(corpus.spec.runner.resources.requests?.cpu)}" is not a positive CPU quantity.`,
      },
    };
  if (!corpus.spec.runner.image && !defaultImage)
    return {
      ok: false,
      invalid: {
        reason: Reason.NoRunnerImage,
        message: 'No runner image: set spec.runner.image (the operator was started without --runner-image).',
      },
    };
  return { ok: true, cpu };
}

/** The scan's answer as recorded in the corpus's status; all that is looked at for a peer. */
export function recordedScanAnswer(corpus: MidiCorpus): ScanAnswer {
  const total = corpus.status?.shards?.total;
  return total === undefined ? { kind: 'awaited' } : { kind: 'recorded', shards: total };
}

/** Step 3: the scan's answer: recorded in status once; read from the scan pod until then. */
export function readScanAnswer(owned: Owned): ScanAnswer {
  const recorded = recordedScanAnswer(owned.corpus);
  if (recorded.kind === 'recorded' || jobFinished(owned.scanJob) !== 'Complete') return recorded;
  const { namespace, name } = owned.corpus.metadata;
  // This run's scan pods only: an earlier run's, kept with its Job by retention, told that run's answer.
  const scanJobName = owned.scanJob?.metadata?.name;
  const scanPods = owned.pods.filter(
    (p) =>
      p.metadata?.labels?.[LABEL_ROLE] === 'scan' &&
      p.metadata.ownerReferences?.some((o) => o.kind === 'Job' && o.name === scanJobName),
  );
  const message = scanTerminationMessage(scanPods);
  if (message !== undefined) {
    const parsed = parseScanResult(message, corpusKey(namespace, name));
    return parsed.ok ? { kind: 'read', result: parsed.result } : { kind: 'unusable', problem: parsed.message };
  }
  // The pod cache may lag behind the Job's: only when no scan pod is still running is the answer lost.
  if (!scanPods.some(podHoldsConnections))
    return {
      kind: 'unusable',
      problem: 'the scan pod is gone before its answer was read; bump spec.rerun to scan again',
    };
  return { kind: 'awaited' };
}

/** Shards of the corpus's run, once the scan has told them. */
export function shardsOf(scan: ScanAnswer): number | undefined {
  if (scan.kind === 'recorded') return scan.shards;
  if (scan.kind === 'read') return scan.result.shards;
  return undefined;
}

/** What a corpus wants from the budget now. */
export function claimOf(
  corpus: MidiCorpus,
  jobs: Pick<Owned, 'scanJob' | 'runJob'>,
  scan: ScanAnswer,
  cpu: number,
): CorpusClaim {
  const perPod = poolSizeFor(cpu, corpus.spec.runner.pool).max;
  const phase = corpus.status?.phase;
  const stopped =
    isFinalPhase(phase) ||
    phase === 'Invalid' ||
    corpus.spec.suspend ||
    scan.kind === 'unusable' ||
    jobFinished(jobs.scanJob) === 'Failed' ||
    jobFinished(jobs.runJob) !== undefined;
  if (stopped) return { corpus, perPod, demand: 0, scanPending: false };
  const shards = shardsOf(scan);
  if (shards === undefined) return { corpus, perPod, demand: 0, scanPending: true };
  const done =
    (jobs.runJob?.status?.succeeded ?? corpus.status?.shards?.succeeded ?? 0) +
    (failedShards(jobs.runJob) ?? corpus.status?.shards?.failed ?? 0);
  return {
    corpus,
    perPod,
    demand: Math.max(0, Math.min(corpus.spec.runner.maxParallelism, shards - done)),
    scanPending: false,
  };
}

/** The status planner's input: what the pass observed, at `now`, with the files counted in the database if read. */
export function statusInput(obs: Observation, now: Date, files: Progress | undefined): StatusInput {
  const runPods = obs.pods.filter((p) => p.metadata?.labels?.[LABEL_ROLE] === 'run' && podHoldsConnections(p));
  const input: StatusInput = {
    corpus: obs.corpus,
    now,
    scanJob: obs.scanJob,
    runJob: obs.runJob,
    runPods: {
      active: runPods.filter((p) => !isTerminating(p)).length,
      terminating: runPods.filter(isTerminating).length,
    },
    files,
  };
  switch (obs.case) {
    case 'final':
      return input;
    case 'invalid':
      return { ...input, invalid: obs.invalid };
    case 'budgetUnknown':
      return {
        ...input,
        ...scanFacts(obs.scan),
        budgetUnknown: obs.reason,
        ...(obs.tlsRefused ? { budgetUnknownReason: Reason.DatabaseTlsRefused } : {}),
      };
    case 'planned':
      return { ...input, ...scanFacts(obs.scan), budget: budgetObservation(obs) };
  }
}

function scanFacts(scan: ScanAnswer): Pick<StatusInput, 'scanResult' | 'scanProblem'> {
  if (scan.kind === 'read') return { scanResult: scan.result };
  if (scan.kind === 'unusable') return { scanProblem: scan.problem };
  return {};
}

function budgetObservation(obs: Extract<Observation, { case: 'planned' }>): BudgetObservation {
  const mine = obs.plan.corpora.get(obs.key)!;
  const l = obs.plan.limits;
  const shards = shardsOf(obs.scan);
  const budget: BudgetObservation = {
    figures: {
      poolKey: obs.database.budgetKey,
      limit: l.maxConnections,
      reserved: l.reservedConnections,
      headroom: l.headroom,
      operator: obs.plan.operator,
      foreignConnections: obs.plan.foreign,
      allowance: obs.plan.allowance,
      share: mine.share,
      perPod: mine.perPod,
      parallelism: mine.parallelism,
      inUse: mine.inUse,
    },
    ledger: obs.ledger.ok
      ? { read: true, exact: obs.ledger.reading.picture.exact }
      : { read: false, reason: obs.ledger.reason },
    demand: obs.claim.demand,
    planned: mine.planned,
    corpora: 1 + obs.peers.length,
    scanWaiting: shards === undefined && !obs.scanJob && !mine.scanFits && !obs.corpus.spec.suspend,
  };
  if (mine.limitedBy && shards !== undefined) budget.limitedBy = mine.limitedBy;
  return budget;
}

/**
 * The corpus's Job of that role in the run its status is on (a run again has its own names): the deterministic name,
 * owned by this very corpus (not a namesake being deleted).
 */
export function ownJob(jobs: readonly V1Job[], corpus: MidiCorpus, role: ChildRole): V1Job | undefined {
  const name = childName(corpus.metadata.name, role, currentRun(corpus));
  return jobs.find(
    (j) =>
      j.metadata?.namespace === corpus.metadata.namespace &&
      j.metadata?.name === name &&
      j.metadata?.ownerReferences?.some((o) => o.uid === corpus.metadata.uid && o.controller),
  );
}
