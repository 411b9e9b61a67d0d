import { describe, expect, it } from 'vitest';
import { fairShares, type Claim } from '../../../controller/budget/fair-share.js';

const claim = (key: string, createdAt: number, perPod: number, demand: number): Claim => ({
  key,
  createdAt,
  perPod,
  demand,
});

describe('fairShares', () => {
  const table: Array<{ name: string; allowance: number; claims: Claim[]; want: Record<string, number> }> = [
    {
      name: 'a lone corpus gets what it asks for when it fits',
      allowance: 85,
      claims: [claim('a', 1, 3, 10)],
      want: { a: 10 },
    },
    {
      name: 'a lone corpus is cut to whole pods of the allowance',
      allowance: 85,
      claims: [claim('a', 1, 3, 100)],
      want: { a: 28 },
    },
    {
      name: 'two equal corpora split evenly',
      allowance: 84,
      claims: [claim('a', 1, 3, 100), claim('b', 2, 3, 100)],
      want: { a: 14, b: 14 },
    },
    {
      name: 'the odd pod goes to the older corpus',
      allowance: 9,
      claims: [claim('b', 2, 3, 100), claim('a', 1, 3, 100)],
      want: { a: 2, b: 1 },
    },
    {
      name: 'same creation time: the smaller key wins the tie',
      allowance: 9,
      claims: [claim('y', 5, 3, 100), claim('x', 5, 3, 100)],
      want: { x: 2, y: 1 },
    },
    {
      name: 'work-conserving: a corpus wanting little leaves the rest to the other',
      allowance: 84,
      claims: [claim('a', 1, 3, 2), claim('b', 2, 3, 100)],
      want: { a: 2, b: 26 },
    },
    {
      name: 'fair in connections, not pods: small pods are not starved by big ones',
      allowance: 40,
      claims: [claim('big', 1, 16, 100), claim('small', 2, 2, 100)],
      want: { big: 1, small: 12 },
    },
    {
      name: 'leftover too small for a big pod goes to a small one',
      allowance: 20,
      claims: [claim('big', 1, 16, 1), claim('small', 2, 3, 100)],
      want: { big: 1, small: 1 },
    },
    { name: 'nothing fits: no pods at all', allowance: 4, claims: [claim('a', 1, 5, 10)], want: { a: 0 } },
    {
      name: 'a corpus that wants nothing (scanning, suspended, done) gets nothing',
      allowance: 84,
      claims: [claim('a', 1, 3, 0), claim('b', 2, 3, 100)],
      want: { a: 0, b: 28 },
    },
    {
      name: 'three corpora, one satisfied early',
      allowance: 30,
      claims: [claim('a', 1, 2, 3), claim('b', 2, 2, 100), claim('c', 3, 2, 100)],
      want: { a: 3, b: 6, c: 6 },
    },
    { name: 'no allowance', allowance: 0, claims: [claim('a', 1, 1, 10)], want: { a: 0 } },
  ];
  for (const row of table) {
    it(row.name, () => {
      const got = fairShares(row.allowance, row.claims);
      expect(Object.fromEntries(got)).toEqual(row.want);
      const used = row.claims.reduce((n, c) => n + got.get(c.key)! * c.perPod, 0);
      expect(used).toBeLessThanOrEqual(row.allowance);
    });
  }

  it('does not depend on the order the claims are listed in', () => {
    const claims = [claim('a', 3, 2, 50), claim('b', 1, 5, 50), claim('c', 2, 3, 7), claim('d', 2, 1, 50)];
    const want = Object.fromEntries(fairShares(61, claims));
    expect(Object.fromEntries(fairShares(61, [...claims].reverse()))).toEqual(want);
    expect(Object.fromEntries(fairShares(61, [claims[2]!, claims[0]!, claims[3]!, claims[1]!]))).toEqual(want);
  });

  it('refuses nonsense', () => {
    expect(() => fairShares(-1, [])).toThrow(RangeError);
    expect(() => fairShares(10, [claim('a', 1, 0, 1)])).toThrow(/perPod/);
    expect(() => fairShares(10, [claim('a', 1, 1, -1)])).toThrow(/demand/);
  });
});
