import { describe, expect, it } from 'vitest';
import { checkWholeNumbers, wholeNumber } from '../../common/whole-number.js';

describe('wholeNumber', () => {
  it.each<[string, unknown, number, number | string]>([
    ['a whole number at the minimum', 0, 0, 0],
    ['an environment variable', '12', 1, 12],
    ['a fraction', 1.5, 1, '--n must be a whole number ≥ 1, got 1.5'],
    ['below the minimum', 0, 1, '--n must be a whole number ≥ 1, got 0'],
    ['not a number', 'abc', 0, '--n must be a whole number ≥ 0, got abc'],
    ['NaN from yargs', Number.NaN, 0, '--n must be a whole number ≥ 0, got NaN'],
    ['absent', undefined, 0, '--n must be a whole number ≥ 0, got undefined'],
  ])('%s', (_name, value, min, want) => {
    expect(wholeNumber('--n', value, min)).toBe(want);
  });
});

describe('checkWholeNumbers', () => {
  it('passes flags that are absent or whole, and throws for the first that is not', () => {
    expect(checkWholeNumbers({ headroom: 0, shards: undefined }, { headroom: 0, shards: 1 })).toBe(true);
    expect(() => checkWholeNumbers({ headroom: -1, shards: 0 }, { headroom: 0, shards: 1 })).toThrow(
      '--headroom must be a whole number ≥ 0, got -1',
    );
  });
});
