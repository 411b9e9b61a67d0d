import { describe, expect, it } from 'vitest';
import type { MidiCorpus } from '../../../controller/api/v1alpha1/midicorpus.js';
import { planRerun, rerunStatus } from '../../../controller/plan/rerun.js';
import { parseScanResult } from '../../../controller/plan/scan-result.js';
import { jobWith, makeCorpus, type CorpusOptions } from '../fixtures.js';
import { FakeDatabase } from './fake-database.js';
import { condition, setupReconciler } from './harness.js';
import type { World } from './world.js';

const setup = (...corpora: CorpusOptions[]) =>
  setupReconciler(
    { url: 'postgres://midi:secret@db.music.svc:5432/midi', database: (world) => new FakeDatabase(world.secrets) },
    corpora,
  );

/** A scan answer that says how it compared with the last scan. */
const rescanAnswer = (name: string, o: { files: number; shards: number; work: number; added?: number }) =>
  JSON.stringify({
    corpus: `music/${name}`,
    files: o.files,
    bytes: o.files * 1000,
    shards: o.shards,
    problems: 0,
    added: o.added ?? 0,
    changed: o.work - (o.added ?? 0),
    unchanged: o.files - o.work,
    missing: 1,
    work: o.work,
  });

const bump = (world: World, c: MidiCorpus, rerun: number) =>
  world.addCorpus({
    ...c,
    metadata: { ...c.metadata, generation: (c.metadata.generation ?? 1) + 1 },
    spec: { ...c.spec, rerun },
  });

/** Runs the first run of corpus `a` to Succeeded: scan (10 files, 2 shards), run Job complete. */
async function firstRun(s: ReturnType<typeof setup>) {
  const { world, pass, corpus } = s;
  await pass('a');
  expect(world.writes.at(-1)).toMatch(/^create a-scan /);
  world.finishScan('a-scan', rescanAnswer('a', { files: 10, shards: 2, work: 10, added: 10 }));
  await pass('a'); // records the scan's answer
  await pass('a');
  expect(world.writes.at(-1)).toMatch(/^create a-run /);
  const run = world.job('a-run')!;
  for (const p of world.startPods('a-run', 2)) p.status = { phase: 'Succeeded' };
  run.status = { succeeded: 2, conditions: [{ type: 'Complete', status: 'True' }] };
  await pass('a');
  expect(corpus('a').status?.phase).toBe('Succeeded');
}

describe('running a corpus again (spec.rerun)', () => {
  it('on a Succeeded corpus: a new scan Job and run Job of their own names, over the work only, same corpus key', async () => {
    const s = setup({ name: 'a', uid: 'uid-a', spec: { database: { maxConnections: 20 } } });
    const { world, pass, corpus } = s;
    await firstRun(s);
    await pass('a'); // the final status settles
    const before = world.writes.length;
    // A final corpus is left alone until spec.rerun is bumped.
    await pass('a');
    await pass('a');
    expect(world.writes.length).toBe(before);

    bump(world, corpus('a'), 1);
    await pass('a');
    expect(world.writes.at(-1)).toBe('status music/a Pending');
    expect(corpus('a').status).toMatchObject({ phase: 'Pending', observedRerun: 1 });
    expect(corpus('a').status?.files).toBeUndefined();
    expect(condition(corpus('a'), 'Progressing')).toMatchObject({ status: 'True', reason: 'RerunStarted' });
    expect(world.events.at(-1)).toMatchObject({ reason: 'RerunStarted' });

    await pass('a');
    expect(world.writes.at(-1)).toMatch(/^create a-scan-1 /);
    // The scan is told the same corpus key: the same rows, compared with the last scan.
    const args = world.job('a-scan-1')!.spec!.template.spec!.containers[0]!.args!;
    expect(args[args.indexOf('--corpus') + 1]).toBe('music/a');
    // The first run's Jobs are still there (kept by retention), untouched.
    expect(world.job('a-scan')).toBeDefined();
    expect(world.job('a-run')).toBeDefined();

    world.finishScan('a-scan-1', rescanAnswer('a', { files: 11, shards: 1, work: 3, added: 1 }));
    await pass('a');
    expect(corpus('a').status).toMatchObject({
      phase: 'Running',
      observedRerun: 1,
      files: { total: 11 },
      shards: { total: 1, succeeded: 0 },
      lastScan: { added: 1, changed: 2, unchanged: 8, missing: 1, work: 3 },
      jobs: { scan: 'a-scan-1' },
    });
    await pass('a');
    expect(world.writes.at(-1)).toMatch(/^create a-run-1 parallelism=1$/);
    expect(world.job('a-run-1')!.spec!.completions).toBe(1);

    const run = world.job('a-run-1')!;
    for (const p of world.startPods('a-run-1', 1)) p.status = { phase: 'Succeeded' };
    run.status = { succeeded: 1, conditions: [{ type: 'Complete', status: 'True' }] };
    await pass('a');
    expect(corpus('a').status).toMatchObject({ phase: 'Succeeded', observedRerun: 1, jobs: { run: 'a-run-1' } });
  });

  it('with nothing to do (no work), succeeds without a run Job', async () => {
    const s = setup({ name: 'a', uid: 'uid-a', spec: { database: { maxConnections: 20 } } });
    const { world, pass, corpus } = s;
    await firstRun(s);
    bump(world, corpus('a'), 1);
    await pass('a');
    await pass('a');
    world.finishScan('a-scan-1', rescanAnswer('a', { files: 10, shards: 0, work: 0 }));
    await pass('a');
    expect(corpus('a').status).toMatchObject({ phase: 'Succeeded', observedRerun: 1, files: { total: 10 } });
    await pass('a');
    expect(world.writes.filter((w) => w.startsWith('create a-run-1'))).toEqual([]);
  });

  it('on a running corpus: stops the run in flight, waits for its pods to be gone, then scans again', async () => {
    const s = setup({ name: 'a', uid: 'uid-a', spec: { database: { maxConnections: 20 } } });
    const { world, pass, corpus } = s;
    await pass('a');
    world.finishScan('a-scan', rescanAnswer('a', { files: 10, shards: 5, work: 10, added: 10 }));
    await pass('a');
    await pass('a');
    const pods = world.startPods('a-run', 3);
    await pass('a');
    expect(corpus('a').status?.phase).toBe('Running');

    bump(world, corpus('a'), 1);
    const r = await pass('a');
    expect(world.writes.at(-1)).toBe('delete a-run');
    expect(world.events.at(-1)).toMatchObject({ reason: 'RunSuperseded' });
    expect(r.requeueAfterMs).toBeGreaterThan(0);
    // Its pods are stopping and still hold connections: nothing new starts, the status stays that of the old run.
    expect(pods.every((p) => p.metadata?.deletionTimestamp)).toBe(true);
    const writes = world.writes.length;
    await pass('a');
    await pass('a');
    expect(world.writes.length).toBe(writes);
    expect(corpus('a').status?.observedRerun).toBeUndefined();

    world.removeTerminating();
    await pass('a');
    expect(corpus('a').status).toMatchObject({ phase: 'Pending', observedRerun: 1 });
    await pass('a');
    expect(world.writes.at(-1)).toMatch(/^create a-scan-1 /);
  });

  it('a bump during a scan stops the scan first', async () => {
    const { world, pass, corpus } = setup({ name: 'a', uid: 'uid-a', spec: { database: { maxConnections: 20 } } });
    await pass('a');
    world.startPods('a-scan', 1);
    bump(world, corpus('a'), 2);
    await pass('a');
    expect(world.writes.at(-1)).toBe('delete a-scan');
    world.removeTerminating();
    await pass('a');
    expect(corpus('a').status).toMatchObject({ phase: 'Pending', observedRerun: 2 });
    await pass('a');
    expect(world.writes.at(-1)).toMatch(/^create a-scan-2 /);
  });

  it('on a Failed corpus: runs again, and the new scan is not confused by the old scan pod', async () => {
    const { world, pass, corpus } = setup({ name: 'a', uid: 'uid-a', spec: { database: { maxConnections: 20 } } });
    await pass('a');
    world.finishScan('a-scan', rescanAnswer('a', { files: 10, shards: 2, work: 10, added: 10 }));
    await pass('a');
    await pass('a');
    world.job('a-run')!.status = {
      failed: 1,
      failedIndexes: '1',
      succeeded: 1,
      conditions: [{ type: 'Failed', status: 'True', reason: 'FailedIndexes' }],
    };
    await pass('a');
    expect(corpus('a').status?.phase).toBe('Failed');

    bump(world, corpus('a'), 1);
    await pass('a');
    await pass('a');
    expect(world.writes.at(-1)).toMatch(/^create a-scan-1 /);
    // The scan of run 1 has not answered yet: the old scan pod's answer (10 files, 2 shards) is not taken for it.
    await pass('a');
    expect(corpus('a').status).toMatchObject({ phase: 'Scanning', observedRerun: 1 });
    expect(corpus('a').status?.shards).toBeUndefined();
    expect(condition(corpus('a'), 'Degraded')).toMatchObject({ status: 'False' });
  });
});

describe('scheduled rescans (spec.rescanEverySeconds)', () => {
  it('a finished corpus is looked at when its rescan is due, then runs again as a bump would, with Jobs of their own', async () => {
    const s = setup({ name: 'a', uid: 'uid-a', spec: { rescanEverySeconds: 3600, database: { maxConnections: 20 } } });
    const { world, pass, corpus, clock } = s;
    await firstRun(s);
    const r = await pass('a');
    expect(r.requeueAfterMs).toBe(3_600_000);
    clock.advance(3_599_000);
    await pass('a');
    expect(corpus('a').status?.phase).toBe('Succeeded'); // not yet
    clock.advance(1000);
    await pass('a');
    expect(corpus('a').status).toMatchObject({ phase: 'Pending', run: 1, observedRerun: 0 });
    expect(condition(corpus('a'), 'Progressing')!.message).toMatch(/^Run 1 \(scheduled rescan, every 3600 s/);
    await pass('a');
    expect(world.writes.at(-1)).toMatch(/^create a-scan-1 /);
    world.finishScan('a-scan-1', rescanAnswer('a', { files: 10, shards: 0, work: 0 }));
    await pass('a');
    expect(corpus('a').status).toMatchObject({ phase: 'Succeeded', run: 1 });

    // A bump after scheduled runs names the next run past them: Job names never repeat.
    bump(world, corpus('a'), 1);
    await pass('a');
    expect(corpus('a').status).toMatchObject({ phase: 'Pending', run: 2, observedRerun: 1 });
    await pass('a');
    expect(world.writes.at(-1)).toMatch(/^create a-scan-2 /);
  });

  it('without a schedule, a finished corpus waits for a bump', async () => {
    const s = setup({ name: 'a', uid: 'uid-a', spec: { database: { maxConnections: 20 } } });
    await firstRun(s);
    expect((await s.pass('a')).requeueAfterMs).toBeUndefined();
    s.clock.advance(365 * 86_400_000);
    await s.pass('a');
    expect(s.corpus('a').status?.phase).toBe('Succeeded');
  });
});

describe('planRerun', () => {
  const now = new Date('2025-03-01T12:00:00Z');
  const corpus = (rerun: number, observedRerun?: number) =>
    makeCorpus({
      spec: { rerun },
      status: { phase: 'Succeeded', ...(observedRerun !== undefined ? { observedRerun } : {}) },
    });
  const running = jobWith('bach-run', { active: 2 });
  const done = jobWith('bach-run', { succeeded: 2, conditions: [{ type: 'Complete', status: 'True' }] });
  const pod = { metadata: { name: 'bach-run-0-abcde' }, status: { phase: 'Running' } };

  const table = [
    { name: 'not bumped', corpus: corpus(0), jobs: {}, pods: [], want: 'none' },
    { name: 'already observed', corpus: corpus(2, 2), jobs: {}, pods: [], want: 'none' },
    { name: 'bumped, run Job running', corpus: corpus(1), jobs: { runJob: running }, pods: [pod], want: 'stop' },
    { name: 'bumped, scan running', corpus: corpus(1), jobs: { scanJob: running }, pods: [], want: 'stop' },
    { name: 'bumped, pods still stopping', corpus: corpus(1), jobs: { runJob: done }, pods: [pod], want: 'wait' },
    { name: 'bumped, all quiet', corpus: corpus(1), jobs: { runJob: done }, pods: [], want: 'start' },
  ] as const;
  for (const row of table)
    it(row.name, () => {
      expect(planRerun({ corpus: row.corpus, ...row.jobs, livePods: row.pods, now }).kind).toBe(row.want);
    });

  it('starts the new run from Pending with the spec.rerun it is about, the old counts gone', () => {
    const c = makeCorpus({
      spec: { rerun: 3 },
      generation: 4,
      status: {
        phase: 'Failed',
        observedRerun: 1,
        files: { total: 10, processed: 10, failed: 2 },
        shards: { total: 2, succeeded: 1, failed: 1 },
        jobs: { scan: 'bach-scan-1', run: 'bach-run-1' },
        startTime: '2025-02-01T00:00:00Z',
        completionTime: '2025-02-01T01:00:00Z',
      },
    });
    const status = rerunStatus(c, now);
    expect(status).toMatchObject({ phase: 'Pending', observedRerun: 3, observedGeneration: 4 });
    expect([status.files, status.shards, status.jobs, status.startTime, status.completionTime]).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
  });
});

describe("the scan's answer of a run again", () => {
  const answer = (o: Record<string, number>) =>
    JSON.stringify({ corpus: 'music/a', files: 10, bytes: 1, shards: 1, problems: 0, ...o });
  it('takes the counts of the comparison with the last scan', () => {
    expect(parseScanResult(answer({ added: 1, changed: 1, unchanged: 8, missing: 2, work: 2 }), 'music/a')).toEqual({
      ok: true,
      result: { files: 10, bytes: 1, shards: 1, lastScan: { added: 1, changed: 1, unchanged: 8, missing: 2, work: 2 } },
    });
  });
  it('accepts no shards when nothing needs work, and refuses shards that do not fit the work', () => {
    expect(
      parseScanResult(answer({ shards: 0, added: 0, changed: 0, unchanged: 10, missing: 0, work: 0 }), 'music/a').ok,
    ).toBe(true);
    expect(
      parseScanResult(answer({ shards: 3, added: 0, changed: 2, unchanged: 8, missing: 0, work: 2 }), 'music/a'),
    ).toEqual({
      ok: false,
      message: "the scan's shard count does not fit its file count",
    });
    expect(parseScanResult(answer({ added: 0, changed: 0, unchanged: 10, missing: 0, work: -1 }), 'music/a')).toEqual({
      ok: false,
      message: "the scan's work is not a whole number ≥ 0",
    });
  });
  it('an answer without the counts (an older scan image) is a first scan over every file', () => {
    expect(parseScanResult(JSON.stringify({ corpus: 'music/a', files: 10, bytes: 1, shards: 0 }), 'music/a').ok).toBe(
      false,
    );
  });
});
