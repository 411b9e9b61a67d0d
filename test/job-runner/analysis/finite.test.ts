import { describe, expect, it } from 'vitest';
import { firstNonFinite } from '../../../job-runner/analysis/finite.js';

describe('firstNonFinite', () => {
  const table = [
    { name: 'all finite', value: { a: 1, b: [0, -2.5], c: { d: null, e: 'NaN' } }, want: null },
    { name: 'a top-level NaN', value: { a: Number.NaN }, want: 'a = NaN' },
    {
      name: 'deep in a list',
      value: { tempoMap: [{ bpm: 120 }, { bpm: Number.POSITIVE_INFINITY }] },
      want: 'tempoMap[1].bpm = Infinity',
    },
    { name: 'in a bare array', value: [1, Number.NEGATIVE_INFINITY], want: '[1] = -Infinity' },
  ];
  for (const row of table) it(row.name, () => expect(firstNonFinite(row.value)).toBe(row.want));

  it.each([
    [{ a: 1, b: [1, 2, { c: NaN }] }, 'x.b[2].c = NaN'],
    [{ a: Infinity }, 'x.a = Infinity'],
    [{ a: null, b: 'text', c: [0, -1e308] }, null],
  ])('finds the first non-finite number in %j, under a named root', (value, expected) => {
    expect(firstNonFinite(value, 'x')).toBe(expected);
  });
});
