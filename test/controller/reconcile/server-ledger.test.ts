import { describe, expect, it } from 'vitest';
import { applicationNameFor, podTail } from '../../../contract/application-name.js';
import { pictureOf } from '../../../contract/ledger.js';
import { childName } from '../../../controller/plan/names.js';
import {
  couldBePodOf,
  FOREIGN_CONFIRM_WINDOW_MS,
  ForeignCounts,
  foreignConnections,
  ownerParts,
  sessionPlace,
  vanishedHolders,
  VanishedPods,
} from '../../../controller/reconcile/server-ledger.js';
import { makeCorpus, podWith } from '../fixtures.js';
import { clientSession } from './fake-database.js';

const run = (corpus: string, shard: number, pod: string, claim = 2) =>
  applicationNameFor({ role: 'run', corpus, shard, pod, claim });

describe('couldBePodOf', () => {
  const longCorpus = 'a-corpus-name-long-enough-that-its-run-job-name-is-cut-short';
  const longJob = childName(longCorpus, 'run'); // 63 characters: the Job controller cuts `<job>-<index>-` to 58
  const table: Array<{ name: string; tail: string; job: string; indexed: boolean; shard?: number; want: boolean }> = [
    { name: "an Indexed Job's pod", tail: 'a-run-3-x7k2q', job: 'a-run', indexed: true, shard: 3, want: true },
    { name: 'another index', tail: 'a-run-4-x7k2q', job: 'a-run', indexed: true, shard: 3, want: false },
    { name: 'the index read from the name', tail: 'a-run-12-x7k2q', job: 'a-run', indexed: true, want: true },
    { name: "another Job's pod", tail: 'ab-run-3-x7k2q', job: 'a-run', indexed: true, shard: 3, want: false },
    { name: 'a scan pod', tail: 'a-scan-x7k2q', job: 'a-scan', indexed: false, want: true },
    { name: 'no random end', tail: 'a-scan-', job: 'a-scan', indexed: false, want: false },
    {
      name: 'the end of a pod name the application_name cut (and the Job controller too, index and all)',
      tail: `${longJob.slice(0, 58)}x7k2q`.slice(-45),
      job: longJob,
      indexed: true,
      want: true,
    },
    {
      name: 'too little of a cut name to tell',
      tail: `${longJob.slice(50, 58)}x7k2q`,
      job: longJob,
      indexed: true,
      want: false,
    },
  ];
  for (const row of table) {
    it(row.name, () => expect(couldBePodOf(row.tail, row.job, row.indexed, row.shard)).toBe(row.want));
  }

  it("recognises what applicationNameFor writes for a pod of a long corpus's Job", () => {
    const pod = `${`${longJob}-17-`.slice(0, 58)}bcdfg`;
    const name = run(`music/${longCorpus}`, 17, pod, 16);
    const tail = podTail(name)!;
    const parts = ownerParts(name);
    expect(pod.endsWith(tail)).toBe(true);
    expect(couldBePodOf(tail, longJob, true, parts.shard)).toBe(true);
    expect(couldBePodOf(tail, childName('other', 'run'), true, parts.shard)).toBe(false);
  });
});

describe('ownerParts', () => {
  it('reads corpus, shard and pod back from an application_name', () => {
    expect(ownerParts('mco run/3 music/a s12 a-run-12-x7k2q')).toEqual({
      corpus: 'music/a',
      shard: 12,
      pod: 'a-run-12-x7k2q',
    });
    expect(ownerParts('mco scan/1 music/a a-scan-x7k2q')).toEqual({ corpus: 'music/a', pod: 'a-scan-x7k2q' });
    expect(ownerParts('mco operator')).toEqual({});
  });
});

describe('sessionPlace', () => {
  it("is the URL's database and user, the user's name when the URL names no database, nothing without a user", () => {
    expect(sessionPlace('postgres://midi:pw@db:5432/songs')).toEqual({ database: 'songs', user: 'midi' });
    expect(sessionPlace('postgres://midi:pw@db:5432')).toEqual({ database: 'midi', user: 'midi' });
    expect(sessionPlace('postgres://db/songs')).toBeUndefined();
  });
});

describe('foreignConnections', () => {
  it("counts every holder but those of the budget's live pods, and every unclaimed session", () => {
    const budget = { 'midi.corpus.dev/budget-key': 'server-1' };
    const pods = [
      podWith('a-run-0-bcdfg', 'Running', { metadata: { name: 'a-run-0-bcdfg', annotations: budget } }),
      podWith('a-run-1-bcdfh', 'Succeeded', { metadata: { name: 'a-run-1-bcdfh', annotations: budget } }),
      podWith('b-run-0-bcdfj', 'Running', {
        metadata: { name: 'b-run-0-bcdfj', annotations: { 'midi.corpus.dev/budget-key': 'server-2' } },
      }),
    ];
    const picture = pictureOf([
      clientSession(run('music/a', 0, 'a-run-0-bcdfg')), // its own live pod: counted from its objects
      clientSession(run('music/a', 1, 'a-run-1-bcdfh')), // a finished pod's lingering backend: 2 (its claim)
      clientSession(run('music/b', 0, 'b-run-0-bcdfj')), // a pod of another budget, connected here: 2
      clientSession('grafana'), // 1
    ]);
    expect(foreignConnections(picture, pods, 'server-1')).toBe(5);
  });
});

describe('vanishedHolders', () => {
  const corpus = makeCorpus({ name: 'a', uid: 'uid-a' });
  const url = 'postgres://midi:pw@db:5432/midi';
  const alive = podWith('a-run-0-bcdfg', 'Running', { metadata: { name: 'a-run-0-bcdfg' } });

  it("finds the holders of a corpus's pods that no longer exist, with every pid, on its own database as its own user", () => {
    const gone = run('music/a', 1, 'a-run-1-bcdfh');
    const sessions = [
      clientSession(run('music/a', 0, 'a-run-0-bcdfg')), // its pod exists
      clientSession(gone),
      clientSession(gone),
      clientSession(run('music/a', 2, 'a-run-2-bcdfj'), { datname: 'midi_staging' }), // another cluster's namesake
      clientSession(run('music/a', 3, 'a-run-3-bcdfk'), { usename: 'someone' }),
      clientSession(run('music/b', 4, 'a-run-4-bcdfl')), // names another corpus
      clientSession(run('music/a', 5, 'x-run-5-bcdfm')), // not this corpus's Job naming
      clientSession(applicationNameFor({ role: 'local', corpus: 'music/a', pod: 'a-run-6-bcdfn', claim: 1 })),
      clientSession('grafana'),
    ];
    const found = vanishedHolders(sessions, [{ corpus, url }], [alive]);
    expect(found).toEqual([
      { applicationName: gone, pod: 'a-run-1-bcdfh', corpus, pids: [sessions[1]!.pid, sessions[2]!.pid] },
    ]);
  });
});

describe('VanishedPods', () => {
  const holder = {
    applicationName: 'mco run/2 music/a s1 a-run-1-bcdfh',
    pod: 'a-run-1-bcdfh',
    corpus: makeCorpus(),
    pids: [7],
  };

  it('is due after the grace, again a grace after each attempt, and forgets a holder no longer seen', () => {
    const v = new VanishedPods(1000);
    expect(v.due('k', [holder], 0)).toEqual([]);
    expect(v.due('k', [holder], 999)).toEqual([]);
    expect(v.due('k', [holder], 1000)).toEqual([holder]);
    v.attempted('k', holder, 1000);
    expect(v.due('k', [holder], 1999)).toEqual([]);
    expect(v.due('k', [holder], 2000)).toEqual([holder]);
    expect(v.due('k', [], 2001)).toEqual([]);
    expect(v.due('k', [holder], 2002)).toEqual([]); // seen anew: the grace starts again
    expect(v.due('other', [holder], 5000)).toEqual([]); // per budget
  });
});

describe('ForeignCounts', () => {
  it('counts what two readings in a row show, lets go at once, and takes a lone reading as it is', () => {
    const f = new ForeignCounts();
    const [r1, r2, r3, r4, r5] = [{}, {}, {}, {}, {}];
    expect(f.settle('k', r1, 2, 0)).toBe(2); // the first reading: nothing to compare with
    expect(f.settle('k', r2, 5, 5_000)).toBe(2); // 3 more, seen once
    expect(f.settle('k', r2, 6, 6_000)).toBe(2); // the same reading (cached), the pods changed: still compared with r1
    expect(f.settle('k', r3, 5, 10_000)).toBe(5); // seen twice: counted
    expect(f.settle('k', r4, 1, 15_000)).toBe(1); // gone: let go at once
    expect(f.settle('k', r5, 4, 15_000 + FOREIGN_CONFIRM_WINDOW_MS + 1)).toBe(4); // the last reading is too old
    expect(f.settle('other', r5, 9, 0)).toBe(9); // per budget
  });
});
