import { describe, expect, it } from 'vitest';
import { firstNonFinite } from '../../../job-runner/db/finite.js';
import { copyField, pgJson, pgText } from '../../../job-runner/db/text.js';

describe('text bound for Postgres', () => {
  it('drops NUL and replaces lone surrogates, keeping valid pairs', () => {
    expect(pgText('Pi\u0000ano')).toBe('Piano');
    expect(pgText('a\ud800b')).toBe('a\ufffdb');
    expect(pgText('a\udc00b')).toBe('a\ufffdb');
    expect(pgText('🎹')).toBe('🎹');
  });
  it('cleans every string inside JSON', () => {
    expect(JSON.parse(pgJson({ name: 'x\u0000y', list: ['\ud83d'] }))).toEqual({ name: 'xy', list: ['\ufffd'] });
  });
  it('escapes COPY text-format specials', () => {
    expect(copyField('a\\b\tc\nd\re')).toBe('a\\\\b\\tc\\nd\\re');
  });
});

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
});
