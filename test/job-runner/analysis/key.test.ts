import { describe, expect, it } from 'vitest';
import { estimateKey, keySignatureName } from '../../../job-runner/analysis/key.js';

describe('keySignatureName', () => {
  it.each([
    [0, false, 'C major'],
    [0, true, 'A minor'],
    [-3, false, 'Eb major'],
    [-3, true, 'C minor'],
    [1, true, 'E minor'],
    [-1, true, 'D minor'],
    [4, true, 'C# minor'],
    [7, false, 'C# major'],
    [7, true, 'A# minor'],
    [-7, false, 'Cb major'],
    [-7, true, 'Ab minor'],
    [6, false, 'F# major'],
    [-6, true, 'Eb minor'],
  ])('names sf = %i, minor = %s as %s', (sharpsFlats, minor, name) => {
    expect(keySignatureName(sharpsFlats, minor)).toBe(name);
  });
});

describe('estimateKey', () => {
  it('gives no key for an empty histogram or one where every pitch class weighs the same', () => {
    expect(estimateKey(new Array(12).fill(0))).toBeNull();
    expect(estimateKey(new Array(12).fill(1 / 12))).toBeNull();
  });

  it('finds a key whose own profile shape it is given, with correlation 1', () => {
    // The Krumhansl-Kessler D minor profile: the minor profile rotated to start on D.
    const minor = [6.33, 2.68, 3.52, 5.38, 2.6, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17];
    const dMinor = minor.map((_, pc) => minor[(pc - 2 + 12) % 12]!);
    const key = estimateKey(dMinor)!;
    expect(key).toMatchObject({ tonic: 'D', mode: 'minor' });
    expect(key.correlation).toBeCloseTo(1, 12);
    expect(key.confidence).toBeCloseTo(1, 12);
  });

  it('never reports a correlation past 1, even where rounding would carry it there', () => {
    // 3/7 of the major profile: Pearson's r computes to 1.0000000000000002 without the clamp, and the database's
    // CHECK (key_correlation BETWEEN -1 AND 1) would then refuse the whole file.
    const major = [6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88];
    const key = estimateKey(major.map((v) => (v * 3) / 7))!;
    expect(key).toMatchObject({ tonic: 'C', mode: 'major' });
    expect(key.correlation).toBeLessThanOrEqual(1);
    expect(key.correlation).toBeCloseTo(1, 12);
  });

  it('is less confident between a major key and its relative minor than for a clear triad', () => {
    const cMajorScale = [1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1];
    const cMajorTriad = [3, 0, 0, 0, 2, 0, 0, 2, 0, 0, 0, 0];
    const scale = estimateKey(cMajorScale)!;
    const triad = estimateKey(cMajorTriad)!;
    expect(triad).toMatchObject({ tonic: 'C', mode: 'major' });
    for (const key of [scale, triad]) {
      expect(key.confidence).toBeGreaterThanOrEqual(0);
      expect(key.confidence).toBeLessThanOrEqual(1);
    }
    expect(scale.confidence).toBeLessThan(triad.confidence);
  });
});
