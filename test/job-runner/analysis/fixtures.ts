/** MIDI files whose answers are known by construction, shared by the analysis, cross-check and split tests. */
import {
  buildSmf,
  encodeTrack,
  microsecondsPerQuarter,
  note,
  type DivisionSpec,
  type TrackEvent,
} from '../../../job-runner/synth/smf-builder.js';

export const PPQ = 480;

export function smf(
  tracks: TrackEvent[][],
  options: { format?: 0 | 1 | 2; division?: DivisionSpec; runningStatus?: boolean } = {},
): Uint8Array {
  return buildSmf({
    format: options.format ?? (tracks.length === 1 ? 0 : 1),
    division: options.division ?? { kind: 'ppq', ticksPerQuarter: PPQ },
    tracks: tracks.map((t) => encodeTrack(t, { runningStatus: options.runningStatus ?? false })),
  });
}

/** Notes played one after another, each `ticks` long, on one channel. */
export function melody(pitches: number[], ticks: number, channel = 0, from = 0): TrackEvent[] {
  return pitches.flatMap((pitch, i) => note(from + i * ticks, ticks, channel, pitch, 64 + i));
}

/** C4 D E F G A B C5 in quarter notes at 90 BPM, in 3/4, key signature C major. Each quarter lasts 2/3 s. */
export function cMajorScale(): Uint8Array {
  return smf([
    [
      { tick: 0, type: 'trackName', text: 'scale' },
      { tick: 0, type: 'tempo', microsecondsPerQuarter: microsecondsPerQuarter(90) },
      { tick: 0, type: 'timeSignature', numerator: 3, denominator: 4 },
      { tick: 0, type: 'keySignature', sharpsFlats: 0, minor: false },
      ...melody([60, 62, 64, 65, 67, 69, 71, 72], PPQ),
    ],
  ]);
}

/** i-iv-V-i arpeggios in a minor key (harmonic minor: the V chord has the raised leading tone), format 1,
 *  with the minor key signature on the conductor track. `tonic` is a MIDI pitch (57 = A3, 48 = C3). */
export function minorPiece(tonic: number, sharpsFlats: number): Uint8Array {
  const t = tonic;
  const arpeggios = [
    [t, t + 3, t + 7, t + 12], // i
    [t + 5, t + 8, t + 12, t + 17], // iv
    [t + 7, t + 11, t + 14, t + 19], // V
    [t, t + 3, t + 7, t + 12], // i
  ];
  const body = arpeggios.flatMap((chord, bar) => melody(chord, PPQ, 0, bar * 4 * PPQ));
  return smf([
    [
      { tick: 0, type: 'tempo', microsecondsPerQuarter: microsecondsPerQuarter(100) },
      { tick: 0, type: 'timeSignature', numerator: 4, denominator: 4 },
      { tick: 0, type: 'keySignature', sharpsFlats, minor: true },
    ],
    [{ tick: 0, type: 'programChange', channel: 0, program: 40 }, ...body, ...note(16 * PPQ, 4 * PPQ, 0, t, 80)],
  ]);
}

/** The C-major scale over a drum part on channel 10 whose long notes fall on C#, F# and A# (drum pitches 37, 42,
 *  46): counted as pitches they would pull the key away from C major. */
export function cMajorWithHeavyDrums(): Uint8Array {
  const drums: TrackEvent[] = [{ tick: 0, type: 'programChange', channel: 9, program: 0 }];
  for (let beat = 0; beat < 8; beat++) {
    for (const pitch of [37, 42, 46, 49]) drums.push(...note(beat * PPQ, PPQ, 9, pitch, 120));
  }
  return smf([
    [{ tick: 0, type: 'tempo', microsecondsPerQuarter: microsecondsPerQuarter(120) }],
    melody([60, 62, 64, 65, 67, 69, 71, 72], PPQ),
    drums,
  ]);
}

/** SMPTE division: 25 fps × 40 ticks per frame = 1 ms per tick; a tempo event that must not change the times. */
export function smpte25(): Uint8Array {
  return smf(
    [
      [
        { tick: 0, type: 'tempo', microsecondsPerQuarter: microsecondsPerQuarter(60) },
        ...note(0, 500, 0, 60, 100), // 0 s, 0.5 s long
        ...note(1000, 1500, 0, 64, 100), // 1 s, 1.5 s long
      ],
    ],
    { division: { kind: 'smpte', framesPerSecond: 25, ticksPerFrame: 40 } },
  );
}

/** SMPTE 29.97 drop-frame × 100 ticks per frame: a tick lasts 1001 / 3 000 000 s. */
export function smpte2997(): Uint8Array {
  return smf([[...note(0, 3000, 0, 60, 100)]], {
    division: { kind: 'smpte', framesPerSecond: 29, ticksPerFrame: 100 },
  });
}

/** 120 BPM for two quarters, then 60 BPM: the note at tick 1440 starts at 1 s + 1 s = 2 s and lasts 1 s. */
export function tempoChange(): Uint8Array {
  return smf([
    [
      { tick: 0, type: 'tempo', microsecondsPerQuarter: 500_000 },
      { tick: 2 * PPQ, type: 'tempo', microsecondsPerQuarter: 1_000_000 },
    ],
    [...note(0, PPQ, 0, 60, 90), ...note(3 * PPQ, PPQ, 0, 62, 90)],
  ]);
}

/** No tempo until tick 480, where 60 BPM starts: the first beat lasts 0.5 s (120 BPM by default), so the note at
 *  tick 960 starts at 1.5 s. */
export function lateFirstTempo(): Uint8Array {
  return smf([[{ tick: PPQ, type: 'tempo', microsecondsPerQuarter: 1_000_000 }, ...note(2 * PPQ, PPQ, 0, 60, 90)]]);
}

/** A stray note-off for C4 at tick 480, then a C4 from 480 to 960. */
/** A note-off of C4 with nothing sounding, then at the same tick a C4 note (note-on, and its note-off a quarter later). */
export function strayNoteOff(): Uint8Array {
  return smf([[{ tick: PPQ, type: 'noteOff', channel: 0, pitch: 60 }, ...note(PPQ, PPQ, 0, 60, 90)]]);
}

/** A program change on the channel while its note sounds. */
export function programChangeMidNote(): Uint8Array {
  return smf([
    [
      { tick: 0, type: 'programChange', channel: 0, program: 0 },
      { tick: 0, type: 'noteOn', channel: 0, pitch: 60, velocity: 90 },
      { tick: PPQ / 2, type: 'programChange', channel: 0, program: 40 },
      { tick: PPQ, type: 'noteOff', channel: 0, pitch: 60 },
    ],
  ]);
}

/** Same-pitch notes overlapping, velocity-0 note-offs and running status: pairing is first in, first out. */
export function overlappingSamePitch(): Uint8Array {
  return smf(
    [
      [
        { tick: 0, type: 'tempo', microsecondsPerQuarter: 500_000 },
        { tick: 0, type: 'noteOn', channel: 0, pitch: 60, velocity: 90 },
        { tick: 100, type: 'noteOn', channel: 0, pitch: 60, velocity: 80 },
        { tick: 200, type: 'noteOff', channel: 0, pitch: 60, asNoteOn: true }, // closes the note from tick 0
        { tick: 300, type: 'noteOn', channel: 1, pitch: 60, velocity: 70 }, // another channel: its own queue
        { tick: 400, type: 'noteOff', channel: 0, pitch: 60, asNoteOn: true }, // closes the note from tick 100
        { tick: 500, type: 'noteOff', channel: 1, pitch: 60 },
        // A repeated note: off and on at the same tick.
        ...note(600, 100, 0, 62, 90),
        ...note(700, 100, 0, 62, 90),
      ],
    ],
    { runningStatus: true },
  );
}

/** Two notes overlapping by half, a silence, a third note (120 BPM, 480 PPQ: a quarter is 0.5 s). */
export function polyphonyPiece(): Uint8Array {
  return smf([
    [
      ...note(0, 2 * PPQ, 0, 60, 90), // 0-1 s
      ...note(PPQ, 2 * PPQ, 0, 64, 90), // 0.5-1.5 s
      ...note(4 * PPQ, PPQ, 0, 67, 90), // 2-2.5 s
    ],
  ]);
}

/** The C-major scale with every note moved up by `semitones`, for a table of keys. */
export function transposedScale(semitones: number): Uint8Array {
  return smf([
    melody(
      [60, 62, 64, 65, 67, 69, 71, 72].map((p) => p + semitones),
      PPQ,
    ),
  ]);
}

/** Format 1, a conductor track and two instrument tracks with CCs, bends and program changes (for splitting). */
export function threeTrackSong(): Uint8Array {
  return smf(
    [
      [
        { tick: 0, type: 'trackName', text: 'conductor' },
        { tick: 0, type: 'tempo', microsecondsPerQuarter: microsecondsPerQuarter(100) },
        { tick: 0, type: 'timeSignature', numerator: 6, denominator: 8 },
        { tick: 0, type: 'keySignature', sharpsFlats: -3, minor: true },
        { tick: 4 * PPQ, type: 'tempo', microsecondsPerQuarter: microsecondsPerQuarter(80) },
        { tick: 0, type: 'meta', metaType: 0x06, data: [0x41] },
      ],
      [
        { tick: 0, type: 'trackName', text: 'lead' },
        { tick: 0, type: 'programChange', channel: 0, program: 73 },
        { tick: 0, type: 'controlChange', channel: 0, controller: 7, value: 100 },
        ...melody([60, 63, 67, 72, 70, 67, 63, 60], PPQ),
        { tick: PPQ + 10, type: 'pitchBend', channel: 0, value: 2000 },
        { tick: PPQ + 200, type: 'pitchBend', channel: 0, value: 0 },
        { tick: 0, type: 'sysex', data: [0x7e, 0x7f, 0x09, 0x01, 0xf7] },
      ],
      [
        { tick: 0, type: 'trackName', text: 'drums' },
        { tick: 0, type: 'programChange', channel: 9, program: 25 },
        ...[0, 1, 2, 3, 4, 5, 6, 7].flatMap((beat) => note(beat * PPQ, PPQ / 4, 9, beat % 2 ? 38 : 36, 100)),
        { tick: 2 * PPQ, type: 'controlChange', channel: 9, controller: 10, value: 30 },
      ],
    ],
    { runningStatus: true },
  );
}

/** Every well-formed fixture, for the cross-check against @tonejs/midi. */
export const WELL_FORMED: Record<string, () => Uint8Array> = {
  cMajorScale,
  aMinor: () => minorPiece(57, 0),
  cMinor: () => minorPiece(48, -3),
  cMajorWithHeavyDrums,
  tempoChange,
  overlappingSamePitch,
  polyphonyPiece,
  threeTrackSong,
};
