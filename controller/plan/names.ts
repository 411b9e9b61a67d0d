/**
 * Names and labels of the objects the operator creates for a MidiCorpus. Deterministic: the same corpus always maps to
 * the same child names, so a restarted (or newly elected) operator finds its Jobs instead of creating duplicates.
 */
import { createHash } from 'node:crypto';

/** Kubernetes puts a Job's name in a pod label (batch.kubernetes.io/job-name), and label values stop at 63 characters. */
export const MAX_JOB_NAME = 63;

export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'midi-corpus-operator';
export const LABEL_NAME = 'app.kubernetes.io/name';
export const LABEL_CORPUS_UID = 'midi.corpus.dev/corpus-uid';
export const LABEL_ROLE = 'midi.corpus.dev/role';
/** Annotation (not a label: names may be longer than a label value) naming the owning MidiCorpus. */
export const ANNOTATION_CORPUS = 'midi.corpus.dev/corpus';

/**
 * On every Job and pod: the budget it draws on and the connections one of its pods may hold. The budget is accounted
 * from these, not from the MidiCorpus, so pods whose corpus is already deleted (garbage collection takes a moment, and
 * Terminating pods still hold connections) keep counting until they are gone.
 */
export const ANNOTATION_BUDGET_KEY = 'midi.corpus.dev/budget-key';
export const ANNOTATION_CONNECTIONS = 'midi.corpus.dev/connections-per-pod';

export type ChildRole = 'scan' | 'run';

/** The informers' selector: everything this operator created, and nothing else. */
export const CHILD_SELECTOR = `${LABEL_MANAGED_BY}=${MANAGED_BY}`;

/**
 * `<corpus>-<role>` for a corpus's first run, `<corpus>-<role>-<run>` for each run again (status.run), so a new
 * run's Jobs never collide with the finished ones that retention.ttlSecondsAfterFinished still keeps. When that would
 * pass 63 characters, the corpus name is cut short with 8 hex digits of its hash before the role, so two long names
 * with a common prefix still get different children. Dots become dashes: Indexed Job pods take `<job>-<index>` as
 * their hostname, which must be a DNS label.
 */
export function childName(corpusName: string, role: ChildRole, run = 0): string {
  const suffix = run === 0 ? role : `${role}-${run}`;
  const plain = `${corpusName.replaceAll('.', '-')}-${suffix}`;
  if (plain.length <= MAX_JOB_NAME) return plain;
  const hash = createHash('sha256').update(corpusName).digest('hex').slice(0, 8);
  const room = MAX_JOB_NAME - suffix.length - hash.length - 2;
  const stem = corpusName.replaceAll('.', '-').slice(0, room).replace(/-+$/, '');
  return `${stem}-${hash}-${suffix}`;
}

export function childLabels(corpusUid: string, role: ChildRole): Record<string, string> {
  return {
    [LABEL_NAME]: 'midi-corpus',
    [LABEL_MANAGED_BY]: MANAGED_BY,
    [LABEL_CORPUS_UID]: corpusUid,
    [LABEL_ROLE]: role,
  };
}
