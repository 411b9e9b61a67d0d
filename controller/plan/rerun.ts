/**
 * Running a corpus again: what to do when spec.rerun is above the run the status is about (status.observedRerun).
 * Pure. The reconcile asks this before anything else, and applies the answer as its one write of the pass.
 *
 * A run again is a new scan and a new run Job, under the same corpus key (so the same rows: the scan compares the
 * volume with the last scan and the run Job covers only the files that need work), with Job names of their own
 * (`<corpus>-scan-<rerun>`, names.ts), so they never collide with the finished ones that retention still keeps. In
 * order, one step a pass:
 *
 *   1. stop: a scan or run Job of the current run that has not finished is deleted (its pods get their grace period to
 *      roll back the batch in flight; what they recorded stays). A run again supersedes the run in flight, so that it
 *      can be the way out of a run that cannot finish (a wrong image, too little memory: fix the spec, bump rerun).
 *   2. wait: until none of the corpus's pods holds a connection any more. They count against the budget until then
 *      anyway, but a scan must not reassign shards under a runner still writing.
 *   3. start: the status is reset to phase Pending for the new run (observedRerun = spec.rerun); the next passes
 *      create its scan Job and then its run Job through the same budget as a first run.
 */
import type { V1Job, V1Pod } from '@kubernetes/client-node';
import { ConditionType, Reason } from '../api/v1alpha1/conditions.js';
import type { MidiCorpus, MidiCorpusStatus } from '../api/v1alpha1/midicorpus.js';
import { jobFinished, setCondition } from './status.js';

/** The run the corpus's status, Jobs and counts belong to. */
export function observedRerun(corpus: MidiCorpus): number {
  return corpus.status?.observedRerun ?? 0;
}

/** Has the user asked for a run the status does not show yet? */
export function rerunRequested(corpus: MidiCorpus): boolean {
  return (corpus.spec.rerun ?? 0) > observedRerun(corpus);
}

export interface RerunInput {
  corpus: MidiCorpus;
  /** The current run's Jobs (named for observedRerun). */
  scanJob?: V1Job;
  runJob?: V1Job;
  /** The corpus's pods that still hold connections (any run's). */
  livePods: readonly V1Pod[];
  now: Date;
}

export type RerunStep =
  | { kind: 'none' }
  | { kind: 'stop'; job: V1Job }
  | { kind: 'wait'; pods: number }
  | { kind: 'start'; status: MidiCorpusStatus };

export function planRerun(input: RerunInput): RerunStep {
  const { corpus } = input;
  if (!rerunRequested(corpus)) return { kind: 'none' };
  for (const job of [input.runJob, input.scanJob]) {
    if (job && jobFinished(job) === undefined && !job.metadata?.deletionTimestamp) return { kind: 'stop', job };
  }
  if (input.livePods.length > 0) return { kind: 'wait', pods: input.livePods.length };
  return { kind: 'start', status: rerunStatus(corpus, input.now) };
}

/**
 * The status a new run starts from: nothing of the last run's counts, Jobs or times (they describe another run), its
 * conditions kept where they still hold (InvalidSpec, the budget's) and Progressing saying which run this is.
 */
export function rerunStatus(corpus: MidiCorpus, now: Date): MidiCorpusStatus {
  const rerun = corpus.spec.rerun ?? 0;
  const generation = corpus.metadata.generation ?? 0;
  const from = corpus.status?.phase;
  let conditions = corpus.status?.conditions ?? [];
  const set = (type: string, on: boolean, reason: Reason, message: string) =>
    (conditions = setCondition(
      conditions,
      { type, status: on ? 'True' : 'False', reason, message, observedGeneration: generation },
      now,
    ));
  const message = `Run again (spec.rerun ${rerun}${from ? `, after phase ${from}` : ''}): rescanning the corpus.`;
  set(ConditionType.Ready, false, Reason.RerunStarted, message);
  set(ConditionType.Progressing, true, Reason.RerunStarted, message);
  set(ConditionType.Degraded, false, Reason.AsExpected, 'No failures.');
  return { phase: 'Pending', observedGeneration: generation, observedRerun: rerun, conditions };
}
