/**
 * Phases, condition types and reasons of a MidiCorpus. Reasons are shared by status conditions and Events, so a user
 * who sees an Event can find the condition that explains it (and the other way round).
 */

export const PHASES = ['Pending', 'Scanning', 'Running', 'Succeeded', 'Failed', 'Suspended', 'Invalid'] as const;
export type Phase = (typeof PHASES)[number];

/**
 * Succeeded and Failed are final: the phase never changes again and nothing is started again (the corpus's Jobs are
 * deleted after ttlSecondsAfterFinished, so what they said must already be in the status), until spec.rerun is bumped
 * to run the corpus again (plan/rerun.ts).
 */
export function isFinalPhase(phase: Phase | undefined): phase is 'Succeeded' | 'Failed' {
  return phase === 'Succeeded' || phase === 'Failed';
}

export const ConditionType = {
  /** True once every shard is done (phase Succeeded). */
  Ready: 'Ready',
  /** True while the scan or the runners are making progress (or waiting their turn for the budget). */
  Progressing: 'Progressing',
  /** True when something failed that the operator cannot fix by waiting: failed shards, a failed scan. */
  Degraded: 'Degraded',
  /** True when the connection budget holds the corpus below the parallelism it asked for (down to zero pods). */
  BudgetLimited: 'BudgetLimited',
  /** True when the spec cannot be acted on (missing Secret, unreadable URL, bad CPU request...). */
  InvalidSpec: 'InvalidSpec',
  /**
   * True when the budget's count of other consumers' connections (status.budget.foreignConnections) is not exact: an
   * upper bound (the operator's role may not see other users' sessions) or not read at all (only the operator's own
   * pods are counted then). False when the server showed every session.
   */
  ForeignConnectionsUncertain: 'ForeignConnectionsUncertain',
  /**
   * True when the API server refuses a write the operator must make (creating or changing a Job) with an answer it
   * will keep giving (400, 403, 404 of a referenced object, 422): the reason is the API's own (Invalid, Forbidden,
   * NotFound, BadRequest), the message its words. The write is tried again on a slow timer, and at once when the spec
   * changes.
   */
  WriteRejected: 'WriteRejected',
  /**
   * True when a scan or runner pod is stuck or was killed in a way that waiting will not mend: its image cannot be
   * pulled, its container cannot be created, it cannot be scheduled (for longer than the controller's grace), it was
   * OOMKilled, or the same shard failed the same way several times. The message names the pods.
   */
  PodsFailing: 'PodsFailing',
} as const;
export type ConditionType = (typeof ConditionType)[keyof typeof ConditionType];

export const Reason = {
  // Progressing / phases
  Pending: 'Pending',
  ScanStarted: 'ScanStarted',
  ScanSucceeded: 'ScanSucceeded',
  ScanFailed: 'ScanFailed',
  RunStarted: 'RunStarted',
  Running: 'Running',
  Succeeded: 'Succeeded',
  RunFailed: 'RunFailed',
  Suspended: 'Suspended',
  Resumed: 'Resumed',
  // Degraded
  AsExpected: 'AsExpected',
  ShardsFailed: 'ShardsFailed',
  // BudgetLimited
  BudgetAvailable: 'BudgetAvailable',
  BudgetShared: 'BudgetShared',
  BudgetExhausted: 'BudgetExhausted',
  ParallelismChanged: 'ParallelismChanged',
  // ForeignConnectionsUncertain
  ForeignCountExact: 'ForeignCountExact',
  ForeignCountUpperBound: 'ForeignCountUpperBound',
  LedgerUnreadable: 'LedgerUnreadable',
  // WriteRejected: False, then the API's own reasons for the refusals that retrying cannot cure
  WritesAccepted: 'WritesAccepted',
  Invalid: 'Invalid',
  Forbidden: 'Forbidden',
  NotFound: 'NotFound',
  BadRequest: 'BadRequest',
  // PodsFailing
  PodsHealthy: 'PodsHealthy',
  /** ErrImagePull and ImagePullBackOff, which alternate on the same pod: one reason, so one Event. */
  ImagePullFailed: 'ImagePullFailed',
  InvalidImageName: 'InvalidImageName',
  CreateContainerConfigError: 'CreateContainerConfigError',
  CreateContainerError: 'CreateContainerError',
  Unschedulable: 'Unschedulable',
  OOMKilled: 'OOMKilled',
  /** Several failed attempts of the same shard with the same reason and exit code (or CrashLoopBackOff). */
  RepeatedFailures: 'RepeatedFailures',
  // Events only: the backends of a pod that no longer exists were ended
  VanishedPodConnectionsEnded: 'VanishedPodConnectionsEnded',
  // InvalidSpec
  SpecValid: 'SpecValid',
  SecretNotFound: 'SecretNotFound',
  /** The Secret exists but lacks the label that lets MidiCorpora use it (DATABASE_SECRET_LABEL). */
  SecretNotLabelled: 'SecretNotLabelled',
  SecretKeyMissing: 'SecretKeyMissing',
  InvalidDatabaseUrl: 'InvalidDatabaseUrl',
  DatabaseUnreachable: 'DatabaseUnreachable',
  /**
   * The database refused the TLS handshake for a cause waiting will not mend (a certificate for another host, one the
   * CA of spec.database.tls did not sign, a server without TLS under sslmode=require): the message names it.
   */
  DatabaseTlsRefused: 'DatabaseTlsRefused',
  InvalidCpuRequest: 'InvalidCpuRequest',
  InvalidSource: 'InvalidSource',
  InvalidScanResult: 'InvalidScanResult',
  TooManyShards: 'TooManyShards',
  NoRunnerImage: 'NoRunnerImage',
  // Run again (spec.rerun) and deletion (spec.deletionPolicy)
  RerunStarted: 'RerunStarted',
  /** Event: the run in flight was stopped because spec.rerun asked for a new one. */
  RunSuperseded: 'RunSuperseded',
  RowsDeleted: 'RowsDeleted',
  /** The corpus's rows could not be deleted yet (database unreachable...): the finalizer stays and it is tried again. */
  RowsNotDeleted: 'RowsNotDeleted',
} as const;
export type Reason = (typeof Reason)[keyof typeof Reason];
