import { createHash } from 'node:crypto';
import type { FileAnalysis } from '../../../job-runner/analysis/types.js';
import type { FileResult } from '../../../job-runner/db/store.js';

/**
 * A plausible analysis of a two-track file (a C-major melody on piano plus drums), built by hand so store tests do
 * not depend on the parser. `overrides` replaces top-level fields.
 */
export function sampleAnalysis(overrides: Partial<FileAnalysis> = {}): FileAnalysis {
  return {
    format: 1,
    division: { kind: 'ppq', ticksPerQuarter: 480 },
    trackCount: 3,
    channelCount: 2,
    durationSeconds: 8,
    durationTicks: 7680,
    tempoMap: [{ tick: 0, seconds: 0, bpm: 120 }],
    mainBpm: 120,
    timeSignatures: [{ tick: 0, seconds: 0, numerator: 4, denominator: 4 }],
    keySignatures: [{ tick: 0, seconds: 0, sharpsFlats: 0, mode: 'major', key: 'C' }],
    estimatedKey: { tonic: 'C', mode: 'major', correlation: 0.87, confidence: 0.3 },
    noteCount: 24,
    pitchMin: 36,
    pitchMax: 72,
    distinctPitches: 10,
    velocityMin: 64,
    velocityMean: 90.5,
    velocityMax: 110,
    noteDensity: 3,
    maxPolyphony: 2,
    meanPolyphony: 1.25,
    pitchClassHistogram: [0.25, 0, 0.125, 0, 0.125, 0.125, 0, 0.25, 0, 0.0625, 0, 0.0625],
    hasDrums: true,
    controlChangeCount: 4,
    pitchBendCount: 0,
    channels: [
      { channel: 0, program: 0, programName: 'Acoustic Grand Piano', family: 'Piano', isDrum: false, noteCount: 16 },
      { channel: 9, program: 0, programName: 'Standard Kit', family: 'Drums', isDrum: true, noteCount: 8 },
    ],
    tracks: [
      {
        index: 0,
        name: 'conductor',
        channels: [],
        noteCount: 0,
        pitchMin: null,
        pitchMax: null,
        durationSeconds: 0,
        program: null,
        isDrum: false,
      },
      {
        index: 1,
        name: 'Piano',
        channels: [0],
        noteCount: 16,
        pitchMin: 60,
        pitchMax: 72,
        durationSeconds: 8,
        program: 0,
        isDrum: false,
      },
      {
        index: 2,
        name: 'Drums',
        channels: [9],
        noteCount: 8,
        pitchMin: 36,
        pitchMax: 42,
        durationSeconds: 7.5,
        program: null,
        isDrum: true,
      },
    ],
    ...overrides,
  };
}

export function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

export function okResult(path: Buffer | string, shard = 0, analysis: FileAnalysis = sampleAnalysis()): FileResult {
  return { path, size: 1234, shard, sha256: sha256(String(path)), outcome: { status: 'ok', analysis, warnings: [] } };
}
