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
