/**
 * Scan and runner pods that are stuck or were killed, read from their status alone. Pure: the pods and the time in,
 * the problems out, so the reconcile can put them in the PodsFailing condition and the status planner can compare
 * them with the last pass's.
 *
 * Why this exists: the Job controller retries a pod that cannot start for ever (an image that cannot be pulled, a
 * container whose configuration is refused) and one that cannot be scheduled for as long as the cluster allows, and
 * an OOMKilled runner only burns its shard's retries; none of it reaches the Job's own conditions until the Job has
 * failed, if ever. The reasons are on the pods, so that is where they are read.
 *
 * What counts:
 * - a container waiting with ErrImagePull or ImagePullBackOff (one reason, ImagePullFailed: the kubelet alternates the
 *   two, and a condition that flipped with it would send an Event each time), InvalidImageName,
 *   CreateContainerConfigError or CreateContainerError: at once, the kubelet will not get further by itself;
 * - a pod unschedulable for longer than a grace: a cluster autoscaler may be adding a node for it meanwhile;
 * - a shard (or the scan) whose latest failed attempt was OOMKilled, or which failed `repeatedFailures` times with the
 *   same reason and exit code, until one of its attempts succeeds. Evicted pods (DisruptionTarget) are not the shard's
 *   failures: the Job ignores them too.
 */
import type { V1ContainerStatus, V1Pod } from '@kubernetes/client-node';
import { scrubSecrets } from '../../contract/describe-error.js';
import { EXIT_BUG, EXIT_TEMPFAIL, EXIT_USAGE } from '../../contract/exit-codes.js';
import { Reason } from '../api/v1alpha1/conditions.js';
import { UNSCHEDULABLE_GRACE_MS } from '../defaults.js';
import { LABEL_ROLE } from './names.js';

/** Failed attempts of one shard, with the same reason and exit code, that make "repeated failures". */
export const REPEATED_FAILURES = 2;
/** Longest message of the condition: Events are cut at 1024 characters, and a condition should say the same. */
export const MAX_MESSAGE = 1000;
/** Pods named in the message besides the one whose words are quoted; the rest are counted. */
const MAX_PODS_NAMED = 3;
/** Longest piece of a kubelet message or a termination message quoted. */
const MAX_QUOTE = 400;

const COMPLETION_INDEX = 'batch.kubernetes.io/job-completion-index';

export type PodProblemReason =
  | typeof Reason.ImagePullFailed
  | typeof Reason.InvalidImageName
  | typeof Reason.CreateContainerConfigError
  | typeof Reason.CreateContainerError
  | typeof Reason.Unschedulable
  | typeof Reason.OOMKilled
  | typeof Reason.RepeatedFailures;

/** Most telling first: the condition's reason is the first one present. */
const PRIORITY: readonly PodProblemReason[] = [
  Reason.OOMKilled,
  Reason.RepeatedFailures,
  Reason.CreateContainerConfigError,
  Reason.CreateContainerError,
  Reason.InvalidImageName,
  Reason.ImagePullFailed,
  Reason.Unschedulable,
];

/** What a user can do about each. */
const ADVICE: Record<PodProblemReason, string> = {
  [Reason.ImagePullFailed]: 'Make the image available to the nodes, or fix spec.runner.image',
  [Reason.InvalidImageName]: 'Fix spec.runner.image',
  [Reason.CreateContainerConfigError]:
    "The container's configuration is refused (e.g. a root image under runAsNonRoot, a missing ConfigMap or Secret key): fix the image or what it refers to",
  [Reason.CreateContainerError]: 'The container runtime cannot create the container: see the pod events',
  [Reason.Unschedulable]:
    'No node can take the pod: check spec.runner.nodeSelector, tolerations and resources, or add a node',
  [Reason.OOMKilled]: 'Raise spec.runner.resources.limits.memory, or lower the pool or the files per shard',
  [Reason.RepeatedFailures]: "See the pods' logs",
};

export interface PodProblem {
  pod: string;
  /** `scan`, or `shard <index>` for a runner pod. */
  what: string;
  reason: PodProblemReason;
  /** What the kubelet, the scheduler or the container said, scrubbed and short. */
  detail: string;
}

export interface PodProblemOptions {
  now: number;
  /** Default UNSCHEDULABLE_GRACE_MS. */
  unschedulableGraceMs?: number;
  /** Default REPEATED_FAILURES. */
  repeatedFailures?: number;
}

export interface PodProblems {
  problems: PodProblem[];
  /** A pod is unschedulable but still within its grace: look again after this long. */
  recheckInMs?: number;
}

/** The problems of a corpus's pods (scan and run), in the order of PRIORITY, then of the pods' names. */
export function podProblems(pods: readonly V1Pod[], o: PodProblemOptions): PodProblems {
  const grace = o.unschedulableGraceMs ?? UNSCHEDULABLE_GRACE_MS;
  const problems: PodProblem[] = [];
  let recheckInMs: number | undefined;
  const attempts = new Map<string, V1Pod[]>();

  for (const pod of pods) {
    if (pod.metadata?.deletionTimestamp) continue;
    const phase = pod.status?.phase;
    if (phase === 'Failed' || phase === 'Succeeded') {
      const group = attemptGroup(pod);
      attempts.set(group, [...(attempts.get(group) ?? []), pod]);
      continue;
    }
    const waiting = waitingProblem(pod);
    if (waiting) {
      problems.push(waiting);
      continue;
    }
    const unschedulable = pod.status?.conditions?.find(
      (c) => c.type === 'PodScheduled' && c.status === 'False' && c.reason === 'Unschedulable',
    );
    if (unschedulable && !pod.spec?.nodeName) {
      const since = toMillis(unschedulable.lastTransitionTime) ?? o.now;
      const left = since + grace - o.now;
      if (left <= 0)
        problems.push({
          pod: nameOf(pod),
          what: whatOf(pod),
          reason: Reason.Unschedulable,
          detail: quote(unschedulable.message ?? 'unschedulable'),
        });
      else recheckInMs = Math.min(recheckInMs ?? left, left);
    }
  }

  for (const group of attempts.values()) {
    const failure = failureProblem(group, o.repeatedFailures ?? REPEATED_FAILURES);
    if (failure) problems.push(failure);
  }

  problems.sort((a, b) => PRIORITY.indexOf(a.reason) - PRIORITY.indexOf(b.reason) || a.pod.localeCompare(b.pod, 'en'));
  return recheckInMs === undefined ? { problems } : { problems, recheckInMs };
}

/** The PodsFailing condition's reason and message for a non-empty list of problems. */
export function podProblemsSummary(problems: readonly PodProblem[]): { reason: PodProblemReason; message: string } {
  const reason = problems[0]!.reason;
  const parts: string[] = [];
  for (const r of PRIORITY) {
    const [first, ...others] = problems.filter((p) => p.reason === r);
    if (!first) continue;
    // One pod's words in full, the others by name only: the count and the advice must fit too.
    let text = `pod ${first.pod} (${first.what}): ${first.detail}`;
    if (others.length > 0) {
      const named = others.slice(0, MAX_PODS_NAMED).map((p) => `${p.pod} (${p.what})`);
      const more = others.length - named.length;
      text += `; also ${named.join(', ')}${more > 0 ? ` and ${more} more pods` : ''}`;
    }
    parts.push(`${r}: ${text}${/[.…]$/.test(text) ? '' : '.'} ${ADVICE[r]}.`);
  }
  return { reason, message: truncate(parts.join(' '), MAX_MESSAGE) };
}

/** A container (init containers first) waiting for a reason the kubelet will not get past by itself. */
function waitingProblem(pod: V1Pod): PodProblem | undefined {
  const statuses: V1ContainerStatus[] = [
    ...(pod.status?.initContainerStatuses ?? []),
    ...(pod.status?.containerStatuses ?? []),
  ];
  for (const s of statuses) {
    const w = s.state?.waiting;
    const reason = stuckReason(w?.reason);
    if (!reason) continue;
    const detail = reason === Reason.RepeatedFailures ? `${w!.reason}` : `${w!.reason}: ${w!.message ?? ''}`;
    return { pod: nameOf(pod), what: whatOf(pod), reason, detail: quote(detail.replace(/: $/, '')) };
  }
  return undefined;
}

function stuckReason(waiting: string | undefined): PodProblemReason | undefined {
  switch (waiting) {
    case 'ErrImagePull':
    case 'ImagePullBackOff':
    case 'ErrImageNeverPull':
      return Reason.ImagePullFailed;
    case 'InvalidImageName':
      return Reason.InvalidImageName;
    case 'CreateContainerConfigError':
      return Reason.CreateContainerConfigError;
    case 'CreateContainerError':
      return Reason.CreateContainerError;
    case 'CrashLoopBackOff':
      return Reason.RepeatedFailures;
    default:
      return undefined;
  }
}

/**
 * The attempts of one shard (or of the scan), finished ones only. Nothing once one succeeded. Else the latest
 * failure, if OOMKilled; else the failures like the latest one, if there are enough of them.
 */
function failureProblem(group: readonly V1Pod[], repeated: number): PodProblem | undefined {
  if (group.some((p) => p.status?.phase === 'Succeeded')) return undefined;
  const failures = group
    .filter((p) => !isDisrupted(p))
    .map((pod) => ({ pod, end: terminated(pod) }))
    .filter((f): f is { pod: V1Pod; end: Termination } => f.end !== undefined)
    .sort((a, b) => a.end.at - b.end.at || nameOf(a.pod).localeCompare(nameOf(b.pod), 'en'));
  const latest = failures.at(-1);
  if (!latest) return undefined;
  if (latest.end.reason === 'OOMKilled') {
    const limit = latest.pod.spec?.containers?.[0]?.resources?.limits?.memory;
    return {
      pod: nameOf(latest.pod),
      what: whatOf(latest.pod),
      reason: Reason.OOMKilled,
      detail: `killed for using more memory than its limit${limit ? ` (${String(limit)})` : ''}, exit code ${latest.end.exitCode}`,
    };
  }
  const alike = failures.filter((f) => f.end.reason === latest.end.reason && f.end.exitCode === latest.end.exitCode);
  if (alike.length < repeated) return undefined;
  const said = latest.end.message ? `: ${quote(latest.end.message)}` : '';
  return {
    pod: nameOf(latest.pod),
    what: whatOf(latest.pod),
    reason: Reason.RepeatedFailures,
    detail: `${alike.length} attempts failed alike (${latest.end.reason ?? 'terminated'}, exit code ${latest.end.exitCode}${meaningOf(latest.end.exitCode)})${said}`,
  };
}

interface Termination {
  reason?: string;
  exitCode: number;
  message?: string;
  at: number;
}

/** How the pod's (first) container ended. */
function terminated(pod: V1Pod): Termination | undefined {
  const s = pod.status?.containerStatuses?.[0];
  const t = s?.state?.terminated ?? s?.lastState?.terminated;
  if (!t) return undefined;
  return {
    reason: t.reason,
    exitCode: t.exitCode,
    message: t.message?.trim() || undefined,
    at: toMillis(t.finishedAt) ?? toMillis(pod.metadata?.creationTimestamp) ?? 0,
  };
}

function meaningOf(code: number): string {
  if (code === EXIT_USAGE) return ': a usage or configuration error';
  if (code === EXIT_TEMPFAIL) return ': a temporary failure, e.g. the database out of reach';
  if (code === EXIT_BUG) return ': an unexpected error';
  if (code === 137) return ': killed';
  return '';
}

function isDisrupted(pod: V1Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === 'DisruptionTarget' && c.status === 'True') ?? false;
}

function attemptGroup(pod: V1Pod): string {
  return `${pod.metadata?.labels?.[LABEL_ROLE] ?? ''}/${pod.metadata?.annotations?.[COMPLETION_INDEX] ?? ''}`;
}

function whatOf(pod: V1Pod): string {
  const role = pod.metadata?.labels?.[LABEL_ROLE];
  if (role === 'scan') return 'scan';
  const index = pod.metadata?.annotations?.[COMPLETION_INDEX];
  return index !== undefined ? `shard ${index}` : (role ?? 'pod');
}

const nameOf = (pod: V1Pod): string => pod.metadata?.name ?? '(unnamed)';

/** Objects from list calls carry Dates, from watches strings (kube.ts). */
function toMillis(t: Date | string | undefined): number | undefined {
  if (t === undefined) return undefined;
  const ms = t instanceof Date ? t.getTime() : Date.parse(t);
  return Number.isFinite(ms) ? ms : undefined;
}

function quote(text: string): string {
  return truncate(scrubSecrets(text.replace(/\s+/g, ' ').trim()), MAX_QUOTE);
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
