import { describe, expect, it } from 'vitest';
import { Reason } from '../../../controller/api/v1alpha1/conditions.js';
import type { MidiCorpusStatus } from '../../../controller/api/v1alpha1/midicorpus.js';
import {
  computeStatus,
  countIndexes,
  sameStatus,
  transitionEvents,
  type BudgetObservation,
  type StatusInput,
} from '../../../controller/plan/status.js';
import { parseScanResult } from '../../../controller/plan/scan-result.js';
import { jobWith, makeCorpus } from '../fixtures.js';

const now = new Date('2025-02-01T10:00:00Z');
const later = new Date('2025-02-01T11:00:00Z');
const noPods = { active: 0, terminating: 0 };
const complete = (type: string) => ({
  conditions: [
    {
      type,
      status: 'True',
      reason: type === 'Failed' ? 'BackoffLimitExceeded' : undefined,
      message: type === 'Failed' ? 'Job has reached the specified backoff limit' : undefined,
    },
  ],
});

const budget = (over: Partial<BudgetObservation> = {}): BudgetObservation => ({
  figures: {
    poolKey: 'server-abc',
    limit: 100,
    reserved: 10,
    headroom: 5,
    operator: 1,
    allowance: 84,
    share: 84,
    perPod: 3,
    parallelism: 28,
    inUse: 0,
  },
  demand: 28,
  planned: 28,
  corpora: 1,
  scanWaiting: false,
  ...over,
});

function condition(s: MidiCorpusStatus, type: string) {
  return s.conditions!.find((c) => c.type === type)!;
}

describe('computeStatus', () => {
  const scanned: MidiCorpusStatus = {
    phase: 'Running',
    files: { total: 3000, processed: 0, failed: 0 },
    shards: { total: 3, succeeded: 0, failed: 0 },
  };
  const table: Array<{
    name: string;
    input: Partial<StatusInput>;
    phase: string;
    conditions: Record<string, [string, string]>;
  }> = [
    {
      name: 'a new corpus is Pending',
      input: {},
      phase: 'Pending',
      conditions: {
        Ready: ['False', 'Pending'],
        Progressing: ['True', 'Pending'],
        Degraded: ['False', 'AsExpected'],
        BudgetLimited: ['False', 'BudgetAvailable'],
        InvalidSpec: ['False', 'SpecValid'],
      },
    },
    {
      name: 'a missing Secret makes it Invalid',
      input: { invalid: { reason: Reason.SecretNotFound, message: 'Secret music/db not found' } },
      phase: 'Invalid',
      conditions: {
        Ready: ['False', 'SecretNotFound'],
        Progressing: ['False', 'SecretNotFound'],
        InvalidSpec: ['True', 'SecretNotFound'],
      },
    },
    {
      name: 'a running scan Job: Scanning',
      input: { scanJob: jobWith('bach-scan', { active: 1 }) },
      phase: 'Scanning',
      conditions: { Progressing: ['True', 'ScanStarted'] },
    },
    {
      name: 'the scan waits for a connection: Pending and BudgetLimited',
      input: { budget: budget({ scanWaiting: true }) },
      phase: 'Pending',
      conditions: { BudgetLimited: ['True', 'BudgetShared'] },
    },
    {
      name: 'a failed scan fails the corpus',
      input: { scanJob: jobWith('bach-scan', complete('Failed')) },
      phase: 'Failed',
      conditions: { Progressing: ['False', 'ScanFailed'], Degraded: ['True', 'ScanFailed'] },
    },
    {
      name: 'an unusable scan answer fails the corpus',
      input: {
        scanJob: jobWith('bach-scan', complete('Complete')),
        scanProblem: "the scan's termination message is not JSON",
      },
      phase: 'Failed',
      conditions: { Degraded: ['True', 'InvalidScanResult'] },
    },
    {
      name: 'an empty corpus succeeds without a run',
      input: { scanJob: jobWith('bach-scan', complete('Complete')), scanResult: { files: 0, bytes: 0, shards: 0 } },
      phase: 'Succeeded',
      conditions: { Ready: ['True', 'Succeeded'], Progressing: ['False', 'Succeeded'] },
    },
    {
      name: 'a running run Job under a shared budget: Running and BudgetLimited',
      input: {
        runJob: jobWith('bach-run', { active: 14, succeeded: 1 }),
        runPods: { active: 14, terminating: 0 },
        budget: budget({
          limitedBy: 'allowance',
          demand: 28,
          planned: 14,
          corpora: 2,
          figures: { ...budget().figures, share: 42, parallelism: 14, inUse: 42 },
        }),
      },
      phase: 'Running',
      conditions: { Progressing: ['True', 'Running'], BudgetLimited: ['True', 'BudgetShared'] },
    },
    {
      name: 'nothing fits: BudgetExhausted',
      input: {
        runJob: jobWith('bach-run', {}),
        budget: budget({
          limitedBy: 'nothingFits',
          figures: { ...budget().figures, allowance: 2, perPod: 5, parallelism: 0 },
        }),
      },
      phase: 'Running',
      conditions: { BudgetLimited: ['True', 'BudgetExhausted'] },
    },
    {
      name: 'an unreachable database while running: BudgetLimited, DatabaseUnreachable',
      input: {
        runJob: jobWith('bach-run', {}),
        budgetUnknown:
          'cannot reach the database to read max_connections; set spec.database.maxConnections or fix the Secret',
      },
      phase: 'Running',
      conditions: { BudgetLimited: ['True', 'DatabaseUnreachable'] },
    },
    {
      name: 'failed shards degrade a run that goes on',
      input: { runJob: jobWith('bach-run', { failedIndexes: '1,5-6', succeeded: 10 }) },
      phase: 'Running',
      conditions: { Degraded: ['True', 'ShardsFailed'] },
    },
    {
      name: 'a completed run Job: Succeeded',
      input: { runJob: jobWith('bach-run', { ...complete('Complete'), succeeded: 3 }) },
      phase: 'Succeeded',
      conditions: { Ready: ['True', 'Succeeded'], Degraded: ['False', 'AsExpected'] },
    },
    {
      name: 'a failed run Job: Failed',
      input: { runJob: jobWith('bach-run', { ...complete('Failed'), failedIndexes: '0-2' }) },
      phase: 'Failed',
      conditions: { Degraded: ['True', 'RunFailed'], Ready: ['False', 'RunFailed'] },
    },
  ];
  for (const row of table) {
    it(row.name, () => {
      const corpus = makeCorpus({ status: row.input.runJob ? scanned : undefined });
      const s = computeStatus({ corpus, now, runPods: noPods, ...row.input });
      expect(s.phase).toBe(row.phase);
      for (const [type, [status, reason]] of Object.entries(row.conditions)) {
        expect([type, condition(s, type).status, condition(s, type).reason]).toEqual([type, status, reason]);
      }
    });
  }

  it('records the scan totals and carries them forward once the scan Job is gone', () => {
    const first = computeStatus({
      corpus: makeCorpus(),
      now,
      runPods: noPods,
      scanJob: jobWith('bach-scan', complete('Complete')),
      scanResult: { files: 2500, bytes: 1e6, shards: 3 },
    });
    expect(first).toMatchObject({
      phase: 'Running',
      files: { total: 2500, processed: 0, failed: 0 },
      shards: { total: 3 },
      jobs: { scan: 'bach-scan' },
    });
    const second = computeStatus({ corpus: makeCorpus({ status: first }), now: later, runPods: noPods });
    expect(second.files).toEqual(first.files);
    expect(second.shards).toEqual(first.shards);
    expect(second.jobs).toEqual({ scan: 'bach-scan' });
  });

  it('keeps a finished corpus finished after its Jobs are deleted', () => {
    const done = computeStatus({
      corpus: makeCorpus({ status: scanned }),
      now,
      runPods: noPods,
      runJob: jobWith('bach-run', { ...complete('Complete'), succeeded: 3 }),
    });
    const after = computeStatus({ corpus: makeCorpus({ status: done }), now: later, runPods: noPods });
    expect(after.phase).toBe('Succeeded');
    expect(after.completionTime).toBe(now.toISOString());
  });

  it('suspends a running corpus', () => {
    const s = computeStatus({
      corpus: makeCorpus({ status: scanned, spec: { suspend: true } }),
      now,
      runPods: { active: 0, terminating: 2 },
      runJob: jobWith('bach-run', { terminating: 2 }),
    });
    expect(s.phase).toBe('Suspended');
    expect(s.pods).toEqual({ active: 0, terminating: 2 });
    expect(condition(s, 'Progressing')).toMatchObject({ status: 'False', reason: 'Suspended' });
  });

  it('is unchanged, to the byte, when nothing changed: no write, and transition times kept', () => {
    const input = { runPods: noPods, runJob: jobWith('bach-run', { active: 3 }), budget: budget() };
    const first = computeStatus({ corpus: makeCorpus({ status: scanned }), now, ...input });
    const second = computeStatus({ corpus: makeCorpus({ status: first }), now: later, ...input });
    expect(sameStatus(first, second)).toBe(true);
    const third = computeStatus({
      corpus: makeCorpus({ status: second }),
      now: later,
      ...input,
      runJob: jobWith('bach-run', { active: 3, succeeded: 1 }),
    });
    expect(sameStatus(second, third)).toBe(false);
    expect(condition(third, 'Progressing').lastTransitionTime).toBe(now.toISOString());
  });

  it('never puts the database URL in status', () => {
    const s = computeStatus({
      corpus: makeCorpus(),
      now,
      runPods: noPods,
      budget: budget({ limitedBy: 'nothingFits' }),
    });
    expect(JSON.stringify(s)).not.toMatch(/postgres|password|@/);
  });
});

describe("computeStatus: the server's other consumers", () => {
  const withForeign = (foreign: number, ledger: BudgetObservation['ledger'], over: Partial<BudgetObservation> = {}) =>
    computeStatus({
      corpus: makeCorpus(),
      now,
      runPods: noPods,
      budget: budget({ ledger, figures: { ...budget().figures, foreignConnections: foreign }, ...over }),
    });

  it("shows how many connections are not the operator's, and that the count is exact", () => {
    const s = withForeign(5, { read: true, exact: true });
    expect(s.budget?.foreignConnections).toBe(5);
    expect(condition(s, 'ForeignConnectionsUncertain')).toMatchObject({
      status: 'False',
      reason: 'ForeignCountExact',
      message: "5 connections on the server are not this operator's pods' (counted exactly).",
    });
  });

  it('says when the count is an upper bound, and what to grant for an exact one', () => {
    const c = condition(withForeign(7, { read: true, exact: false }), 'ForeignConnectionsUncertain');
    expect(c).toMatchObject({ status: 'True', reason: 'ForeignCountUpperBound' });
    expect(c.message).toMatch(/^7 connections .* upper bound.*Grant pg_monitor to the operator's role/);
  });

  it('says why the server could not be read and that only its own pods are counted, with a Warning', () => {
    const s = withForeign(0, { read: false, reason: 'through the ledger database "postgres": connection refused' });
    const c = condition(s, 'ForeignConnectionsUncertain');
    expect(c).toMatchObject({ status: 'True', reason: 'LedgerUnreadable' });
    expect(c.message).toContain('(through the ledger database "postgres": connection refused)');
    expect(c.message).toContain("counts only this operator's own pods");
    expect(transitionEvents(undefined, s)).toContainEqual(
      expect.objectContaining({ type: 'Warning', reason: 'LedgerUnreadable' }),
    );
  });

  it('counts them in the budget message', () => {
    const s = withForeign(
      6,
      { read: true, exact: true },
      {
        limitedBy: 'allowance',
        demand: 40,
        figures: { ...budget().figures, foreignConnections: 6, allowance: 78, parallelism: 26 },
      },
    );
    expect(condition(s, 'BudgetLimited').message).toBe(
      'Running 26 of 40 wanted pods: 3 connections each, 78 allowed on this database ' +
        '(max_connections 100 − reserved 10 − headroom 5 − operator and scans 1 − other connections on the server 6).',
    );
  });

  it('keeps the last word when the budget was not planned this pass', () => {
    const read = withForeign(2, { read: true, exact: false });
    const later = computeStatus({ corpus: makeCorpus({ status: read }), now, runPods: noPods });
    expect(condition(later, 'ForeignConnectionsUncertain')).toEqual(condition(read, 'ForeignConnectionsUncertain'));
  });
});

describe('computeStatus behind a transaction pooler', () => {
  const pooled = (over: Partial<BudgetObservation> = {}, figures: Partial<BudgetObservation['figures']> = {}) =>
    computeStatus({
      corpus: makeCorpus(),
      now,
      runPods: noPods,
      budget: budget({
        ledger: { read: false, behindPooler: true },
        pooler: { agree: true },
        ...over,
        figures: {
          ...budget().figures,
          limit: 50,
          limitSource: 'pooler',
          poolerPoolSize: 10,
          reserved: 0,
          headroom: 2,
          foreignConnections: 0,
          allowance: 47,
          ...figures,
        },
      }),
    });

  it("says the server's sessions are not read there, and what bounds the connections instead", () => {
    const s = pooled();
    expect(s.budget).toMatchObject({ limit: 50, limitSource: 'pooler', poolerPoolSize: 10 });
    const c = condition(s, 'ForeignConnectionsUncertain');
    expect(c).toMatchObject({ status: 'True', reason: 'BehindPooler' });
    expect(c.message).toContain("maxClientConnections (50), and the pooler's poolSize (10) bounds the connections");
    expect(condition(s, 'PoolerLimitsConflict')).toMatchObject({ status: 'False', reason: 'PoolerLimitsAgree' });
    // Not a problem to warn about: the corpus is configured so.
    expect(transitionEvents(undefined, s)).toContainEqual(
      expect.objectContaining({ type: 'Normal', reason: 'BehindPooler' }),
    );
  });

  it('warns when the corpora on one pooler give different limits', () => {
    const s = pooled({
      pooler: { agree: false, why: 'the corpora on this pooler give different poolSize (5, 10): the smallest is used' },
    });
    expect(condition(s, 'PoolerLimitsConflict')).toMatchObject({
      status: 'True',
      reason: 'PoolerLimitsDiffer',
      message: 'The corpora on this pooler give different poolSize (5, 10): the smallest is used.',
    });
    expect(transitionEvents(undefined, s)).toContainEqual(
      expect.objectContaining({ type: 'Warning', reason: 'PoolerLimitsDiffer' }),
    );
  });

  it("names the pooler's client limit in the budget message, and what to raise when nothing fits", () => {
    const limited = pooled({ limitedBy: 'allowance', demand: 40 }, { parallelism: 15 });
    expect(condition(limited, 'BudgetLimited').message).toBe(
      'Running 15 of 40 wanted pods: 3 connections each, 47 allowed on this database ' +
        '(pooler maxClientConnections 50 − headroom 2 − operator and scans 1 − other connections on the server 0).',
    );
    const none = pooled({ limitedBy: 'nothingFits' }, { perPod: 64 });
    expect(condition(none, 'BudgetLimited').message).toContain(
      "Raise the pooler's max_client_conn and spec.database.pooler.maxClientConnections, lower headroom,",
    );
  });
});

describe('transitionEvents', () => {
  it("emits one Event per condition that changed, with the condition's reason", () => {
    const pending = computeStatus({ corpus: makeCorpus(), now, runPods: noPods });
    expect(transitionEvents(undefined, pending)).toEqual([
      { type: 'Normal', reason: 'Pending', message: 'About to scan the corpus.' },
    ]);
    const scanning = computeStatus({
      corpus: makeCorpus({ status: pending }),
      now,
      runPods: noPods,
      scanJob: jobWith('bach-scan', { active: 1 }),
    });
    expect(transitionEvents(pending, scanning).map((e) => e.reason)).toEqual(['ScanStarted']);
    expect(transitionEvents(scanning, scanning)).toEqual([]);
    const exhausted = computeStatus({
      corpus: makeCorpus({ status: scanning }),
      now,
      runPods: noPods,
      scanJob: jobWith('bach-scan', { active: 1 }),
      budget: budget({ limitedBy: 'nothingFits' }),
    });
    expect(transitionEvents(scanning, exhausted)).toEqual([
      expect.objectContaining({ type: 'Warning', reason: 'BudgetExhausted' }),
    ]);
  });

  it('tells a transition once when two conditions report it (Ready and Progressing both say Succeeded)', () => {
    const running = computeStatus({
      corpus: makeCorpus(),
      now,
      runPods: noPods,
      scanResult: { files: 10, bytes: 1, shards: 1 },
      runJob: jobWith('bach-run', { active: 1 }),
    });
    const done = computeStatus({
      corpus: makeCorpus({ status: running }),
      now: later,
      runPods: noPods,
      runJob: jobWith('bach-run', { succeeded: 1, ...complete('Complete') }),
    });
    expect(done.phase).toBe('Succeeded');
    expect(transitionEvents(running, done)).toEqual([
      { type: 'Normal', reason: 'Succeeded', message: 'All 1 shards are done.' },
    ]);
  });
});

describe('parseScanResult', () => {
  const table: Array<[string, string, boolean | RegExp]> = [
    ['a good answer', '{"corpus":"music/bach","files":2500,"bytes":123,"shards":3}\n', true],
    ['not JSON', 'Killed', /not JSON/],
    ['another corpus', '{"corpus":"music/other","files":1,"bytes":1,"shards":1}', /another corpus/],
    ['a negative count', '{"corpus":"music/bach","files":-1,"bytes":1,"shards":1}', /files/],
    [
      'more shards than an Indexed Job takes',
      '{"corpus":"music/bach","files":200000,"bytes":1,"shards":200000}',
      /filesPerShard/,
    ],
    ['more shards than files', '{"corpus":"music/bach","files":2,"bytes":1,"shards":3}', /does not fit/],
  ];
  for (const [name, message, want] of table) {
    it(name, () => {
      const got = parseScanResult(message, 'music/bach');
      if (want === true) expect(got).toEqual({ ok: true, result: { files: 2500, bytes: 123, shards: 3 } });
      else expect(got.ok === false && got.message).toMatch(want as RegExp);
    });
  }
});

it("countIndexes reads the Job controller's interval notation", () => {
  expect([countIndexes(''), countIndexes('3'), countIndexes('1,3-5,7'), countIndexes('0-99999')]).toEqual([
    0, 1, 5, 100000,
  ]);
});
