import { describe, expect, it } from 'vitest';
import type { CorpusOptions } from '../fixtures.js';
import { clientSession, FakeDatabase } from './fake-database.js';
import { condition, setupReconciler } from './harness.js';

// The reconcile of corpora behind a transaction pooler. The FakeDatabase has no server to read max_connections from
// (it throws), and its sessions are what pg_stat_activity would show: the pooler's server connections, each under a
// client's application_name, which must count for nothing. maxClientConnections 21, headroom 2 and the operator's 1
// leave 18 connections: 9 runner pods of 2 (1 CPU: one writer and one control connection).
const url = 'postgres://midi:secret@pgbouncer.music.svc:6432/midi';
const running = {
  phase: 'Running' as const,
  files: { total: 100_000, processed: 0, failed: 0 },
  shards: { total: 100, succeeded: 0, failed: 0 },
};
const pooler = (maxClientConnections: number, poolSize: number) => ({
  mode: 'transaction' as const,
  maxClientConnections,
  poolSize,
});
const setup = (...corpora: CorpusOptions[]) =>
  setupReconciler({ url, database: (world) => new FakeDatabase(world.secrets) }, corpora);

describe('Reconciler behind a transaction pooler', () => {
  it("plans against the pooler's client limit, reads neither max_connections nor the ledger, and tells the runners", async () => {
    const { world, pass, corpus, database } = setup({
      name: 'a',
      uid: 'uid-a',
      status: running,
      spec: { database: { pooler: pooler(21, 5) } },
    });
    // The server's sessions behind the pooler: read as a ledger they would take 6 connections off the budget.
    database.sessions = Array.from({ length: 6 }, () => clientSession('mco run/2 music/other s0 other-run-0-abcde'));
    await pass('a');
    expect(world.writes).toEqual(['create a-run parallelism=9']);
    await pass('a');
    const budget = corpus('a').status?.budget;
    expect(budget).toMatchObject({
      poolKey: expect.stringMatching(/^pooler-[0-9a-f]{16}$/),
      limit: 21,
      limitSource: 'pooler',
      poolerPoolSize: 5,
      reserved: 0,
      headroom: 2,
      foreignConnections: 0,
      allowance: 18,
      parallelism: 9,
    });
    expect(condition(corpus('a'), 'ForeignConnectionsUncertain')).toMatchObject({
      status: 'True',
      reason: 'BehindPooler',
    });
    expect(condition(corpus('a'), 'PoolerLimitsConflict')).toMatchObject({
      status: 'False',
      reason: 'PoolerLimitsAgree',
    });
    const args = world.job('a-run')!.spec!.template.spec!.containers[0]!.args!;
    expect(args.slice(args.indexOf('--pool-mode'), args.indexOf('--pool-mode') + 2)).toEqual([
      '--pool-mode',
      'transaction',
    ]);
  });

  it('shares one budget between the corpora on one pooler, with the smallest limits, and says they differ', async () => {
    const { world, pass, corpus } = setup(
      { name: 'a', uid: 'uid-a', status: running, spec: { database: { pooler: pooler(21, 5) } } },
      { name: 'b', uid: 'uid-b', status: running, spec: { database: { pooler: pooler(15, 8) } } },
    );
    for (let i = 0; i < 2; i++) {
      await pass('a');
      await pass('b');
    }
    // 15 − 2 − 1 = 12 for both: 6 pods of 2, shared 3 and 3 once both want them.
    expect(corpus('a').status?.budget).toMatchObject({ limit: 15, poolerPoolSize: 5, allowance: 12 });
    expect(corpus('b').status?.budget).toMatchObject({ limit: 15, poolerPoolSize: 5, allowance: 12 });
    expect(corpus('a').status?.budget?.poolKey).toBe(corpus('b').status?.budget?.poolKey);
    expect(condition(corpus('b'), 'PoolerLimitsConflict')).toMatchObject({
      status: 'True',
      reason: 'PoolerLimitsDiffer',
      message:
        'The corpora on this pooler give different maxClientConnections (15, 21) and poolSize (5, 8): the smallest is used.',
    });
    const parallelism = (name: string) => world.job(`${name}-run`)?.spec?.parallelism ?? 0;
    expect(parallelism('a') * 2 + parallelism('b') * 2).toBeLessThanOrEqual(12);
  });
});
