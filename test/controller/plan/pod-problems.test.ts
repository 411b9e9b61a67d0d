import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { podProblems, podProblemsSummary, type PodProblem } from '../../../controller/plan/pod-problems.js';

const NOW = Date.parse('2025-03-01T12:00:00Z');
const ago = (s: number) => new Date(NOW - s * 1000).toISOString();

/** A pod of the corpus: `scan`, or a runner of shard `index`, with what its status says. */
function pod(
  name: string,
  o: {
    role?: 'scan' | 'run';
    index?: number;
    phase?: string;
    waiting?: { reason: string; message?: string };
    terminated?: { reason: string; exitCode: number; finishedSecondsAgo?: number; message?: string };
    unschedulableFor?: number;
    disrupted?: boolean;
    deleting?: boolean;
    memoryLimit?: string;
  } = {},
): V1Pod {
  const role = o.role ?? 'run';
  const conditions: NonNullable<V1Pod['status']>['conditions'] = [];
  if (o.unschedulableFor !== undefined)
    conditions.push({
      type: 'PodScheduled',
      status: 'False',
      reason: 'Unschedulable',
      message: "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector.",
      lastTransitionTime: ago(o.unschedulableFor) as unknown as Date,
    });
  if (o.disrupted) conditions.push({ type: 'DisruptionTarget', status: 'True', reason: 'EvictionByEvictionAPI' });
  return {
    metadata: {
      name,
      labels: { 'midi.corpus.dev/role': role },
      annotations: role === 'run' ? { 'batch.kubernetes.io/job-completion-index': String(o.index ?? 0) } : {},
      ...(o.deleting ? { deletionTimestamp: new Date(NOW) } : {}),
    },
    spec: {
      containers: [{ name: role, resources: o.memoryLimit ? { limits: { memory: o.memoryLimit } } : {} }],
      ...(o.unschedulableFor === undefined && o.phase !== 'Pending' ? { nodeName: 'node-1' } : {}),
    },
    status: {
      phase: o.phase ?? (o.terminated ? 'Failed' : o.unschedulableFor !== undefined ? 'Pending' : 'Running'),
      conditions,
      containerStatuses: [
        {
          name: role,
          image: 'x',
          imageID: '',
          ready: false,
          restartCount: 0,
          state: o.waiting
            ? { waiting: o.waiting }
            : o.terminated
              ? {
                  terminated: {
                    reason: o.terminated.reason,
                    exitCode: o.terminated.exitCode,
                    message: o.terminated.message,
                    finishedAt: ago(o.terminated.finishedSecondsAgo ?? 10) as unknown as Date,
                  },
                }
              : { running: {} },
        },
      ],
    },
  };
}

const brief = (p: PodProblem) => `${p.pod} ${p.what} ${p.reason}`;

describe('podProblems', () => {
  const table: Array<{ name: string; pods: V1Pod[]; grace?: number; expected: string[]; recheckInMs?: number }> = [
    { name: 'running pods: nothing', pods: [pod('r0', { index: 0 }), pod('s', { role: 'scan' })], expected: [] },
    {
      name: 'ErrImagePull on the scan pod',
      pods: [
        pod('s', { role: 'scan', phase: 'Pending', waiting: { reason: 'ErrImagePull', message: 'dial tcp: refused' } }),
      ],
      expected: ['s scan ImagePullFailed'],
    },
    {
      name: 'ImagePullBackOff gives the same reason as ErrImagePull (one Event, not one per flip)',
      pods: [pod('r1', { index: 1, phase: 'Pending', waiting: { reason: 'ImagePullBackOff' } })],
      expected: ['r1 shard 1 ImagePullFailed'],
    },
    {
      name: 'CreateContainerConfigError',
      pods: [
        pod('r0', { phase: 'Pending', waiting: { reason: 'CreateContainerConfigError', message: 'runAsNonRoot' } }),
      ],
      expected: ['r0 shard 0 CreateContainerConfigError'],
    },
    {
      name: 'ContainerCreating is only slow: nothing',
      pods: [pod('r0', { phase: 'Pending', waiting: { reason: 'ContainerCreating' } })],
      expected: [],
    },
    {
      name: 'unschedulable within the grace: nothing yet, look again when it ends',
      pods: [pod('r0', { unschedulableFor: 60 })],
      grace: 180_000,
      expected: [],
      recheckInMs: 120_000,
    },
    {
      name: 'unschedulable past the grace',
      pods: [pod('r0', { unschedulableFor: 181 })],
      grace: 180_000,
      expected: ['r0 shard 0 Unschedulable'],
    },
    {
      name: 'OOMKilled, its replacement running: still reported until the shard succeeds',
      pods: [
        pod('r0-a', { index: 0, terminated: { reason: 'OOMKilled', exitCode: 137 }, memoryLimit: '160Mi' }),
        pod('r0-b', { index: 0 }),
      ],
      expected: ['r0-a shard 0 OOMKilled'],
    },
    {
      name: 'OOMKilled, then the shard succeeded: nothing',
      pods: [
        pod('r0-a', { index: 0, terminated: { reason: 'OOMKilled', exitCode: 137 } }),
        pod('r0-b', { index: 0, phase: 'Succeeded', terminated: { reason: 'Completed', exitCode: 0 } }),
      ],
      expected: [],
    },
    {
      name: 'one failed attempt: not yet repeated',
      pods: [pod('r2-a', { index: 2, terminated: { reason: 'Error', exitCode: 75 } })],
      expected: [],
    },
    {
      name: 'two failed attempts of one shard, alike: repeated failures',
      pods: [
        pod('r2-a', { index: 2, terminated: { reason: 'Error', exitCode: 75, finishedSecondsAgo: 30 } }),
        pod('r2-b', { index: 2, terminated: { reason: 'Error', exitCode: 75, finishedSecondsAgo: 5 } }),
      ],
      expected: ['r2-b shard 2 RepeatedFailures'],
    },
    {
      name: 'two failed attempts of one shard, different exit codes: not alike',
      pods: [
        pod('r2-a', { index: 2, terminated: { reason: 'Error', exitCode: 75, finishedSecondsAgo: 30 } }),
        pod('r2-b', { index: 2, terminated: { reason: 'Error', exitCode: 1, finishedSecondsAgo: 5 } }),
      ],
      expected: [],
    },
    {
      name: 'failures of two different shards are not repeated failures of one',
      pods: [
        pod('r1', { index: 1, terminated: { reason: 'Error', exitCode: 75 } }),
        pod('r2', { index: 2, terminated: { reason: 'Error', exitCode: 75 } }),
      ],
      expected: [],
    },
    {
      name: "evicted attempts are not the shard's failures",
      pods: [
        pod('r0-a', {
          index: 0,
          disrupted: true,
          terminated: { reason: 'Error', exitCode: 75, finishedSecondsAgo: 30 },
        }),
        pod('r0-b', { index: 0, terminated: { reason: 'Error', exitCode: 75, finishedSecondsAgo: 5 } }),
      ],
      expected: [],
    },
    {
      name: 'a pod being deleted is not looked at',
      pods: [pod('r0', { deleting: true, phase: 'Pending', waiting: { reason: 'ErrImagePull' } })],
      expected: [],
    },
    {
      name: 'several at once: the most telling first',
      pods: [
        pod('r3', { index: 3, unschedulableFor: 600 }),
        pod('r1', { index: 1, phase: 'Pending', waiting: { reason: 'ImagePullBackOff' } }),
        pod('r0', { index: 0, terminated: { reason: 'OOMKilled', exitCode: 137 } }),
      ],
      expected: ['r0 shard 0 OOMKilled', 'r1 shard 1 ImagePullFailed', 'r3 shard 3 Unschedulable'],
    },
  ];
  it.each(table)('$name', ({ pods, grace, expected, recheckInMs }) => {
    const r = podProblems(pods, { now: NOW, unschedulableGraceMs: grace });
    expect(r.problems.map(brief)).toEqual(expected);
    expect(r.recheckInMs).toBe(recheckInMs);
  });
});

describe('podProblemsSummary', () => {
  it('names the pods and the reason, says what to do, and stays within an Event', () => {
    const pods = Array.from({ length: 40 }, (_, i) =>
      pod(`songs-run-${i}-abcde`, {
        index: i,
        phase: 'Pending',
        waiting: { reason: 'ErrImagePull', message: 'x'.repeat(500) },
      }),
    );
    const { reason, message } = podProblemsSummary(podProblems(pods, { now: NOW }).problems);
    expect(reason).toBe('ImagePullFailed');
    expect(message).toMatch(/^ImagePullFailed: pod songs-run-0-abcde \(shard 0\): ErrImagePull: x+/);
    expect(message).toContain(
      '; also songs-run-1-abcde (shard 1), songs-run-10-abcde (shard 10), songs-run-11-abcde (shard 11) and 36 more pods. ',
    );
    expect(message).toContain('fix spec.runner.image');
    expect(message.length).toBeLessThanOrEqual(1000);
  });

  it('quotes no connection URI a container wrote', () => {
    const pods = ['a', 'b'].map((n, i) =>
      pod(n, {
        index: 0,
        terminated: {
          reason: 'Error',
          exitCode: 75,
          finishedSecondsAgo: 20 - i,
          message: 'connect failed: postgres://midi:hunter2@db:5432/midi',
        },
      }),
    );
    const { reason, message } = podProblemsSummary(podProblems(pods, { now: NOW }).problems);
    expect(reason).toBe('RepeatedFailures');
    expect(message).toContain('2 attempts failed alike (Error, exit code 75: a temporary failure');
    expect(message).not.toContain('hunter2');
  });

  it('says the memory limit of an OOMKilled runner', () => {
    const p = pod('r0', { terminated: { reason: 'OOMKilled', exitCode: 137 }, memoryLimit: '160Mi' });
    expect(podProblemsSummary(podProblems([p], { now: NOW }).problems).message).toMatch(
      /^OOMKilled: pod r0 \(shard 0\): killed for using more memory than its limit \(160Mi\), exit code 137\. Raise spec\.runner\.resources\.limits\.memory/,
    );
  });
});
