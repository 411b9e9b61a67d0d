import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Midi } from '@tonejs/midi';
import { analyzeMidi } from '../../../job-runner/analysis/analyze.js';
import { readSmf } from '../../../job-runner/analysis/smf-reader.js';
import { splitTracks, type SplitTrack } from '../../../job-runner/analysis/split.js';
import type { FileAnalysis } from '../../../job-runner/analysis/types.js';
import { generateCorpus } from '../../../job-runner/synth/corpus.js';
import { note, wrapRiff } from '../../../job-runner/synth/smf-builder.js';
import { PPQ, cMajorScale, smf, threeTrackSong } from './fixtures.js';
import { analyzerNotes, tonejsNotes, type NoteRow } from './notes.js';

function split(bytes: Uint8Array): SplitTrack[] {
  const outcome = splitTracks(bytes);
  if (!outcome.ok) throw new Error(outcome.reason);
  return outcome.tracks;
}

function analysis(bytes: Uint8Array): FileAnalysis {
  const outcome = analyzeMidi(bytes);
  if (!outcome.ok) throw new Error(outcome.reason);
  return outcome.analysis;
}

const shape = ({ ticks, durationTicks, midi, channel, time, duration }: NoteRow): NoteRow => ({
  ticks,
  durationTicks,
  midi,
  channel,
  time,
  duration,
});

function expectCloseNotes(actual: NoteRow[], expected: NoteRow[]): void {
  expect(actual.length).toBe(expected.length);
  actual.forEach((a, i) => {
    const e = expected[i]!;
    expect([a.ticks, a.durationTicks, a.midi, a.channel]).toEqual([e.ticks, e.durationTicks, e.midi, e.channel]);
    expect(Math.abs(a.time - e.time)).toBeLessThan(1e-6);
    expect(Math.abs(a.duration - e.duration)).toBeLessThan(1e-6);
  });
}

/** Every split file re-reads (analysis and @tonejs/midi) with exactly the notes of its source track. */
function expectFaithfulSplit(source: Uint8Array): SplitTrack[] {
  const tracks = split(source);
  const sourceNotes = analyzerNotes(source);
  const sourceAnalysis = analysis(source);
  for (const track of tracks) {
    const expected = sourceNotes.filter((n) => n.track === track.trackIndex).map(shape);
    const result = analysis(track.bytes);
    expect(result).toMatchObject({
      format: 0,
      trackCount: 1,
      noteCount: expected.length,
      division: sourceAnalysis.division,
    });
    expect(result.tempoMap).toEqual(sourceAnalysis.tempoMap);
    expect(result.timeSignatures).toEqual(sourceAnalysis.timeSignatures);
    expect(result.keySignatures).toEqual(sourceAnalysis.keySignatures);
    expectCloseNotes(analyzerNotes(track.bytes).map(shape), expected);
    expectCloseNotes(tonejsNotes(new Midi(track.bytes)), expected);
    expect(track.noteCount).toBe(expected.length);
    expect(track.sha256).toBe(createHash('sha256').update(track.bytes).digest('hex'));
  }
  return tracks;
}

describe('splitTracks', () => {
  it("writes each note-holding track with the conductor's tempo, meter and key, losing nothing of the track", () => {
    const source = threeTrackSong();
    const tracks = expectFaithfulSplit(source);
    expect(tracks.map((t) => [t.trackIndex, t.name, t.noteCount])).toEqual([
      [1, 'lead', 8],
      [2, 'drums', 8],
    ]);
    const sourceTracks = readSmf(source).tracks;
    for (const track of tracks) {
      const [only] = readSmf(track.bytes).tracks;
      expect(only).toMatchObject({
        name: sourceTracks[track.trackIndex]!.name,
        firstProgram: sourceTracks[track.trackIndex]!.firstProgram,
        controlChangeCount: sourceTracks[track.trackIndex]!.controlChangeCount,
        pitchBendCount: sourceTracks[track.trackIndex]!.pitchBendCount,
        endTick: sourceTracks[track.trackIndex]!.endTick,
      });
    }
    // The lead track's sysex message survives byte for byte.
    expect(Buffer.from(tracks[0]!.bytes).includes(Buffer.from([0xf0, 0x05, 0x7e, 0x7f, 0x09, 0x01, 0xf7]))).toBe(true);
    // The conductor's marker is not a timing event: it stays behind.
    expect(Buffer.from(tracks[0]!.bytes).includes(Buffer.from([0xff, 0x06, 0x01, 0x41]))).toBe(false);
  });

  it('splits every multi-track file of a generated corpus faithfully', () => {
    const corpus = generateCorpus({ files: 12, seed: 99 }).filter((f) => f.spec.format === 1);
    expect(corpus.length).toBeGreaterThan(5);
    for (const file of corpus) {
      expect(expectFaithfulSplit(file.bytes).length).toBe(file.spec.trackCount - 1);
    }
  });

  it('carries a tempo change found in another instrument track, as the analysis applies it to all', () => {
    const source = smf([
      [{ tick: 0, type: 'tempo', microsecondsPerQuarter: 500_000 }],
      [...note(0, PPQ, 0, 60, 90), ...note(4 * PPQ, PPQ, 0, 62, 90)],
      [{ tick: 2 * PPQ, type: 'tempo', microsecondsPerQuarter: 250_000 }, ...note(PPQ, PPQ, 1, 67, 90)],
    ]);
    expectFaithfulSplit(source);
    // 120 BPM to tick 960 (1 s), then 240 BPM: the note at tick 1920 ends at tick 2400, 1 s + 3 × 0.25 s.
    expect(analysis(split(source)[0]!.bytes).durationSeconds).toBeCloseTo(1.75, 12);
  });

  it('splits format-2 tracks as the independent songs they are', () => {
    const source = smf(
      [
        [{ tick: 0, type: 'tempo', microsecondsPerQuarter: 1_000_000 }, ...note(0, PPQ, 0, 60, 90)],
        [{ tick: 0, type: 'tempo', microsecondsPerQuarter: 250_000 }, ...note(0, PPQ, 0, 72, 90)],
      ],
      { format: 2 },
    );
    expect(split(source).map((t) => analysis(t.bytes).durationSeconds)).toEqual([1, 0.25]);
  });

  it('gives nothing for a single-track file, and splits the MIDI data inside a RIFF wrapper', () => {
    expect(split(cMajorScale())).toEqual([]);
    expect(split(wrapRiff(threeTrackSong()))).toEqual(split(threeTrackSong()));
  });

  it('refuses a file the analysis refuses, with the same reason', () => {
    const bytes = threeTrackSong().slice(0, 60);
    const analysed = analyzeMidi(bytes);
    expect(splitTracks(bytes)).toEqual({ ok: false, reason: analysed.ok ? '' : analysed.reason });
  });
});
