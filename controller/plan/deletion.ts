/**
 * What deleting a MidiCorpus does to its rows in Postgres: spec.deletionPolicy. Pure: the reconcile asks this first and
 * applies the answer as its one write of the pass.
 *
 * - `Keep` (the default): the rows stay. Deleting the object stops its Jobs (garbage collection) and nothing else; a
 *   new MidiCorpus of the same namespace and name finds them again (same corpus key) and a run of it only does what
 *   changed.
 * - `Delete`: the controller puts the finalizer FINALIZER on the corpus. Once it is being deleted, the controller
 *   stops its unfinished Jobs, waits until none of its pods holds a connection (a runner still writing would put rows
 *   back), deletes the corpus's rows (midi.corpora and everything that cascades from it), then removes the finalizer
 *   and the API server lets the object go.
 *
 * A finalizer must never hold a deletion for ever. When the rows cannot be deleted (the database unreachable, the
 * Secret gone), the corpus says so (condition Progressing, reason RowsNotDeleted, and a Warning Event) and the
 * controller tries again every ROWS_RETRY_MS; after GIVE_UP_MS it removes the finalizer anyway, with a Warning Event
 * saying the rows were kept. Before that, the escape is to set spec.deletionPolicy to Keep on the corpus being
 * deleted (the finalizer goes at the next pass), or to remove the finalizer by hand.
 */
import type { V1Job, V1Pod } from '@kubernetes/client-node';
import type { MidiCorpus } from '../api/v1alpha1/midicorpus.js';
import { jobFinished } from './status.js';

/** The finalizer of the Delete policy. */
export const FINALIZER = 'midi.corpus.dev/delete-rows';

/** How soon a failed deletion of the rows is tried again. */
export const ROWS_RETRY_MS = 30_000;

/** After this long since the deletion was asked for, the finalizer goes even if the rows could not be deleted. */
export const GIVE_UP_MS = 10 * 60_000;

export interface DeletionInput {
  corpus: MidiCorpus;
  /** Every Job the corpus owns, of any run. */
  jobs: readonly V1Job[];
  /** The corpus's pods that still hold connections. */
  livePods: readonly V1Pod[];
  now: Date;
}

export type DeletionStep =
  /** Nothing to do about deletion: the pass goes on (or, for a corpus being deleted without our finalizer, ends). */
  | { kind: 'none' }
  | { kind: 'addFinalizer' }
  | { kind: 'removeFinalizer'; why: 'keep' | 'deleted' | 'gaveUp' }
  | { kind: 'stopJob'; job: V1Job }
  | { kind: 'wait'; pods: number }
  | { kind: 'deleteRows' };

export function hasFinalizer(corpus: MidiCorpus): boolean {
  return corpus.metadata.finalizers?.includes(FINALIZER) ?? false;
}

export function isBeingDeleted(corpus: MidiCorpus): boolean {
  return corpus.metadata.deletionTimestamp !== undefined && corpus.metadata.deletionTimestamp !== null;
}

/** Has the deletion waited for the rows long enough to let the object go without them? */
export function pastGiveUp(corpus: MidiCorpus, now: Date): boolean {
  const since = corpus.metadata.deletionTimestamp;
  return since !== undefined && now.getTime() - new Date(since).getTime() >= GIVE_UP_MS;
}

export function planDeletion(input: DeletionInput): DeletionStep {
  const { corpus } = input;
  const wantsDelete = corpus.spec.deletionPolicy === 'Delete';
  const mine = hasFinalizer(corpus);
  if (!isBeingDeleted(corpus)) {
    if (wantsDelete && !mine) return { kind: 'addFinalizer' };
    if (!wantsDelete && mine) return { kind: 'removeFinalizer', why: 'keep' };
    return { kind: 'none' };
  }
  if (!mine) return { kind: 'none' };
  if (!wantsDelete) return { kind: 'removeFinalizer', why: 'keep' };
  if (pastGiveUp(corpus, input.now)) return { kind: 'removeFinalizer', why: 'gaveUp' };
  const running = input.jobs.find((j) => jobFinished(j) === undefined && !j.metadata?.deletionTimestamp);
  if (running) return { kind: 'stopJob', job: running };
  if (input.livePods.length > 0) return { kind: 'wait', pods: input.livePods.length };
  return { kind: 'deleteRows' };
}
