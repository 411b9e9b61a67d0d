/**
 * Running a corpus again: what to do when spec.rerun is above the one the status is about (status.observedRerun), or
 * when a scheduled rescan is due (spec.rescanEverySeconds after a finished run). Pure. The reconcile asks this before
 * anything else, and applies the answer as its one write of the pass.
 *
 * A run again is a new scan and a new run Job, under the same corpus key (so the same rows: the scan compares the
 * volume with the last scan and the run Job covers only the files that need work), with Job names of their own
 * (`<corpus>-scan-<run>`, names.ts, `run` counting every run again), so they never collide with the finished ones
 * that retention still keeps. In order, one step a pass:
 *
 *   1. stop: a scan or run Job of the current run that has not finished is deleted (its pods get their grace period to
 *      roll back the batch in flight; what they recorded stays). A run again supersedes the run in flight, so that it
 *      can be the way out of a run that cannot finish (a wrong image, too little memory: fix the spec, bump rerun).
 *   2. wait: until none of the corpus's pods holds a connection any more. They count against the budget until then
 *      anyway, but a scan must not reassign shards under a runner still writing.
 *   3. start: the status is reset to phase Pending for the new run (observedRerun = spec.rerun, run + 1); the next
 *      passes create its scan Job and then its run Job through the same budget as a first run.
 */
import type { V1Job, V1Pod } from '@kubernetes/client-node';
import { ConditionType, Reason, isFinalPhase } from '../api/v1alpha1/conditions.js';
import type { MidiCorpus, MidiCorpusStatus } from '../api/v1alpha1/midicorpus.js';
import { jobFinished, setCondition } from './status.js';

/** The spec.rerun the corpus's status is about (0 before any bump). */
export function observedRerun(corpus: MidiCorpus): number {
  return corpus.status?.observedRerun ?? 0;
}

/**
 * Which run the status, and the Jobs' names, are about: 0 the first, one more for each run again, whether a bump of
 * spec.rerun or a scheduled rescan started it (so the names never repeat). Statuses written before scheduled rescans
 * existed have no `run`: their observedRerun is it.
 */
export function currentRun(corpus: MidiCorpus): number {
  return corpus.status?.run ?? observedRerun(corpus);
}

/** When the next scheduled rescan is due (ms since the epoch): spec.rescanEverySeconds after a finished run. */
export function rescanDueAt(corpus: MidiCorpus): number | undefined {
  const every = corpus.spec.rescanEverySeconds;
  const done = corpus.status?.completionTime;
  if (every === undefined || done === undefined || !isFinalPhase(corpus.status?.phase)) return undefined;
  return Date.parse(done) + every * 1000;
}

/** Why a new run is due, if it is: the user bumped spec.rerun, or the schedule's time has come. */
export function rerunRequested(corpus: MidiCorpus, now?: Date): 'bump' | 'schedule' | undefined {
  if ((corpus.spec.rerun ?? 0) > observedRerun(corpus)) return 'bump';
  const due = rescanDueAt(corpus);
  if (now !== undefined && due !== undefined && now.getTime() >= due) return 'schedule';
  return undefined;
}

export interface RerunInput {
  corpus: MidiCorpus;
  /** The current run's Jobs (named for currentRun). */
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
  const why = rerunRequested(corpus, input.now);
  if (!why) return { kind: 'none' };
  for (const job of [input.runJob, input.scanJob]) {
    if (job && jobFinished(job) === undefined && !job.metadata?.deletionTimestamp) return { kind: 'stop', job };
  }
  if (input.livePods.length > 0) return { kind: 'wait', pods: input.livePods.length };
  return { kind: 'start', status: rerunStatus(corpus, input.now, why) };
}

/**
 * The status a new run starts from: nothing of the last run's counts, Jobs or times (they describe another run), its
 * conditions kept where they still hold (InvalidSpec, the budget's) and Progressing saying which run this is.
 */
export function rerunStatus(corpus: MidiCorpus, now: Date, why: 'bump' | 'schedule' = 'bump'): MidiCorpusStatus {
  const rerun = corpus.spec.rerun ?? 0;
  // A bump to N names the run N (as the user would expect to find its Jobs), unless scheduled runs already went past.
  const run = Math.max(rerun, currentRun(corpus) + 1);
  const generation = corpus.metadata.generation ?? 0;
  const from = corpus.status?.phase;
  let conditions = corpus.status?.conditions ?? [];
  const set = (type: string, on: boolean, reason: Reason, message: string) =>
    (conditions = setCondition(
      conditions,
      { type, status: on ? 'True' : 'False', reason, message, observedGeneration: generation },
      now,
    ));
  const cause =
    why === 'schedule' ? `scheduled rescan, every ${corpus.spec.rescanEverySeconds} s` : `spec.rerun ${rerun}`;
  const message = `Run ${run} (${cause}${from ? `, after phase ${from}` : ''}): rescanning the corpus.`;
  set(ConditionType.Ready, false, Reason.RerunStarted, message);
  set(ConditionType.Progressing, true, Reason.RerunStarted, message);
  set(ConditionType.Degraded, false, Reason.AsExpected, 'No failures.');
  return { phase: 'Pending', observedGeneration: generation, observedRerun: rerun, run, conditions };
}
