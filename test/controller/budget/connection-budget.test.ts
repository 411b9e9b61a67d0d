import { describe, expect, it } from 'vitest';
import {
  connectionBudget,
  mergeLimits,
  poolerDisagreement,
  type CorpusBudgetInput,
  type DatabaseLimits,
} from '../../../controller/budget/connection-budget.js';

/** max_connections 100, reserved 10, headroom 5, the operator's 1: a ceiling of 84 for scans and runners. */
const limits: DatabaseLimits = { maxConnections: 100, reservedConnections: 10, headroom: 5 };

function corpus(key: string, over: Partial<CorpusBudgetInput> = {}): CorpusBudgetInput {
  return {
    key,
    createdAt: key.charCodeAt(0),
    perPod: 3,
    demand: 100,
    livePods: 0,
    potentialPods: 0,
    scanPods: 0,
    scanPending: false,
    ...over,
  };
}

type Want = Record<string, { planned: number; parallelism: number; limitedBy?: string; scanFits?: boolean }>;

describe('connectionBudget', () => {
  const table: Array<{
    name: string;
    limits?: DatabaseLimits;
    corpora: CorpusBudgetInput[];
    allowance: number;
    want: Want;
  }> = [
    {
      name: 'a lone corpus takes the whole allowance, in whole pods',
      corpora: [corpus('a')],
      allowance: 84,
      want: { a: { planned: 28, parallelism: 28, limitedBy: 'allowance' } },
    },
    {
      name: 'a lone corpus that needs fewer pods is not limited',
      corpora: [corpus('a', { demand: 5 })],
      allowance: 84,
      want: { a: { planned: 5, parallelism: 5 } },
    },
    {
      name: 'a newcomer gets its fair share planned, but no pod while the first corpus still holds everything',
      corpora: [corpus('a', { potentialPods: 28, livePods: 28 }), corpus('b')],
      allowance: 84,
      want: {
        a: { planned: 14, parallelism: 14, limitedBy: 'allowance' },
        b: { planned: 14, parallelism: 0, limitedBy: 'draining' },
      },
    },
    {
      name: 'terminating pods still count: the newcomer grows only into connections already freed',
      corpora: [corpus('a', { potentialPods: 20, livePods: 20 }), corpus('b')],
      allowance: 84,
      want: {
        a: { planned: 14, parallelism: 14, limitedBy: 'allowance' },
        b: { planned: 14, parallelism: 8, limitedBy: 'draining' },
      },
    },
    {
      name: 'once the old pods are gone both run at their share',
      corpora: [corpus('a', { potentialPods: 14, livePods: 14 }), corpus('b', { potentialPods: 8, livePods: 8 })],
      allowance: 84,
      want: {
        a: { planned: 14, parallelism: 14, limitedBy: 'allowance' },
        b: { planned: 14, parallelism: 14, limitedBy: 'allowance' },
      },
    },
    {
      name: 'a finished corpus hands its share to the other',
      corpora: [corpus('a', { demand: 0 }), corpus('b', { potentialPods: 14, livePods: 14 })],
      allowance: 84,
      want: { a: { planned: 0, parallelism: 0 }, b: { planned: 28, parallelism: 28, limitedBy: 'allowance' } },
    },
    {
      name: 'a suspended corpus whose pods are still stopping holds its connections until they are gone',
      corpora: [
        corpus('a', { demand: 0, potentialPods: 10, livePods: 10 }),
        corpus('b', { potentialPods: 14, livePods: 14 }),
      ],
      allowance: 84,
      want: { a: { planned: 0, parallelism: 0 }, b: { planned: 28, parallelism: 18, limitedBy: 'draining' } },
    },
    {
      name: 'a corpus about to scan sets one connection aside; the scan waits until it is free',
      corpora: [corpus('a', { potentialPods: 28, livePods: 28 }), corpus('b', { demand: 0, scanPending: true })],
      allowance: 83,
      want: {
        a: { planned: 27, parallelism: 27, limitedBy: 'allowance', scanFits: false },
        b: { planned: 0, parallelism: 0, scanFits: false },
      },
    },
    {
      name: 'the scan starts once the runners are within the smaller allowance',
      corpora: [corpus('a', { potentialPods: 27, livePods: 27 }), corpus('b', { demand: 0, scanPending: true })],
      allowance: 83,
      want: {
        a: { planned: 27, parallelism: 27, limitedBy: 'allowance', scanFits: true },
        b: { planned: 0, parallelism: 0, scanFits: true },
      },
    },
    {
      name: 'a running scan pod holds its connection',
      corpora: [corpus('a', { demand: 0, scanPods: 1, scanPending: true }), corpus('b')],
      allowance: 83,
      want: { a: { planned: 0, parallelism: 0 }, b: { planned: 27, parallelism: 27, limitedBy: 'allowance' } },
    },
    {
      name: 'not even one pod fits: no pods, and it says so',
      limits: { maxConnections: 10, reservedConnections: 3, headroom: 2 },
      corpora: [corpus('a', { perPod: 5 })],
      allowance: 4,
      want: { a: { planned: 0, parallelism: 0, limitedBy: 'nothingFits' } },
    },
    {
      name: 'a lowered max_connections takes pods away at once, and gives none to the others until they are gone',
      limits: { maxConnections: 40, reservedConnections: 10, headroom: 5 },
      corpora: [corpus('a', { potentialPods: 14, livePods: 14 }), corpus('b', { potentialPods: 14, livePods: 14 })],
      allowance: 24,
      want: {
        a: { planned: 4, parallelism: 0, limitedBy: 'draining' },
        b: { planned: 4, parallelism: 0, limitedBy: 'draining' },
      },
    },
  ];
  for (const row of table) {
    it(row.name, () => {
      const plan = connectionBudget(row.limits ?? limits, row.corpora);
      expect(plan.allowance).toBe(row.allowance);
      const got: Want = {};
      for (const [key, b] of plan.corpora) {
        got[key] = { planned: b.planned, parallelism: b.parallelism };
        if (b.limitedBy) got[key]!.limitedBy = b.limitedBy;
        if (row.want[key]?.scanFits !== undefined) got[key]!.scanFits = b.scanFits;
      }
      expect(got).toEqual(row.want);
    });
  }

  it('keeps every pod that may exist within the allowance through any sequence of decisions and pod exits', () => {
    // A small simulation: each step either gives one corpus the parallelism the planner allows (the Job controller
    // then starts pods up to it at once, or deletes the excess, which linger as Terminating), or lets one corpus's
    // terminating pods finish. At every instant the pods that exist must fit the allowance.
    const keys = ['a', 'b', 'c'];
    const perPod: Record<string, number> = { a: 3, b: 5, c: 2 };
    let seed = 7;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const k = new Map(keys.map((key) => [key, 0]));
    const live = new Map(keys.map((key) => [key, 0]));
    const demand = new Map(keys.map((key) => [key, 100]));
    let settledAtFairShare = 0;
    for (let step = 0; step < 2000; step++) {
      const key = keys[random(3)]!;
      if (random(10) === 0) demand.set(key, random(3) === 0 ? 0 : random(40));
      if (random(2) === 0) {
        const plan = connectionBudget(
          limits,
          keys.map((x) =>
            corpus(x, {
              perPod: perPod[x]!,
              demand: demand.get(x)!,
              livePods: live.get(x)!,
              potentialPods: Math.max(k.get(x)!, live.get(x)!),
            }),
          ),
        );
        const next = plan.corpora.get(key)!.parallelism;
        k.set(key, next);
        if (next > live.get(key)!) live.set(key, next);
        if (plan.corpora.get(key)!.parallelism === plan.corpora.get(key)!.planned) settledAtFairShare++;
      } else {
        live.set(key, k.get(key)!);
      }
      const held = keys.reduce((n, x) => n + live.get(x)! * perPod[x]!, 0);
      expect(held).toBeLessThanOrEqual(84);
    }
    expect(settledAtFairShare).toBeGreaterThan(100);
  });
});

describe("connectionBudget with the server's other consumers", () => {
  // Ceiling 84 (see `limits`); a corpus of 3-connection pods that wants 100.
  const plan = (foreign: number, a: Partial<CorpusBudgetInput> = {}, more: CorpusBudgetInput[] = []) =>
    connectionBudget(limits, [corpus('a', a), ...more], { foreign });

  it('takes what another application holds off the allowance, and gives it back when it leaves', () => {
    expect(plan(0).allowance).toBe(84);
    expect(plan(0).corpora.get('a')!.parallelism).toBe(28);
    const crowded = plan(10, { potentialPods: 28, livePods: 28 });
    expect([crowded.foreign, crowded.allowance]).toEqual([10, 74]);
    // Its 28 pods already hold 84: it must shrink to what fits beside the other application (⌊74 / 3⌋).
    expect(crowded.corpora.get('a')).toMatchObject({ planned: 24, parallelism: 24, limitedBy: 'allowance' });
    const after = plan(0, { potentialPods: 24, livePods: 24 });
    expect([after.allowance, after.corpora.get('a')!.parallelism]).toEqual([84, 28]);
  });

  it('leaves no pod room when the others hold everything, and says nothing fits', () => {
    const full = plan(90);
    expect(full.allowance).toBe(0);
    expect(full.corpora.get('a')).toMatchObject({ planned: 0, parallelism: 0, limitedBy: 'nothingFits' });
  });

  it('holds a scan back while the others leave no connection for it', () => {
    const scanning = corpus('b', { demand: 0, scanPending: true });
    expect(plan(83, {}, [scanning]).corpora.get('b')!.scanFits).toBe(true);
    expect(plan(84, {}, [scanning]).corpora.get('b')!.scanFits).toBe(false);
  });

  it('refuses a count that is not a whole number', () => {
    expect(() => plan(-1)).toThrow(RangeError);
    expect(() => plan(1.5)).toThrow(RangeError);
  });
});

describe('mergeLimits', () => {
  it('takes the most cautious figures of corpora sharing a database', () => {
    expect(
      mergeLimits([
        { maxConnections: 100, reservedConnections: 3, headroom: 2 },
        { maxConnections: 90, reservedConnections: 10, headroom: 0 },
      ]),
    ).toEqual({ maxConnections: 90, reservedConnections: 10, headroom: 2 });
  });
});

describe('connectionBudget behind a transaction pooler', () => {
  // What the reconciler makes of spec.database.pooler {maxClientConnections: 50, poolSize: 10}, headroom 2.
  const pooler: DatabaseLimits = { maxConnections: 50, reservedConnections: 0, headroom: 2, pooler: { poolSize: 10 } };

  it("plans against the pooler's client limit less headroom and the operator's own connection, not the server's", () => {
    const plan = connectionBudget(pooler, [corpus('a'), corpus('b', { demand: 0, scanPending: true })]);
    // 50 − 2 − 1 = 47, less the scan's 1 = 46: 15 pods of 3. The pool size (10) is the pooler's to enforce.
    expect([plan.allowance, plan.operator, plan.foreign]).toEqual([46, 2, 0]);
    expect(plan.corpora.get('a')).toMatchObject({ planned: 15, parallelism: 15, limitedBy: 'allowance' });
    expect(plan.limits.pooler).toEqual({ poolSize: 10 });
  });

  it('keeps every pod within the client limit however many corpora share the pooler', () => {
    const plan = connectionBudget(pooler, [
      corpus('a', { perPod: 5, potentialPods: 4, livePods: 4 }),
      corpus('b', { perPod: 2 }),
      corpus('c', { perPod: 3 }),
    ]);
    const held = [...plan.corpora.values()].reduce((n, b) => n + b.parallelism * b.perPod, 0);
    expect(held).toBeLessThanOrEqual(50 - 2 - 1);
  });
});

describe('mergeLimits and poolerDisagreement on a pooler', () => {
  const behind = (maxConnections: number, poolSize: number, headroom = 2): DatabaseLimits => ({
    maxConnections,
    reservedConnections: 0,
    headroom,
    pooler: { poolSize },
  });

  it('agree when every corpus gives the pooler the same limits', () => {
    expect(poolerDisagreement([behind(50, 10), behind(50, 10, 4)])).toBeUndefined();
    expect(mergeLimits([behind(50, 10), behind(50, 10, 4)])).toEqual(behind(50, 10, 4));
  });

  it('take the smallest client limit and pool size when the corpora differ, and say so', () => {
    expect(mergeLimits([behind(50, 10), behind(40, 12)])).toEqual(behind(40, 10));
    expect(poolerDisagreement([behind(50, 10), behind(40, 12)])).toBe(
      'the corpora on this pooler give different maxClientConnections (40, 50) and poolSize (10, 12): the smallest is used',
    );
    expect(poolerDisagreement([behind(50, 10), behind(40, 10)])).toMatch(/different maxClientConnections \(40, 50\):/);
  });

  it('plan a key that names a pooler and a server as a pooler, with the smallest limit of all', () => {
    const server: DatabaseLimits = { maxConnections: 30, reservedConnections: 3, headroom: 2 };
    expect(mergeLimits([behind(50, 10), server])).toEqual({
      maxConnections: 30,
      reservedConnections: 3,
      headroom: 2,
      pooler: { poolSize: 10 },
    });
    expect(poolerDisagreement([behind(50, 10), server])).toMatch(
      /^1 of the 2 corpora on this budget are behind a pooler/,
    );
    expect(poolerDisagreement([server, server])).toBeUndefined();
  });
});
