import { describe, expect, it } from 'vitest';
import {
  APPLICATION_NAME_MAX_BYTES,
  applicationNameFor,
  podTail,
  waitingName,
} from '../../contract/application-name.js';
import { claimOf } from '../../contract/ledger.js';

describe('applicationNameFor', () => {
  const table = [
    {
      name: 'names role, corpus, shard and pod',
      owner: { role: 'run', corpus: 'default/bach', shard: 3, pod: 'bach-run-3-x7k2p' },
      want: 'mco run default/bach s3 bach-run-3-x7k2p',
    },
    { name: 'leaves out what is not known', owner: { role: 'scan', corpus: 'lakh' }, want: 'mco scan lakh' },
    { name: 'shard 0 is a shard', owner: { role: 'run', corpus: 'c', shard: 0 }, want: 'mco run c s0' },
    { name: 'non-ASCII becomes ?', owner: { role: 'run', corpus: 'chorälе' }, want: 'mco run chor?l?' },
    {
      name: 'a long corpus name is cut first, marked with ~',
      owner: {
        role: 'run',
        corpus: 'team-a/an-extremely-long-corpus-name-that-goes-on-and-on',
        shard: 12,
        pod: 'pod-12-abcde',
      },
      want: 'mco run team-a/an-extremely-long-corpus-name-~ s12 pod-12-abcde',
    },
    {
      name: 'a pod name too long on its own keeps its unique end',
      owner: { role: 'run', corpus: 'c', shard: 1, pod: `p-${'x'.repeat(80)}-tail9` },
      want: `mco run ~${'x'.repeat(48)}-tail9`,
    },
  ];
  for (const row of table) {
    it(row.name, () => {
      const got = applicationNameFor(row.owner);
      expect(got).toBe(row.want);
      expect(Buffer.byteLength(got)).toBeLessThanOrEqual(APPLICATION_NAME_MAX_BYTES);
    });
  }
});

describe('applicationNameFor with a claim', () => {
  it('puts the claim in the head, where the ledger reads it', () => {
    const got = applicationNameFor({
      role: 'run',
      corpus: 'default/bach',
      shard: 3,
      pod: 'bach-run-3-x7k2p',
      claim: 3,
    });
    expect(got).toBe('mco run/3 default/bach s3 bach-run-3-x7k2p');
    expect(claimOf(got)).toEqual({ role: 'run', claim: 3 });
  });

  const long = [
    {
      name: 'a long corpus name',
      owner: { corpus: 'team-a/an-extremely-long-corpus-name-that-goes-on-and-on', shard: 12, pod: 'pod-12-abcde' },
      pod: 'pod-12-abcde',
    },
    {
      name: 'a pod name too long on its own',
      owner: { corpus: 'c', shard: 1, pod: `p-${'x'.repeat(80)}-tail9` },
      pod: `${'x'.repeat(45)}-tail9`,
    },
    {
      name: 'both too long',
      owner: { corpus: 'y'.repeat(70), shard: 123, pod: `${'z'.repeat(70)}-q8w2e` },
      pod: `${'z'.repeat(45)}-q8w2e`,
    },
    {
      name: 'a pod name cut just before one of its dashes',
      owner: { corpus: 'c', shard: 1, pod: `${'a'.repeat(30)}-${'b'.repeat(50)}` },
      pod: `-${'b'.repeat(50)}`,
    },
  ];
  for (const row of long) {
    it(`keeps the claim and the pod's unique end when cutting ${row.name} to ${APPLICATION_NAME_MAX_BYTES} bytes`, () => {
      const got = applicationNameFor({ role: 'run', claim: 16, ...row.owner });
      expect(Buffer.byteLength(got)).toBeLessThanOrEqual(APPLICATION_NAME_MAX_BYTES);
      expect(got.startsWith('mco run/16 ')).toBe(true);
      expect(claimOf(got)).toEqual({ role: 'run', claim: 16 });
      expect(podTail(got)).toBe(row.pod);
    });
  }

  it('refuses a claim the ledger could not read back', () => {
    expect(() => applicationNameFor({ role: 'run', claim: 0 })).toThrow(RangeError);
    expect(() => applicationNameFor({ role: 'Run', claim: 2 })).toThrow(RangeError);
  });
});

describe('podTail', () => {
  const table: Array<{ name: string; applicationName: string; want: string | undefined }> = [
    { name: 'the pod at the end', applicationName: 'mco run/3 ns/c s0 pod-x7k2q', want: 'pod-x7k2q' },
    { name: 'a pod cut at its beginning, without the ~', applicationName: 'mco run/3 ~un-0-x7k2q', want: 'un-0-x7k2q' },
    { name: 'a pod cut before a dash', applicationName: 'mco run/3 ~-run-0-x7k2q', want: '-run-0-x7k2q' },
    { name: 'a pod cut before a dot', applicationName: 'mco run/3 ~.run-0-x7k2q', want: '.run-0-x7k2q' },
    { name: 'a ~ alone', applicationName: 'mco run/3 ~', want: undefined },
    { name: 'a name ending with its shard', applicationName: 'mco run/3 ns/c s0', want: undefined },
    { name: 'a name ending with its corpus', applicationName: 'mco scan/1 team-a/lakh', want: undefined },
    { name: 'another application', applicationName: 'psql', want: undefined },
    { name: 'a last word with upper case', applicationName: 'mco run/3 c s0 Pod-X', want: undefined },
    { name: 'an empty name', applicationName: '', want: undefined },
  ];
  for (const row of table) it(row.name, () => expect(podTail(row.applicationName)).toBe(row.want));

  it('reads back the pod of every name applicationNameFor writes for one', () => {
    const pod = 'bach-run-7-k2p9x';
    for (const corpus of ['default/bach', 'b'.repeat(60)])
      expect(podTail(applicationNameFor({ role: 'run', corpus, shard: 7, pod, claim: 5 }))).toBe(pod);
  });
});

describe('waitingName', () => {
  it('names the holder by its role, claim and pod, and carries no claim itself', () => {
    const holder = applicationNameFor({
      role: 'run',
      corpus: 'music/bach',
      shard: 3,
      pod: 'bach-run-3-x7k2q',
      claim: 2,
    });
    expect(waitingName(holder)).toBe('mco wait run/2 bach-run-3-x7k2q');
    expect(claimOf(waitingName(holder))).toBeUndefined();
    expect(podTail(waitingName(holder))).toBe('bach-run-3-x7k2q');
  });

  it('keeps the unique end of a pod name too long for 63 bytes', () => {
    const pod = `${'a'.repeat(50)}-run-12-x7k2q`;
    const name = waitingName(applicationNameFor({ role: 'run', corpus: 'c', shard: 12, pod, claim: 16 }));
    expect(name.length).toBeLessThanOrEqual(APPLICATION_NAME_MAX_BYTES);
    expect(name.startsWith('mco wait run/16 ~')).toBe(true);
    expect(pod.endsWith(podTail(name)!)).toBe(true);
  });
});
