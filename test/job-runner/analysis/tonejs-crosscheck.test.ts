/**
 * The analysis must find the same notes as @tonejs/midi on well-formed files: same count, same start and length in
 * ticks, same times and durations in seconds within 1e-6 s, same file duration.
 */
import { describe, expect, it } from 'vitest';
import { Midi } from '@tonejs/midi';
import { analyzeMidi } from '../../../job-runner/analysis/analyze.js';
import { generateCorpus } from '../../../job-runner/synth/corpus.js';
import { badInputs } from '../../../job-runner/synth/bad-inputs.js';
import { WELL_FORMED } from './fixtures.js';
import { analyzerNotes, tonejsNotes } from './notes.js';

function expectSameNotes(bytes: Uint8Array): void {
  const outcome = analyzeMidi(bytes);
  if (!outcome.ok) throw new Error(outcome.reason);
  const midi = new Midi(bytes);
  const ours = analyzerNotes(bytes);
  const theirs = tonejsNotes(midi);
  expect(outcome.analysis.noteCount).toBe(theirs.length);
  expect(ours.length).toBe(theirs.length);
  for (let i = 0; i < ours.length; i++) {
    const [a, b] = [ours[i]!, theirs[i]!];
    expect([a.ticks, a.durationTicks, a.midi, a.channel]).toEqual([b.ticks, b.durationTicks, b.midi, b.channel]);
    expect(Math.abs(a.time - b.time)).toBeLessThan(1e-6);
    expect(Math.abs(a.duration - b.duration)).toBeLessThan(1e-6);
  }
  expect(Math.abs(outcome.analysis.durationSeconds - midi.duration)).toBeLessThan(1e-6);
  expect(outcome.analysis.durationTicks).toBe(midi.durationTicks);
}

describe('cross-check against @tonejs/midi', () => {
  it.each(Object.entries(WELL_FORMED))('finds the same notes in the %s fixture', (_, bytes) => {
    expectSameNotes(bytes());
  });

  it('finds the same notes in 20 000 overlapping notes', () => {
    expectSameNotes(badInputs().find((b) => b.name === 'overlapping-notes.mid')!.bytes);
  });

  it('finds the same notes in every file of a generated corpus', () => {
    const corpus = generateCorpus({ files: 60, seed: 20240611 });
    // The corpus must exercise what pairing depends on, or this check proves little.
    expect(corpus.some((f) => f.spec.runningStatus) && corpus.some((f) => f.spec.noteOffAsNoteOn)).toBe(true);
    expect(corpus.some((f) => f.spec.format === 0) && corpus.some((f) => f.spec.tempoChanges > 0)).toBe(true);
    for (const file of corpus) expectSameNotes(file.bytes);
  });
});
