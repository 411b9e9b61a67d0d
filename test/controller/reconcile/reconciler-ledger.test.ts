import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { applicationNameFor } from '../../../contract/application-name.js';
import { VANISHED_GRACE_MS } from '../../../controller/reconcile/server-ledger.js';
import type { CorpusOptions } from '../fixtures.js';
import { clientSession, FakeDatabase } from './fake-database.js';
import { condition, setupReconciler } from './harness.js';
import { COMPLETION_INDEX } from './world.js';

// The reconcile with the server's ledger in the picture: the FakeDatabase's sessions are what pg_stat_activity would
// show on the server (the operator's own reading session left out). max_connections 20, reserved 3, headroom 2 and
// the operator's 1 leave 14 connections: 7 runner pods of 2 (1 CPU: one writer and one control connection).
const url = 'postgres://midi:secret@db.music.svc:5432/midi';
const running = {
  phase: 'Running' as const,
  files: { total: 100_000, processed: 0, failed: 0 },
  shards: { total: 100, succeeded: 0, failed: 0 },
};
const setup = (...corpora: CorpusOptions[]) =>
  setupReconciler({ url, database: (world) => new FakeDatabase(world.secrets) }, corpora);
const corpusA = { name: 'a', uid: 'uid-a', status: running, spec: { database: { maxConnections: 20 } } };

/** The sessions a pod's process holds: its whole pool, each carrying its claim and its pod's name. */
function sessionsOf(pod: V1Pod, o: { claim?: number; datname?: string } = {}) {
  const index = pod.metadata?.annotations?.[COMPLETION_INDEX];
  const applicationName = applicationNameFor({
    role: index === undefined ? 'scan' : 'run',
    corpus: `${pod.metadata!.namespace}/${pod.metadata!.annotations!['midi.corpus.dev/corpus']}`,
    ...(index !== undefined ? { shard: Number(index) } : {}),
    pod: pod.metadata!.name!,
    claim: o.claim ?? (index === undefined ? 1 : 2),
  });
  const n = o.claim ?? (index === undefined ? 1 : 2);
  return Array.from({ length: n }, () => clientSession(applicationName, { datname: o.datname ?? 'midi' }));
}

const otherApplication = (n: number) => Array.from({ length: n }, () => clientSession('grafana'));

describe('Reconciler and the server ledger', () => {
  it("shrinks a corpus while another application holds connections and grows it back once it has left; its own pods' sessions are not counted twice", async () => {
    const { world, pass, corpus, database } = setup(corpusA);
    await pass('a');
    expect(world.writes).toEqual(['create a-run parallelism=7']);
    const pods = world.startPods('a-run', 7);
    database.sessions = pods.flatMap((p) => sessionsOf(p));
    await pass('a');
    // Its 14 sessions are its own pods': nothing written but the status.
    expect(world.writes.filter((w) => !w.startsWith('status'))).toEqual(['create a-run parallelism=7']);
    expect(corpus('a').status?.budget).toMatchObject({ foreignConnections: 0, allowance: 14, parallelism: 7 });

    database.sessions.push(...otherApplication(3));
    await pass('a');
    // Seen in one reading only, they might be gone by the next one (a probe, a health check): nothing moves yet.
    expect(world.writes.filter((w) => !w.startsWith('status'))).toEqual(['create a-run parallelism=7']);
    await pass('a');
    expect(world.writes.at(-1)).toBe('patch a-run parallelism=5 suspend=false'); // ⌊(14 − 3) / 2⌋
    await pass('a');
    expect(corpus('a').status?.budget).toMatchObject({ foreignConnections: 3, allowance: 11, parallelism: 5 });
    expect(condition(corpus('a'), 'ForeignConnectionsUncertain')).toMatchObject({
      status: 'False',
      reason: 'ForeignCountExact',
    });
    expect(condition(corpus('a'), 'BudgetLimited')!.message).toContain('other connections on the server 3');

    // Two pods stop, their sessions with them; then the other application leaves.
    world.trimToParallelism('a-run');
    world.removeTerminating();
    const live = world.livePods('a-run').map((p) => p.metadata!.name!);
    database.sessions = database.sessions.filter((s) => live.some((n) => s.application_name!.endsWith(n)));
    await pass('a');
    expect(world.writes.at(-1)).toBe('patch a-run parallelism=7 suspend=false');
  });

  it("subtracts the claims of another cluster's runners, of the same corpus name on another database, and leaves them alone", async () => {
    const { world, pass, clock, database } = setup(corpusA);
    // Another cluster's music/a: the same Job naming, pods this cluster has never had, on database midi_staging.
    const stranger = applicationNameFor({ role: 'run', corpus: 'music/a', shard: 1, pod: 'a-run-1-x7k2q', claim: 4 });
    database.sessions = [1, 2, 3].map(() => clientSession(stranger, { datname: 'midi_staging' }));
    await pass('a');
    expect(world.writes).toEqual(['create a-run parallelism=5']); // ⌊(14 − 4) / 2⌋: its claim, not its 3 sessions
    clock.advance(VANISHED_GRACE_MS * 2);
    await pass('a');
    clock.advance(VANISHED_GRACE_MS * 2);
    await pass('a');
    expect(database.endings).toEqual([]);
  });

  it("counts a local run's claim and its runners' like any other consumer's", async () => {
    const { world, pass, database } = setup(corpusA);
    database.sessions = [
      clientSession(applicationNameFor({ role: 'local', corpus: 'lakh', pod: 'laptop-4242', claim: 1 })),
      ...[0, 1].flatMap((shard) =>
        [1, 2].map(() =>
          clientSession(
            applicationNameFor({ role: 'run', corpus: 'lakh', shard, pod: `laptop-${500 + shard}`, claim: 2 }),
          ),
        ),
      ),
    ];
    await pass('a');
    expect(world.writes).toEqual(['create a-run parallelism=4']); // ⌊(14 − 1 − 4) / 2⌋
  });

  it("does not count its scan pod's claim beside the connection it sets aside for it", async () => {
    const { world, pass, corpus, database } = setup({
      name: 'a',
      uid: 'uid-a',
      spec: { database: { maxConnections: 20 } },
    });
    await pass('a');
    expect(world.writes).toEqual(['create a-scan parallelism=1']);
    const [scan] = world.startPods('a-scan', 1);
    database.sessions = sessionsOf(scan!);
    await pass('a');
    expect(corpus('a').status?.budget).toMatchObject({ foreignConnections: 0, operator: 2, allowance: 13 });
  });

  it('counts the pods of a Job that draws on another budget against the server they really connect to (the Secret changed while they ran)', async () => {
    const { world, pass, database } = setup(corpusA);
    await pass('a');
    world.startPods('a-run', 7);
    // The Secret now names another server. The run Job and its pods keep the old budget key in their annotations,
    // and the pods the Job controller starts from now on connect to the new server.
    world.setSecret('music/db', { url: 'postgres://midi:secret@db2.music.svc:5432/midi' });
    world.podList = world.podList.slice(0, 5);
    const fresh = world.startPods('a-run', 2);
    database.sessions = fresh.flatMap((p) => sessionsOf(p)); // the new server's sessions
    await pass('a');
    // Nothing of the Job is counted on the new budget from its objects; the ledger counts the two pods that are there.
    expect(world.writes.at(-1)).toBe('patch a-run parallelism=5 suspend=false');
  });

  it('falls back to counting its own pods when the server cannot be read, and says so in status', async () => {
    const { world, pass, corpus, database } = setup(corpusA);
    database.ledgerError = new Error('through the ledger database "postgres": connect ECONNREFUSED 10.0.0.7:5432');
    await pass('a');
    expect(world.writes).toEqual(['create a-run parallelism=7']);
    await pass('a');
    const c = condition(corpus('a'), 'ForeignConnectionsUncertain')!;
    expect(c).toMatchObject({ status: 'True', reason: 'LedgerUnreadable' });
    expect(c.message).toContain('ECONNREFUSED');
    expect(corpus('a').status?.budget).toMatchObject({ foreignConnections: 0, allowance: 14 });
    expect(JSON.stringify(corpus('a').status)).not.toContain('secret');
    expect(world.events).toContainEqual(expect.objectContaining({ type: 'Warning', reason: 'LedgerUnreadable' }));
  });

  it('says when the count is an upper bound: sessions whose details the role may not see', async () => {
    const { pass, corpus, database } = setup(corpusA);
    database.sessions = [clientSession('grafana', { hidden: true }), clientSession(null, { hidden: true })];
    await pass('a');
    await pass('a');
    expect(corpus('a').status?.budget?.foreignConnections).toBe(2);
    expect(condition(corpus('a'), 'ForeignConnectionsUncertain')).toMatchObject({
      status: 'True',
      reason: 'ForeignCountUpperBound',
    });
  });
});

describe('Reconciler and the backends of vanished pods', () => {
  /** A running corpus with 3 pods whose sessions are on the server, one of which then vanishes. */
  const vanishOne = async () => {
    const s = setup({ ...corpusA, spec: { database: { maxConnections: 20 }, runner: { maxParallelism: 3 } } });
    await s.pass('a');
    const pods = s.world.startPods('a-run', 3);
    s.database.sessions = pods.flatMap((p) => sessionsOf(p));
    const gone = pods[1]!;
    s.world.podList = s.world.podList.filter((p) => p !== gone); // force-deleted: the object goes at once
    return { ...s, gone: gone.metadata!.name! };
  };

  it('counts them until they are gone, ends them once the grace has passed, and says which pod they were', async () => {
    const { world, pass, corpus, clock, database, gone } = await vanishOne();
    await pass('a');
    await pass('a');
    expect(corpus('a').status?.budget?.foreignConnections).toBe(2);
    clock.advance(VANISHED_GRACE_MS - 1);
    await pass('a');
    expect(database.endings).toEqual([]); // a pod just created may not be in the cache yet
    clock.advance(1);
    await pass('a');
    expect(database.endings).toEqual([{ applicationName: expect.stringMatching(gone), pids: expect.any(Array) }]);
    expect(database.endings[0]!.pids).toHaveLength(2);
    expect(database.sessions.some((s) => s.application_name!.endsWith(gone))).toBe(false);
    expect(world.events).toContainEqual({
      type: 'Normal',
      reason: 'VanishedPodConnectionsEnded',
      message: `Ended 2 database connection(s) of pod ${gone}, which no longer exists: they held connections of this budget.`,
      corpus: 'a',
    });
    await pass('a');
    await pass('a');
    expect(corpus('a').status?.budget?.foreignConnections).toBe(0);
  });

  it('leaves a pod alone that the cache has not seen but the API server lists', async () => {
    const { world, pass, clock, database } = await vanishOne();
    const hidden = world.startPods('a-run', 1)[0]!;
    database.sessions.push(...sessionsOf(hidden));
    world.uncachedPods.add(hidden.metadata!.name!);
    await pass('a');
    clock.advance(VANISHED_GRACE_MS);
    await pass('a');
    expect(database.endings.map((e) => e.applicationName)).toHaveLength(1);
    expect(database.endings[0]!.applicationName).not.toContain(hidden.metadata!.name!);
    expect(database.sessions.filter((s) => s.application_name!.endsWith(hidden.metadata!.name!))).toHaveLength(2);
  });

  it('keeps counting them when the role may not end them, and tries again only a grace later', async () => {
    const { world, pass, corpus, clock, database } = await vanishOne();
    database.denyEnding = true;
    await pass('a');
    clock.advance(VANISHED_GRACE_MS);
    await pass('a');
    await pass('a');
    expect(database.endings).toHaveLength(1);
    expect(corpus('a').status?.budget?.foreignConnections).toBe(2);
    expect(world.events.filter((e) => e.reason === 'VanishedPodConnectionsEnded')).toEqual([]);
    clock.advance(VANISHED_GRACE_MS);
    await pass('a');
    expect(database.endings).toHaveLength(2);
  });
});
