/**
 * Keys: decoding key-signature events, and estimating the key from the notes.
 *
 * Estimation is Krumhansl-Schmuckler: correlate the file's pitch-class histogram (seconds each pitch class sounds,
 * drums excluded: their "pitches" pick drum sounds) with the Krumhansl-Kessler probe-tone profile of each of the 24
 * major and minor keys, and take the best. The profiles are the published ratings (Krumhansl & Kessler 1982).
 */
import type { EstimatedKey } from './types.js';

export const PITCH_CLASS_NAMES: readonly string[] = ['C', 'C#', 'D', 'D#', 'E', 'F', 'F#', 'G', 'G#', 'A', 'A#', 'B'];

const MAJOR_PROFILE = [6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88];
const MINOR_PROFILE = [6.33, 2.68, 3.52, 5.38, 2.6, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17];

/** Tonic names by sharps (+) or flats (−), from −7 to +7. @tonejs/midi uses the major table for minor keys too, so
 *  it reports sf = −3, mi = 1 as "Eb minor" where the key is C minor. */
const MAJOR_BY_SHARPS = ['Cb', 'Gb', 'Db', 'Ab', 'Eb', 'Bb', 'F', 'C', 'G', 'D', 'A', 'E', 'B', 'F#', 'C#'];
const MINOR_BY_SHARPS = ['Ab', 'Eb', 'Bb', 'F', 'C', 'G', 'D', 'A', 'E', 'B', 'F#', 'C#', 'G#', 'D#', 'A#'];

/** "C minor" for sf = −3, mi = 1. `sharpsFlats` must be in [−7, 7] (the reader drops other values). */
export function keySignatureName(sharpsFlats: number, minor: boolean): string {
  const tonic = (minor ? MINOR_BY_SHARPS : MAJOR_BY_SHARPS)[sharpsFlats + 7] ?? '?';
  return `${tonic} ${minor ? 'minor' : 'major'}`;
}

function pearson(x: readonly number[], y: readonly number[]): number {
  const n = x.length;
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    mx += x[i]!;
    my += y[i]!;
  }
  mx /= n;
  my /= n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = x[i]! - mx;
    const dy = y[i]! - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  // Rounding can carry r a hair past ±1 (1.0000000000000002 for a histogram proportional to a profile); the
  // database rightly refuses a correlation outside [-1, 1], so clamp.
  return Math.min(1, Math.max(-1, sxy / Math.sqrt(sxx * syy)));
}

/**
 * The best of the 24 keys for a 12-bin histogram, or null when the histogram cannot tell keys apart (empty, or the
 * same weight on all twelve pitch classes: no variance, so no correlation).
 *
 * confidence = (r1 − r2) / (1 − r2), where r1 and r2 are the best and runner-up correlations: the share of the
 * runner-up's remaining distance to a perfect fit that the winner covers. 0 is a tie, 1 a perfect fit. The runner-up
 * is usually the relative or parallel key, so values around 0.1-0.5 are normal for clear tonal music.
 */
export function estimateKey(histogram: readonly number[]): EstimatedKey | null {
  const mean = histogram.reduce((a, b) => a + b, 0) / 12;
  if (!(mean > 0) || histogram.every((v) => Math.abs(v - mean) <= mean * 1e-12)) return null;
  let best = { tonic: 0, minor: false, r: -Infinity };
  let second = -Infinity;
  for (let tonic = 0; tonic < 12; tonic++) {
    const rotated = histogram.map((_, pc) => histogram[(pc + tonic) % 12]!);
    for (const minor of [false, true]) {
      const r = pearson(rotated, minor ? MINOR_PROFILE : MAJOR_PROFILE);
      if (r > best.r) {
        second = best.r;
        best = { tonic, minor, r };
      } else if (r > second) {
        second = r;
      }
    }
  }
  const confidence = second >= 1 ? 0 : Math.min(1, Math.max(0, (best.r - second) / (1 - second)));
  return {
    tonic: PITCH_CLASS_NAMES[best.tonic]!,
    mode: best.minor ? 'minor' : 'major',
    correlation: best.r,
    confidence,
  };
}
