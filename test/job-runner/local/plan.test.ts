import { describe, expect, it } from 'vitest';
import {
  BudgetTooSmallError,
  localShardRequest,
  planLocalRun,
  runnersAllowed,
  type LocalPlanInput,
} from '../../../job-runner/local/plan.js';

const base: LocalPlanInput = {
  cpus: 2,
  cpuMillisPerRunner: 1000,
  tuning: {},
  maxConnections: 100,
  reserved: 3,
  headroom: 2,
  ownConnections: 1,
};

describe('planLocalRun', () => {
  it.each<
    [string, Partial<LocalPlanInput>, { runners: number; budget: number; allowance: number; perRunnerMax: number }]
  >([
    ['a roomy server: the CPUs decide', {}, { runners: 2, budget: 95, allowance: 94, perRunnerMax: 2 }],
    [
      'a tight budget: the connections decide',
      { maxRunners: 10, maxConnections: 12 },
      { runners: 3, budget: 7, allowance: 6, perRunnerMax: 2 },
    ],
    [
      'half a CPU per runner doubles the runners',
      { cpuMillisPerRunner: 500 },
      { runners: 4, budget: 95, allowance: 94, perRunnerMax: 2 },
    ],
    [
      'bigger runners need more connections each',
      { cpus: 8, cpuMillisPerRunner: 4000, maxConnections: 20 },
      { runners: 2, budget: 15, allowance: 14, perRunnerMax: 5 },
    ],
    ['exactly one runner fits', { maxConnections: 8 }, { runners: 1, budget: 3, allowance: 2, perRunnerMax: 2 }],
    [
      'a per-pod cap shrinks runners',
      { cpus: 8, cpuMillisPerRunner: 4000, tuning: { maxPerPod: 2 }, maxConnections: 10 },
      { runners: 2, budget: 5, allowance: 4, perRunnerMax: 2 },
    ],
    [
      "others' connections shrink the runners at the start, not the budget",
      { maxRunners: 10, maxConnections: 12, others: 3 },
      { runners: 1, budget: 7, allowance: 6, perRunnerMax: 2 },
    ],
    [
      'others that leave too little for one runner still leave one, to wait for room',
      { maxRunners: 10, maxConnections: 12, others: 6 },
      { runners: 1, budget: 7, allowance: 6, perRunnerMax: 2 },
    ],
  ])('%s', (_name, overrides, expected) => {
    const plan = planLocalRun({ ...base, ...overrides });
    expect({
      runners: plan.runners,
      budget: plan.budget,
      allowance: plan.allowance,
      perRunnerMax: plan.perRunner.max,
    }).toEqual(expected);
  });

  it('keeps the slots the cap allows with nobody else on the server, whatever others hold at the start', () => {
    const plan = planLocalRun({ ...base, maxRunners: 10, maxConnections: 20, others: 8 });
    // 20 − 3 − 2 = 15, 14 for runners: 7 of 2 alone, 3 beside the 8 others.
    expect({ slots: plan.slots, runners: plan.runners, others: plan.others }).toEqual({
      slots: 7,
      runners: 3,
      others: 8,
    });
  });

  it('refuses a budget that fits no runner, saying what to change', () => {
    expect(() => planLocalRun({ ...base, maxConnections: 7 })).toThrow(BudgetTooSmallError);
    expect(() => planLocalRun({ ...base, maxConnections: 7 })).toThrow(
      /leaves 1, and one runner needs 2.*Raise --max-connections/,
    );
  });
});

describe('runnersAllowed', () => {
  const plan = planLocalRun({ ...base, maxRunners: 5, maxConnections: 20 }); // allowance 14, 2 each, 5 slots

  it.each<[string, number, number]>([
    ['nobody else: every slot', 0, 5],
    ['others leave room for three', 8, 3],
    ['an odd connection left over is no runner', 9, 2],
    ['others hold it all: one, to wait for room', 14, 1],
    ['others hold more than the cap (an upper bound): still one', 40, 1],
  ])('%s', (_name, others, expected) => {
    expect(runnersAllowed(plan, others)).toBe(expected);
  });
});

describe('localShardRequest', () => {
  it.each<[string, number, number, number]>([
    ['a handful of files: one shard', 30, 2, 1],
    ['a small corpus: one shard, since a second runner would cost more than it saves', 300, 2, 1],
    ['2000 real-world-like files: one shard, the fastest measured', 2000, 2, 1],
    ['not enough for two shards of 2000 files: one', 3999, 2, 1],
    ['enough for two: one shard per runner', 4000, 2, 2],
    ['more than the runners can take at 4000 a shard: a multiple of the runners', 10_000, 2, 4],
    ['a large corpus: at most 4000 files a shard', 1_000_000, 2, 250],
    ['a large corpus on 3 runners: a multiple of 3', 20_000, 3, 6],
    ['a single runner: one shard up to 4000 files', 4000, 1, 1],
    ['an empty corpus still asks for one', 0, 2, 1],
  ])('%s', (_name, files, runners, shards) => {
    expect(localShardRequest(files, runners)).toEqual({ shards });
  });
});
