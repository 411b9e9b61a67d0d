import type { V1Job, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { budgetInputs, jobMayRun, type CorpusClaim } from '../../../controller/reconcile/observe.js';
import { makeCorpus } from '../fixtures.js';

const KEY = 'server-aaaa';

function job(
  name: string,
  o: {
    uid: string;
    corpusUid: string;
    role: 'scan' | 'run';
    key?: string;
    perPod?: number;
    parallelism?: number;
    completions?: number;
    status?: V1Job['status'];
    suspend?: boolean;
  },
): V1Job {
  return {
    metadata: {
      name,
      namespace: 'music',
      uid: o.uid,
      generation: 1,
      labels: { 'midi.corpus.dev/corpus-uid': o.corpusUid, 'midi.corpus.dev/role': o.role },
      annotations: {
        'midi.corpus.dev/budget-key': o.key ?? KEY,
        'midi.corpus.dev/connections-per-pod': String(o.perPod ?? (o.role === 'scan' ? 1 : 3)),
      },
    },
    spec: {
      parallelism: o.parallelism ?? 1,
      completions: o.completions ?? 1,
      suspend: o.suspend ?? false,
      template: {},
    },
    status: o.status ?? {},
  };
}

function pod(
  name: string,
  jobUid: string,
  phase: string,
  o: { terminating?: boolean; key?: string; perPod?: number } = {},
): V1Pod {
  return {
    metadata: {
      name,
      namespace: 'music',
      ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: 'j', uid: jobUid }],
      annotations: {
        'midi.corpus.dev/budget-key': o.key ?? KEY,
        'midi.corpus.dev/connections-per-pod': String(o.perPod ?? 3),
      },
      ...(o.terminating ? { deletionTimestamp: new Date() } : {}),
    },
    status: { phase },
  };
}

const parallelismOf = (j: V1Job) => j.spec?.parallelism ?? 1;
const a = makeCorpus({ name: 'a', uid: 'uid-a', createdAt: '2025-01-01T00:00:00Z' });
const b = makeCorpus({ name: 'b', uid: 'uid-b', createdAt: '2025-01-02T00:00:00Z' });
const claim = (c: typeof a, demand: number, scanPending = false): CorpusClaim => ({
  corpus: c,
  perPod: 3,
  demand,
  scanPending,
});

describe('budgetInputs', () => {
  it('counts a run Job at the larger of its parallelism and its live pods, Terminating included', () => {
    const jobs = [job('a-run', { uid: 'ja', corpusUid: 'uid-a', role: 'run', parallelism: 2, completions: 100 })];
    const pods = [
      pod('p1', 'ja', 'Running'),
      pod('p2', 'ja', 'Running'),
      pod('p3', 'ja', 'Running', { terminating: true }),
      pod('p4', 'ja', 'Succeeded'),
      pod('p5', 'ja', 'Failed'),
    ];
    const [entry] = budgetInputs(KEY, [claim(a, 10)], jobs, pods, { parallelismOf });
    expect(entry).toMatchObject({ key: 'music/a', livePods: 3, potentialPods: 3, perPod: 3, demand: 10 });
  });

  it('counts what the Job controller may still start without us: parallelism, capped by the shards left', () => {
    const jobs = [
      job('a-run', {
        uid: 'ja',
        corpusUid: 'uid-a',
        role: 'run',
        parallelism: 8,
        completions: 10,
        status: { succeeded: 4, failedIndexes: '7' },
      }),
    ];
    expect(budgetInputs(KEY, [claim(a, 10)], jobs, [], { parallelismOf })[0]).toMatchObject({
      livePods: 0,
      potentialPods: 5,
    });
  });

  it('counts nothing more for a suspended or finished Job than its pods still alive', () => {
    const suspended = job('a-run', {
      uid: 'ja',
      corpusUid: 'uid-a',
      role: 'run',
      parallelism: 8,
      completions: 10,
      suspend: true,
    });
    const done = job('b-run', {
      uid: 'jb',
      corpusUid: 'uid-b',
      role: 'run',
      parallelism: 8,
      completions: 10,
      status: { conditions: [{ type: 'Complete', status: 'True' }] },
    });
    const pods = [pod('p1', 'ja', 'Running', { terminating: true })];
    const entries = budgetInputs(KEY, [claim(a, 0), claim(b, 0)], [suspended, done], pods, { parallelismOf });
    expect(entries.map((e) => [e.key, e.potentialPods])).toEqual([
      ['music/a', 1],
      ['music/b', 0],
    ]);
  });

  it('counts a scan Job as one connection until its pod has finished', () => {
    const running = job('a-scan', { uid: 'sa', corpusUid: 'uid-a', role: 'scan' });
    const finished = job('b-scan', {
      uid: 'sb',
      corpusUid: 'uid-b',
      role: 'scan',
      status: { succeeded: 1, conditions: [{ type: 'Complete', status: 'True' }] },
    });
    const entries = budgetInputs(
      KEY,
      [claim(a, 0, true), claim(b, 0)],
      [running, finished],
      [pod('s', 'sb', 'Succeeded', { perPod: 1 })],
      { parallelismOf },
    );
    expect(entries.map((e) => [e.key, e.scanPods, e.scanPending])).toEqual([
      ['music/a', 1, true],
      ['music/b', 0, false],
    ]);
  });

  it('keeps counting the Jobs and pods of a deleted corpus until they are gone', () => {
    const orphanJob = job('gone-run', {
      uid: 'jg',
      corpusUid: 'uid-gone',
      role: 'run',
      parallelism: 4,
      completions: 50,
      perPod: 5,
    });
    const strayPod = pod('stray', 'deleted-job', 'Running', { terminating: true, perPod: 2 });
    const entries = budgetInputs(KEY, [claim(a, 10)], [orphanJob], [strayPod], { parallelismOf });
    expect(entries.map((e) => [e.key, e.demand, e.potentialPods, e.perPod])).toEqual([
      ['music/a', 10, 0, 3],
      ['job:music/gone-run', 0, 4, 5],
      ['pod:music/stray', 0, 1, 2],
    ]);
  });

  it('ignores Jobs and pods of other databases', () => {
    const other = job('x-run', {
      uid: 'jx',
      corpusUid: 'uid-x',
      role: 'run',
      parallelism: 9,
      completions: 9,
      key: 'server-bbbb',
    });
    const entries = budgetInputs(KEY, [claim(a, 1)], [other], [pod('q', 'gone', 'Running', { key: 'server-bbbb' })], {
      parallelismOf,
    });
    expect(entries.map((e) => e.key)).toEqual(['music/a']);
  });

  it('takes the parallelism the operator wrote when the cache is behind', () => {
    const cached = job('a-run', { uid: 'ja', corpusUid: 'uid-a', role: 'run', parallelism: 2, completions: 100 });
    const entries = budgetInputs(KEY, [claim(a, 10)], [cached], [], { parallelismOf: () => 6 });
    expect(entries[0]!.potentialPods).toBe(6);
  });
});

describe('jobMayRun', () => {
  const table: Array<[string, Partial<Parameters<typeof job>[1]>, number, number]> = [
    ['running, below completions', { completions: 100 }, 5, 5],
    ['capped by shards left', { completions: 10, status: { succeeded: 8 } }, 5, 2],
    ['suspended', { completions: 10, suspend: true }, 5, 0],
    ['failed', { completions: 10, status: { conditions: [{ type: 'Failed', status: 'True' }] } }, 5, 0],
  ];
  for (const [name, o, parallelism, want] of table) {
    it(name, () =>
      expect(jobMayRun(job('j', { uid: 'u', corpusUid: 'c', role: 'run', ...o }), parallelism)).toBe(want),
    );
  }
});
