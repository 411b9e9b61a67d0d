import type { V1Job } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { FakeDatabase } from './fake-database.js';
import { condition, setupReconciler } from './harness.js';

// What the API server and the pods say that retrying will not mend, and how it reaches the MidiCorpus: the
// WriteRejected and PodsFailing conditions, status.reason, and one Event per change.
const setup = () =>
  setupReconciler(
    { url: 'postgres://midi:secret@db.music.svc:5432/midi', database: (world) => new FakeDatabase(world.secrets) },
    [{ name: 'a', uid: 'uid-a', spec: { database: { maxConnections: 20 } } }],
  );

/** A 422 as the API server gives it for a Job whose volume lacks its claim's name (client-node 1.4's ApiException). */
const invalidJob = (name: string) =>
  Object.assign(new Error('HTTP-Code: 422'), {
    code: 422,
    body: JSON.stringify({
      kind: 'Status',
      status: 'Failure',
      reason: 'Invalid',
      code: 422,
      message: `Job.batch "${name}" is invalid: spec.template.spec.volumes[0].persistentVolumeClaim.claimName: Required value`,
    }),
  });

describe('Reconciler: writes the API server refuses for good', () => {
  it('says so in WriteRejected and an Event, tries again only on the slow timer, and at once once the spec changes', async () => {
    const { world, pass, corpus, clock } = setup();
    const create = world.createJob.bind(world);
    const attempts: string[] = [];
    world.createJob = async (job: V1Job) => {
      attempts.push(job.metadata!.name!);
      throw invalidJob(job.metadata!.name!);
    };

    const first = await pass('a'); // not thrown: a failed pass would be retried with backoff, for ever
    expect(attempts).toEqual(['a-scan']);
    expect(condition(corpus('a'), 'WriteRejected')).toMatchObject({
      status: 'True',
      reason: 'Invalid',
      message:
        'The API server refused creating the scan Job a-scan (422 Invalid): Job.batch "a-scan" is invalid: ' +
        'spec.template.spec.volumes[0].persistentVolumeClaim.claimName: Required value. Fix the spec: the operator ' +
        'tries again every 300 s, and at once when the spec changes.',
    });
    expect(corpus('a').status?.reason).toBe('Invalid');
    expect(world.events.filter((e) => e.reason === 'Invalid')).toEqual([
      expect.objectContaining({ type: 'Warning', message: condition(corpus('a'), 'WriteRejected')!.message }),
    ]);
    expect(first.requeueAfterMs).toBe(30_000);

    // Passes in between (its own status write, resyncs, peers' wake-ups) do not ask again.
    for (let i = 0; i < 9; i++) {
      clock.advance(30_000);
      await pass('a');
    }
    expect(attempts).toHaveLength(1);
    clock.advance(30_000); // 300 s since the refusal
    await pass('a');
    expect(attempts).toHaveLength(2);
    expect(world.events.filter((e) => e.reason === 'Invalid')).toHaveLength(1); // the same refusal: no new Event

    // The user fixes the spec: a new generation is tried at once, and the condition clears.
    corpus('a').metadata.generation = 2;
    world.createJob = create;
    clock.advance(1000);
    await pass('a');
    expect(world.job('a-scan')).toBeDefined();
    await pass('a');
    expect(condition(corpus('a'), 'WriteRejected')).toMatchObject({ status: 'False', reason: 'WritesAccepted' });
    expect(corpus('a').status?.reason).toBeUndefined();
    expect(world.events.at(-1)).toMatchObject({ type: 'Normal', reason: 'WritesAccepted' });
  });

  it('names a 403 Forbidden as such', async () => {
    const { world, pass, corpus } = setup();
    world.createJob = async () => {
      throw Object.assign(new Error('HTTP-Code: 403'), {
        code: 403,
        body: JSON.stringify({ reason: 'Forbidden', message: 'jobs.batch is forbidden: User "x" cannot create' }),
      });
    };
    await pass('a');
    expect(condition(corpus('a'), 'WriteRejected')).toMatchObject({ status: 'True', reason: 'Forbidden' });
  });

  it('fails the pass on a transient error (retried with backoff), and shows nothing in status', async () => {
    const { world, pass, corpus } = setup();
    world.createJob = async () => {
      throw Object.assign(new Error('HTTP-Code: 503'), { code: 503, body: '{"reason":"ServiceUnavailable"}' });
    };
    await expect(pass('a')).rejects.toMatchObject({ code: 503 });
    expect(condition(corpus('a'), 'WriteRejected')).toBeUndefined();
  });

  it('keeps no secret from the refusal', async () => {
    const { world, pass, corpus } = setup();
    world.createJob = async () => {
      throw Object.assign(new Error('HTTP-Code: 422'), {
        code: 422,
        body: JSON.stringify({
          reason: 'Invalid',
          message: 'env[0].value: Invalid value: "postgres://midi:hunter2@db/x"',
        }),
      });
    };
    await pass('a');
    expect(JSON.stringify([corpus('a').status, world.events])).not.toContain('hunter2');
  });
});

describe('Reconciler: pods that are stuck or killed', () => {
  it('shows a scan pod that cannot pull its image in PodsFailing, with one Event, and clears it when the pod runs', async () => {
    const { world, pass, corpus } = setup();
    await pass('a');
    const [scan] = world.startPods('a-scan', 1);
    scan!.status = {
      phase: 'Pending',
      containerStatuses: [
        {
          name: 'scan',
          image: 'localhost:5999/nothing:1',
          imageID: '',
          ready: false,
          restartCount: 0,
          state: { waiting: { reason: 'ErrImagePull', message: 'failed to pull: connection refused' } },
        },
      ],
    };
    await pass('a');
    expect(condition(corpus('a'), 'PodsFailing')).toMatchObject({
      status: 'True',
      reason: 'ImagePullFailed',
      message: expect.stringContaining(`pod ${scan!.metadata!.name} (scan): ErrImagePull: failed to pull`),
    });
    expect(corpus('a').status?.reason).toBe('ImagePullFailed');
    // The kubelet turns to ImagePullBackOff: the same reason, so no second Event.
    scan!.status.containerStatuses![0]!.state = { waiting: { reason: 'ImagePullBackOff', message: 'Back-off' } };
    await pass('a');
    await pass('a');
    expect(world.events.filter((e) => e.reason === 'ImagePullFailed')).toEqual([
      expect.objectContaining({ type: 'Warning' }),
    ]);

    scan!.status = { phase: 'Running' };
    await pass('a');
    expect(condition(corpus('a'), 'PodsFailing')).toMatchObject({ status: 'False', reason: 'PodsHealthy' });
    expect(corpus('a').status?.reason).toBeUndefined();
    expect(world.events.at(-1)).toMatchObject({ type: 'Normal', reason: 'PodsHealthy' });
  });

  it('waits out the grace of an unschedulable pod, then reports it', async () => {
    const { world, pass, corpus, clock } = setup();
    await pass('a');
    const [scan] = world.startPods('a-scan', 1);
    scan!.status = {
      phase: 'Pending',
      conditions: [
        {
          type: 'PodScheduled',
          status: 'False',
          reason: 'Unschedulable',
          message: '0/2 nodes are available',
          lastTransitionTime: new Date(clock.now()),
        },
      ],
    };
    const r = await pass('a');
    expect(condition(corpus('a'), 'PodsFailing')).toMatchObject({ status: 'False' });
    expect(r.requeueAfterMs).toBe(30_000);
    clock.advance(180_000);
    await pass('a');
    expect(condition(corpus('a'), 'PodsFailing')).toMatchObject({ status: 'True', reason: 'Unschedulable' });
  });

  it("keeps a finished corpus's last word on its pods after they are gone (ttlSecondsAfterFinished)", async () => {
    const oom = {
      type: 'PodsFailing',
      status: 'True' as const,
      reason: 'OOMKilled',
      message:
        'OOMKilled: pod a-run-0-x (shard 0): killed for using more memory than its limit (160Mi), exit code 137.',
      lastTransitionTime: '2025-03-01T11:00:00Z',
      observedGeneration: 1,
    };
    const { pass, corpus } = setupReconciler(
      { url: 'postgres://midi:secret@db.music.svc:5432/midi', database: (world) => new FakeDatabase(world.secrets) },
      [
        {
          name: 'a',
          uid: 'uid-a',
          spec: { database: { maxConnections: 20 } },
          status: { phase: 'Failed', shards: { total: 1, succeeded: 0, failed: 1 }, conditions: [oom] },
        },
      ],
    );
    await pass('a');
    expect(condition(corpus('a'), 'PodsFailing')).toEqual(oom);
    expect(corpus('a').status?.reason).toBe('OOMKilled');
  });
});
