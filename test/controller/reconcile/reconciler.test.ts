import { describe, expect, it } from 'vitest';
import { makeCorpus, type CorpusOptions } from '../fixtures.js';
import { FakeDatabase } from './fake-database.js';
import { condition, scanAnswer, setupReconciler } from './harness.js';

// The reconcile's decisions, with no database: every corpus gives spec.database.maxConnections (or never gets as far
// as the budget). reconciler-postgres.test.ts has the tests about what is read from the database itself.
const setup = (...corpora: CorpusOptions[]) =>
  setupReconciler(
    { url: 'postgres://midi:secret@db.music.svc:5432/midi', database: (world) => new FakeDatabase(world.secrets) },
    corpora,
  );

describe('Reconciler', () => {
  it('refuses to act without the Secret, says so, and looks again later', async () => {
    const { world, pass, corpus } = setup({ name: 'a', spec: { database: { secretRef: { name: 'missing' } } } });
    const r = await pass('a');
    expect(world.jobList).toEqual([]);
    expect(corpus('a').status?.phase).toBe('Invalid');
    expect(condition(corpus('a'), 'InvalidSpec')).toMatchObject({
      status: 'True',
      reason: 'SecretNotFound',
      message: 'Secret music/missing not found.',
    });
    expect(r.requeueAfterMs).toBe(60_000);
    expect(world.events).toEqual([expect.objectContaining({ type: 'Warning', reason: 'SecretNotFound' })]);
  });

  it('refuses a Secret not labelled for MidiCorpora: no Job, and status and Event say why without its content', async () => {
    const { world, pass, corpus } = setup({
      name: 'a',
      spec: { database: { secretRef: { name: 'other' }, maxConnections: 20 } },
    });
    // Someone else's Secret in the same namespace, with a perfectly good URL: a corpus must not get it into a pod.
    world.setSecret('music/other', { url: 'postgres://app:hunter2@db.music.svc:5432/app' }, {});
    const r = await pass('a');
    await pass('a');
    expect(world.jobList).toEqual([]);
    expect(world.writes.filter((w) => !w.startsWith('status'))).toEqual([]);
    expect(corpus('a').status?.phase).toBe('Invalid');
    expect(condition(corpus('a'), 'InvalidSpec')).toMatchObject({
      status: 'True',
      reason: 'SecretNotLabelled',
      message:
        'Secret music/other is not labelled midi.corpus.dev/database=true: label it to let MidiCorpora use it ' +
        '(the operator passes it to the pods it creates).',
    });
    expect(r.requeueAfterMs).toBe(60_000);
    expect(world.events).toEqual([expect.objectContaining({ type: 'Warning', reason: 'SecretNotLabelled' })]);
    expect(JSON.stringify([corpus('a').status, world.events])).not.toMatch(/hunter2|db\.music/);

    // Labelled, it is used: the scan starts.
    world.setSecret('music/other', { url: 'postgres://app:hunter2@db.music.svc:5432/app' });
    await pass('a');
    expect(world.writes.at(-1)).toMatch(/^create a-scan/);
  });

  it('starts no pod when not even one fits, and says what to change', async () => {
    const running = {
      phase: 'Running' as const,
      files: { total: 10, processed: 0, failed: 0 },
      shards: { total: 10, succeeded: 0, failed: 0 },
    };
    const { world, pass, corpus } = setup({
      name: 'big',
      uid: 'uid-big',
      status: running,
      spec: { database: { maxConnections: 10 }, runner: { resources: { requests: { cpu: '4' } } } },
    });
    await pass('big');
    expect(world.writes).toEqual(['create big-run parallelism=0']);
    await pass('big');
    expect(condition(corpus('big'), 'BudgetLimited')).toMatchObject({ status: 'True', reason: 'BudgetExhausted' });
    expect(condition(corpus('big'), 'BudgetLimited')!.message).toMatch(
      /one pod holds up to 5 connections, the allowance is 4 .*Raise max_connections/,
    );
  });

  it("shares a database: a newcomer's scan waits until the first corpus has shrunk and its pods are gone", async () => {
    const running = {
      phase: 'Running' as const,
      files: { total: 100_000, processed: 0, failed: 0 },
      shards: { total: 100, succeeded: 0, failed: 0 },
    };
    const { world, pass, corpus, queued } = setup({
      name: 'a',
      uid: 'uid-a',
      createdAt: '2025-01-01T00:00:00Z',
      status: running,
      spec: { database: { maxConnections: 20 } },
    });
    await pass('a');
    expect(world.writes).toEqual(['create a-run parallelism=7']); // 14 connections / 2 per pod
    world.startPods('a-run', 7);

    world.addCorpus(
      makeCorpus({
        name: 'b',
        uid: 'uid-b',
        createdAt: '2025-01-02T00:00:00Z',
        spec: { database: { maxConnections: 20 } },
      }),
    );
    await pass('b');
    expect(world.job('b-scan')).toBeUndefined(); // all 14 connections are held by a's pods
    expect(condition(corpus('b'), 'BudgetLimited')).toMatchObject({ status: 'True', reason: 'BudgetShared' });
    expect(queued).toContain('music/a'); // b's claim is new: a must look again now, not at its next resync

    await pass('a'); // b's scan sets one connection aside: a shrinks to 6 pods
    expect(world.writes.at(-1)).toBe('patch a-run parallelism=6 suspend=false');
    expect(queued).toContain('music/b');
    world.trimToParallelism('a-run');
    await pass('b');
    expect(world.job('b-scan')).toBeUndefined(); // the 7th pod is Terminating: its connections are still held

    world.removeTerminating();
    await pass('b');
    expect(world.job('b-scan')).toBeDefined();
    world.startPods('b-scan', 1);

    // The scan reports; b's share is planned while a's pods still hold theirs.
    world.finishScan('b-scan', scanAnswer('b', 50_000, 50));
    await pass('b'); // records the totals
    await pass('b'); // creates the run Job: a still holds 6 pods = 12 connections, so b may start only 1
    expect(world.writes.at(-1)).toBe('create b-run parallelism=1');
    await pass('a'); // fair share of 14: 4 pods each (8 + 8 > 14 → the older gets the odd pod: 4 and 3)
    expect(world.writes.at(-1)).toBe('patch a-run parallelism=4 suspend=false');
    world.trimToParallelism('a-run');
    await pass('b');
    expect(world.job('b-run')!.spec!.parallelism).toBe(1); // a's 2 stopping pods still count
    world.removeTerminating();
    await pass('b');
    expect(world.job('b-run')!.spec!.parallelism).toBe(3);

    // At no point did a's pods plus b's allowed pods exceed the allowance.
    world.startPods('b-run', 3);
    const held = world.livePods('a-run').length * 2 + world.livePods('b-run').length * 2;
    expect(held).toBeLessThanOrEqual(14);
  });

  it("hands a deleted corpus's share to the other once its pods are gone", async () => {
    const running = {
      phase: 'Running' as const,
      files: { total: 100_000, processed: 0, failed: 0 },
      shards: { total: 100, succeeded: 0, failed: 0 },
    };
    const spec = { database: { maxConnections: 20 } };
    const { world, pass } = setup(
      { name: 'a', uid: 'uid-a', createdAt: '2025-01-01T00:00:00Z', status: running, spec },
      { name: 'b', uid: 'uid-b', createdAt: '2025-01-02T00:00:00Z', status: running, spec },
    );
    await pass('a');
    await pass('b');
    expect(world.writes).toEqual(['create a-run parallelism=4', 'create b-run parallelism=3']);
    world.startPods('a-run', 4);
    world.startPods('b-run', 3);

    world.corpusMap.delete('music/a'); // its Job stays until the garbage collector removes it
    await pass('a');
    await pass('b');
    expect(world.job('b-run')!.spec!.parallelism).toBe(3); // a's Job may still run 4 pods
    world.jobList = world.jobList.filter((j) => j.metadata!.name !== 'a-run');
    for (const p of world.livePods('a-run')) p.metadata!.deletionTimestamp = new Date();
    await pass('b');
    expect(world.job('b-run')!.spec!.parallelism).toBe(3); // its pods are stopping
    world.removeTerminating();
    await pass('b');
    expect(world.job('b-run')!.spec!.parallelism).toBe(7);
  });

  it('suspends and resumes the run Job with the spec', async () => {
    const running = {
      phase: 'Running' as const,
      files: { total: 10, processed: 0, failed: 0 },
      shards: { total: 10, succeeded: 0, failed: 0 },
    };
    const { world, pass, corpus } = setup({
      name: 'a',
      uid: 'uid-a',
      status: running,
      spec: { database: { maxConnections: 20 } },
    });
    await pass('a');
    world.addCorpus({ ...corpus('a'), spec: { ...corpus('a').spec, suspend: true } });
    await pass('a');
    expect(world.writes.at(-1)).toBe('patch a-run parallelism=0 suspend=true');
    await pass('a');
    expect(corpus('a').status?.phase).toBe('Suspended');
    world.addCorpus({ ...corpus('a'), spec: { ...corpus('a').spec, suspend: false } });
    await pass('a');
    expect(world.writes.at(-1)).toBe('patch a-run parallelism=7 suspend=false');
  });
});
