import { describe, expect, it } from 'vitest';
import { wholeNumber } from '../../common/whole-number.js';

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
