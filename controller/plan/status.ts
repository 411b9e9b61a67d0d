/**
 * A MidiCorpus's status, computed from what the reconcile observed. Pure: the same observation gives the same status,
 * so the reconcile can compare it with the stored one and write only when something changed. Conditions keep their
 * lastTransitionTime while their status stays the same (as metav1's SetStatusCondition does).
 */
import type { V1Job } from '@kubernetes/client-node';
import { ConditionType, Reason, isFinalPhase, type Phase } from '../api/v1alpha1/conditions.js';
import type { BudgetStatus, MidiCorpus, MidiCorpusCondition, MidiCorpusStatus } from '../api/v1alpha1/midicorpus.js';
import type { LimitKind } from '../budget/connection-budget.js';
import { podProblemsSummary, type PodProblem } from './pod-problems.js';
import type { ScanResult } from './scan-result.js';

/** How the other consumers' connections (figures.foreignConnections) were counted this pass. */
export type LedgerObservation =
  /** From the server's pg_stat_activity; `exact`: every session's details were visible (else an upper bound). */
  | { read: true; exact: boolean }
  /** The server's sessions could not be read: only the operator's own pods are counted. `reason` names no URL. */
  | { read: false; reason: string };

export interface BudgetObservation {
  figures: BudgetStatus;
  /** Absent: the pass had no ledger to read (dry runs, tests of other things): no condition about it. */
  ledger?: LedgerObservation;
  /** Pods the corpus could use now. */
  demand: number;
  /** Pods its share gives it (before waiting for other corpora's pods to go). */
  planned: number;
  limitedBy?: LimitKind;
  /** Corpora on this budget, this one included. */
  corpora: number;
  /** The scan is waiting for a free connection. */
  scanWaiting: boolean;
}

export interface StatusInput {
  corpus: MidiCorpus;
  now: Date;
  /** The spec cannot be acted on (no Secret, bad URL, bad CPU request...). */
  invalid?: { reason: Reason; message: string };
  scanJob?: V1Job;
  /** Read from the scan pod's termination message this time; when absent, the stored totals carry forward. */
  scanResult?: ScanResult;
  /** The scan succeeded but its answer is unusable. */
  scanProblem?: string;
  runJob?: V1Job;
  runPods: { active: number; terminating: number };
  budget?: BudgetObservation;
  /** The budget cannot be computed (max_connections unknown: database unreachable). */
  budgetUnknown?: string;
  /** Why, when it is not DatabaseUnreachable: the server refused the TLS handshake (DatabaseTlsRefused). */
  budgetUnknownReason?: Reason;
  /** From the database; absent when not queried this time (the stored figures carry forward). */
  files?: { processed: number; failed: number };
  /**
   * The API server's last refusal of a write this corpus needs (a Job create or patch), which retrying cannot cure:
   * its reason (Invalid, Forbidden...) and a message for the user. Absent: none refused, or the refusal is cured.
   */
  rejection?: { reason: Reason; message: string };
  /**
   * The corpus's pods that are stuck or killed (pod-problems.ts); absent when the pods were not looked at (a finished
   * corpus, whose pods go after ttlSecondsAfterFinished: the last word stays).
   */
  podProblems?: readonly PodProblem[];
}

export function computeStatus(input: StatusInput): MidiCorpusStatus {
  const { corpus, now } = input;
  const old = corpus.status ?? {};
  const generation = corpus.metadata.generation ?? 0;
  const scanned =
    input.scanResult ??
    (old.shards?.total !== undefined ? { files: old.files?.total ?? 0, shards: old.shards.total } : undefined);
  const phase = phaseOf(input, scanned?.shards);

  const status: MidiCorpusStatus = { phase, observedGeneration: generation };
  if (old.observedRerun !== undefined) status.observedRerun = old.observedRerun;
  if (old.run !== undefined) status.run = old.run;
  const lastScan = input.scanResult?.lastScan ?? old.lastScan;
  if (lastScan) status.lastScan = { ...lastScan };
  if (scanned) {
    status.files = {
      total: scanned.files,
      processed: input.files?.processed ?? old.files?.processed ?? 0,
      failed: input.files?.failed ?? old.files?.failed ?? 0,
    };
    if (phase === 'Succeeded' && scanned.files === 0) status.files.processed = 0;
    status.shards = {
      total: scanned.shards,
      succeeded: input.runJob?.status?.succeeded ?? old.shards?.succeeded ?? 0,
      failed: failedShards(input.runJob) ?? old.shards?.failed ?? 0,
    };
  }
  if (input.runJob || input.runPods.active + input.runPods.terminating > 0) status.pods = { ...input.runPods };
  if (input.budget) status.budget = input.budget.figures;
  const jobs: NonNullable<MidiCorpusStatus['jobs']> = {};
  if (input.scanJob?.metadata?.name) jobs.scan = input.scanJob.metadata.name;
  else if (old.jobs?.scan) jobs.scan = old.jobs.scan;
  if (input.runJob?.metadata?.name) jobs.run = input.runJob.metadata.name;
  else if (old.jobs?.run) jobs.run = old.jobs.run;
  if (jobs.scan || jobs.run) status.jobs = jobs;
  const start =
    old.startTime ??
    (phase !== 'Pending' && phase !== 'Invalid' && phase !== 'Suspended' ? now.toISOString() : undefined);
  if (start) status.startTime = start;
  const done = old.completionTime ?? (isFinalPhase(phase) ? now.toISOString() : undefined);
  if (done) status.completionTime = done;

  let conditions = old.conditions ?? [];
  for (const c of desiredConditions(input, phase, status))
    conditions = setCondition(conditions, { ...c, observedGeneration: generation }, now);
  status.conditions = conditions;
  const reason = problemReason(conditions);
  if (reason) status.reason = reason;
  return status;
}

/** The conditions whose True is a problem a person must look at, most fundamental first (status.reason). */
const PROBLEM_CONDITIONS: readonly string[] = [
  ConditionType.InvalidSpec,
  ConditionType.WriteRejected,
  ConditionType.PodsFailing,
  ConditionType.Degraded,
];

/** status.reason (the printer column): the reason of the first problem condition that is True. */
function problemReason(conditions: readonly MidiCorpusCondition[]): string | undefined {
  for (const type of PROBLEM_CONDITIONS) {
    const c = conditions.find((x) => x.type === type && x.status === 'True');
    if (c) return c.reason;
  }
  return undefined;
}

type NewCondition = Omit<MidiCorpusCondition, 'lastTransitionTime' | 'observedGeneration'>;

function phaseOf(input: StatusInput, shards: number | undefined): Phase {
  const old = input.corpus.status?.phase;
  if (isFinalPhase(old)) return old;
  if (input.invalid) return 'Invalid';
  if (input.scanProblem || jobFinished(input.scanJob) === 'Failed') return 'Failed';
  if (shards === 0) return 'Succeeded';
  const run = jobFinished(input.runJob);
  if (run === 'Complete') return 'Succeeded';
  if (run === 'Failed') return 'Failed';
  if (input.corpus.spec.suspend) return 'Suspended';
  if (input.runJob || shards !== undefined) return 'Running';
  if (input.scanJob) return 'Scanning';
  return 'Pending';
}

function desiredConditions(input: StatusInput, phase: Phase, status: MidiCorpusStatus): NewCondition[] {
  const c = (type: string, on: boolean, reason: Reason, message: string): NewCondition => ({
    type,
    status: on ? 'True' : 'False',
    reason,
    message,
  });
  const shards = status.shards;
  const out: NewCondition[] = [];

  out.push(
    input.invalid
      ? c(ConditionType.InvalidSpec, true, input.invalid.reason, input.invalid.message)
      : c(ConditionType.InvalidSpec, false, Reason.SpecValid, 'The spec can be acted on.'),
  );

  out.push(
    phase === 'Succeeded'
      ? c(ConditionType.Ready, true, Reason.Succeeded, `All ${shards?.total ?? 0} shards are done.`)
      : c(ConditionType.Ready, false, phaseReason(phase, input), `Phase ${phase}.`),
  );

  const progressing: Record<Phase, [boolean, Reason, string]> = {
    Pending: [
      true,
      Reason.Pending,
      input.budget?.scanWaiting ? 'Waiting for a free database connection to scan.' : 'About to scan the corpus.',
    ],
    Scanning: [true, Reason.ScanStarted, 'Scanning the corpus and recording its files.'],
    Running: [true, Reason.Running, shards ? `${shards.succeeded} of ${shards.total} shards done.` : 'Running.'],
    Succeeded: [false, Reason.Succeeded, `All ${shards?.total ?? 0} shards are done.`],
    Failed: [false, failReason(input), failMessage(input, shards)],
    Suspended: [false, Reason.Suspended, 'spec.suspend is true: no runner pods are started.'],
    Invalid: [false, input.invalid?.reason ?? Reason.SpecValid, 'The spec must be fixed first (see InvalidSpec).'],
  };
  const [on, reason, message] = progressing[phase];
  out.push(c(ConditionType.Progressing, on, reason, message));

  if (phase === 'Failed') out.push(c(ConditionType.Degraded, true, failReason(input), failMessage(input, shards)));
  else if ((shards?.failed ?? 0) > 0)
    out.push(
      c(
        ConditionType.Degraded,
        true,
        Reason.ShardsFailed,
        `${shards!.failed} shards exhausted their retries; the others go on.`,
      ),
    );
  else out.push(c(ConditionType.Degraded, false, Reason.AsExpected, 'No failures.'));

  out.push(
    input.rejection
      ? c(ConditionType.WriteRejected, true, input.rejection.reason, input.rejection.message)
      : c(
          ConditionType.WriteRejected,
          false,
          Reason.WritesAccepted,
          'The API server accepts what the operator writes.',
        ),
  );
  if (input.podProblems) {
    if (input.podProblems.length > 0) {
      const { reason, message } = podProblemsSummary(input.podProblems);
      out.push(c(ConditionType.PodsFailing, true, reason, message));
    } else out.push(c(ConditionType.PodsFailing, false, Reason.PodsHealthy, 'No pod is stuck or failing.'));
  }

  out.push(budgetCondition(input, phase));
  const foreign = foreignCondition(input.budget);
  if (foreign) out.push(foreign);
  return out;
}

/**
 * Whether the other consumers' count can be trusted. Only when the budget was planned this pass: otherwise the last
 * word stays (a finished corpus keeps what its last pass saw).
 */
function foreignCondition(b: BudgetObservation | undefined): NewCondition | undefined {
  if (!b?.ledger) return undefined;
  const type = ConditionType.ForeignConnectionsUncertain;
  const n = b.figures.foreignConnections ?? 0;
  if (!b.ledger.read)
    return {
      type,
      status: 'True',
      reason: Reason.LedgerUnreadable,
      message:
        `The server's connections could not be read (${b.ledger.reason}): the budget counts only this operator's own ` +
        "pods, not other applications' connections. Runner pods still wait in the server's ledger for room, and " +
        'cannot be admitted while its database is out of reach.',
    };
  if (!b.ledger.exact)
    return {
      type,
      status: 'True',
      reason: Reason.ForeignCountUpperBound,
      message:
        `${n} connections on the server are not this operator's pods', counted as an upper bound: the operator's role ` +
        "may not see the details of other users' sessions, so every session with a database and a role counts. " +
        "Grant pg_monitor to the operator's role for an exact count.",
    };
  return {
    type,
    status: 'False',
    reason: Reason.ForeignCountExact,
    message: `${n} connections on the server are not this operator's pods' (counted exactly).`,
  };
}

function budgetCondition(input: StatusInput, phase: Phase): NewCondition {
  const type = ConditionType.BudgetLimited;
  const active = phase === 'Pending' || phase === 'Scanning' || phase === 'Running';
  if (active && input.budgetUnknown !== undefined)
    return {
      type,
      status: 'True',
      reason: input.budgetUnknownReason ?? Reason.DatabaseUnreachable,
      message: input.budgetUnknown,
    };
  const b = input.budget;
  if (!active || !b)
    return { type, status: 'False', reason: Reason.BudgetAvailable, message: 'Not limited by the connection budget.' };
  if (b.scanWaiting)
    return {
      type,
      status: 'True',
      reason: Reason.BudgetShared,
      message:
        "Waiting for one free connection for the scan: other corpora's runner pods hold the allowance; they are being scaled down.",
    };
  if (!b.limitedBy)
    return {
      type,
      status: 'False',
      reason: Reason.BudgetAvailable,
      message: `Running at the parallelism it wants (${b.figures.parallelism} pods).`,
    };
  return {
    type,
    status: 'True',
    reason: b.limitedBy === 'nothingFits' ? Reason.BudgetExhausted : Reason.BudgetShared,
    message: budgetMessage(b),
  };
}

/** Says what limits the corpus and, when nothing fits, what to change. Numbers only: never the URL or the server. */
export function budgetMessage(b: BudgetObservation): string {
  const f = b.figures;
  const foreign = f.foreignConnections ?? 0;
  const sum =
    `max_connections ${f.limit} − reserved ${f.reserved} − headroom ${f.headroom} − operator and scans ${f.operator}` +
    (f.foreignConnections !== undefined ? ` − other connections on the server ${foreign}` : '');
  switch (b.limitedBy) {
    case 'nothingFits':
      return (
        `No runner pod fits: one pod holds up to ${f.perPod} connections, the allowance is ${f.allowance} (${sum}). ` +
        'Raise max_connections, lower reservedConnections or headroom, or make pods smaller (runner.pool.maxPerPod, or a smaller CPU request)' +
        (foreign > 0 ? "; or wait for the server's other connections to end." : '.')
      );
    case 'draining':
      return `${f.parallelism} of the ${b.planned} pods of this corpus's share may run now; the rest wait until pods of other corpora on this database have stopped and released their connections.`;
    case 'allowance':
      return b.corpora > 1
        ? `Running ${f.parallelism} of ${b.demand} wanted pods: its fair share is ${f.share} of the ${f.allowance} connections allowed on this database, shared with ${b.corpora - 1} other corpora (${sum}).`
        : `Running ${f.parallelism} of ${b.demand} wanted pods: ${f.perPod} connections each, ${f.allowance} allowed on this database (${sum}).`;
    default:
      return 'Not limited by the connection budget.';
  }
}

function phaseReason(phase: Phase, input: StatusInput): Reason {
  switch (phase) {
    case 'Pending':
      return Reason.Pending;
    case 'Scanning':
      return Reason.ScanStarted;
    case 'Running':
      return Reason.Running;
    case 'Succeeded':
      return Reason.Succeeded;
    case 'Failed':
      return failReason(input);
    case 'Suspended':
      return Reason.Suspended;
    case 'Invalid':
      return input.invalid?.reason ?? Reason.SpecValid;
  }
}

function failReason(input: StatusInput): Reason {
  if (input.scanProblem) return Reason.InvalidScanResult;
  if (jobFinished(input.scanJob) === 'Failed') return Reason.ScanFailed;
  return input.corpus.status?.phase === 'Failed'
    ? (findReason(input.corpus.status.conditions, ConditionType.Degraded) ?? Reason.RunFailed)
    : Reason.RunFailed;
}

function failMessage(input: StatusInput, shards: MidiCorpusStatus['shards']): string {
  if (input.scanProblem) return `The scan finished but its answer is unusable: ${input.scanProblem}.`;
  if (jobFinished(input.scanJob) === 'Failed')
    return `The scan Job failed: ${jobMessage(input.scanJob) ?? "see its pods' logs"}.`;
  const old = input.corpus.status;
  if (old?.phase === 'Failed')
    return old.conditions?.find((x) => x.type === ConditionType.Degraded)?.message ?? 'The run failed.';
  return `The run Job failed (${shards?.failed ?? 0} of ${shards?.total ?? 0} shards failed): ${jobMessage(input.runJob) ?? "see its pods' logs"}.`;
}

function findReason(conditions: MidiCorpusCondition[] | undefined, type: string): Reason | undefined {
  return conditions?.find((x) => x.type === type)?.reason as Reason | undefined;
}

/** 'Complete' or 'Failed' once the Job controller has said so; undefined while it runs. */
export function jobFinished(job: V1Job | undefined): 'Complete' | 'Failed' | undefined {
  for (const c of job?.status?.conditions ?? []) {
    if (c.status === 'True' && (c.type === 'Complete' || c.type === 'Failed')) return c.type;
  }
  return undefined;
}

function jobMessage(job: V1Job | undefined): string | undefined {
  const c = job?.status?.conditions?.find((x) => x.type === 'Failed' && x.status === 'True');
  return c ? [c.reason, c.message].filter(Boolean).join(': ') : undefined;
}

/** Number of indexes in a Job's `failedIndexes` ("1,3-5,7" → 5); undefined when the Job says nothing. */
export function failedShards(job: V1Job | undefined): number | undefined {
  const text = job?.status?.failedIndexes;
  if (text === undefined) return undefined;
  return countIndexes(text);
}

export function countIndexes(text: string): number {
  let n = 0;
  for (const part of text.split(',')) {
    if (part.trim() === '') continue;
    const [a, b] = part.split('-').map((x) => Number(x));
    n += b === undefined ? 1 : b - a! + 1;
  }
  return n;
}

/** Sets one condition, keeping lastTransitionTime when its status does not change. */
export function setCondition(
  conditions: readonly MidiCorpusCondition[],
  next: Omit<MidiCorpusCondition, 'lastTransitionTime'>,
  now: Date,
): MidiCorpusCondition[] {
  const old = conditions.find((c) => c.type === next.type);
  const lastTransitionTime = old && old.status === next.status ? old.lastTransitionTime : now.toISOString();
  const merged: MidiCorpusCondition = { ...next, lastTransitionTime };
  return old ? conditions.map((c) => (c.type === next.type ? merged : c)) : [...conditions, merged];
}

/** Deep equality of two statuses as JSON (key order aside), to decide whether a write is needed. */
export function sameStatus(a: MidiCorpusStatus | undefined, b: MidiCorpusStatus | undefined): boolean {
  return canonical(a ?? {}) === canonical(b ?? {});
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v)
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

export interface CorpusEvent {
  type: 'Normal' | 'Warning';
  reason: Reason;
  message: string;
}

/**
 * Events for the transitions between two statuses: one per condition whose status or reason changed. The Event's
 * reason is the condition's, so `kubectl describe` and `kubectl get -o yaml` tell the same story.
 */
export function transitionEvents(before: MidiCorpusStatus | undefined, after: MidiCorpusStatus): CorpusEvent[] {
  const events: CorpusEvent[] = [];
  for (const c of after.conditions ?? []) {
    const old = before?.conditions?.find((x) => x.type === c.type);
    if (old && old.status === c.status && old.reason === c.reason) continue;
    if (!old && c.status === 'False') continue; // the first status says "not degraded" etc.: nothing happened
    if (c.type === ConditionType.Ready && c.status === 'False') continue; // Progressing tells the same, better
    const warning =
      c.status === 'True' &&
      (c.type === ConditionType.Degraded ||
        c.type === ConditionType.InvalidSpec ||
        c.type === ConditionType.WriteRejected ||
        c.type === ConditionType.PodsFailing ||
        c.reason === Reason.BudgetExhausted ||
        c.reason === Reason.LedgerUnreadable);
    // Two conditions may tell one transition (Ready and Progressing both say Succeeded): one Event is enough.
    if (events.some((e) => e.reason === c.reason && e.message === c.message)) continue;
    events.push({ type: warning ? 'Warning' : 'Normal', reason: c.reason as Reason, message: c.message });
  }
  return events;
}
