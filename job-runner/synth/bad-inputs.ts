/**
 * One file for each kind of bad or odd input that can be expressed as bytes, with the outcome the analysis must give:
 * a failure of a given kind, or success with a given warning. (Unreadable files, symlinks leaving the corpus root and
 * non-UTF-8 names are properties of the file system, not of bytes: the runner's tests make those.)
 */
import { FailureKind } from '../analysis/failure.js';
import {
  buildSmf,
  chunk,
  concatBytes,
  encodeTrack,
  microsecondsPerQuarter,
  note,
  wrapRiff,
  type DivisionSpec,
  type TrackEvent,
} from './smf-builder.js';

export type ExpectedOutcome = { ok: false; kind: FailureKind } | { ok: true; warning: string };

export interface BadInput {
  /** File name, e.g. `zero-byte.mid`. */
  name: string;
  description: string;
  bytes: Uint8Array;
  expect: ExpectedOutcome;
}

const PPQ = 480;

/** A short well-formed C-major phrase; `velocities` lets a fixture mark one note so it can find its bytes. */
function phrase(velocities: number[] = [90, 90, 90, 90, 90, 90, 90, 90]): TrackEvent[] {
  const events: TrackEvent[] = [{ tick: 0, type: 'tempo', microsecondsPerQuarter: microsecondsPerQuarter(120) }];
  [60, 62, 64, 65, 67, 69, 71, 72].forEach((pitch, i) =>
    events.push(...note(i * PPQ, PPQ, 0, pitch, velocities[i] ?? 90)),
  );
  return events;
}

function singleTrack(events: TrackEvent[], division: DivisionSpec = { kind: 'ppq', ticksPerQuarter: PPQ }): Uint8Array {
  return buildSmf({ format: 0, division, tracks: [encodeTrack(events)] });
}

function indexOf(haystack: Uint8Array, needle: number[]): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  throw new Error(`byte pattern ${needle.join(',')} not found`);
}

function bitFlipped(): Uint8Array {
  // The fifth note-on (G4, velocity 91 = 0x5B, unique in the file) gets bit 7 of its velocity flipped: 0xDB.
  const bytes = singleTrack(phrase([90, 90, 90, 90, 91, 90, 90, 90]));
  const velocityAt = indexOf(bytes, [0x90, 67, 91]) + 2;
  bytes[velocityAt] = bytes[velocityAt]! ^ 0x80;
  return bytes;
}

function overlappingNotes(count: number): Uint8Array {
  // `count` notes, each starting one tick after the previous one and all still sounding at tick `count`. Channels
  // change in blocks (never 9, the drums), so running status keeps the file small.
  const channels = [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15];
  const channelOf = (i: number): number => channels[Math.floor((i * channels.length) / count)]!;
  const pitchOf = (i: number): number => 24 + ((i * 7) % 80);
  const events: TrackEvent[] = [];
  for (let i = 0; i < count; i++)
    events.push({ tick: i, type: 'noteOn', channel: channelOf(i), pitch: pitchOf(i), velocity: 64 });
  for (let i = 0; i < count; i++)
    events.push({ tick: count + i, type: 'noteOff', channel: channelOf(i), pitch: pitchOf(i), asNoteOn: true });
  return buildSmf({
    format: 0,
    division: { kind: 'ppq', ticksPerQuarter: PPQ },
    tracks: [encodeTrack(events, { runningStatus: true })],
  });
}

export function badInputs(): BadInput[] {
  const good = singleTrack(phrase());
  const trackStart = 14; // MThd chunk (8 + 6), then the MTrk chunk
  return [
    {
      name: 'zero-byte.mid',
      description: 'an empty file',
      bytes: new Uint8Array(0),
      expect: { ok: false, kind: FailureKind.empty },
    },
    {
      name: 'not-midi.mid',
      description: 'a text file with a .mid name',
      bytes: new TextEncoder().encode('These are the liner notes, not a MIDI file.\n'),
      expect: { ok: false, kind: FailureKind.notMidi },
    },
    {
      name: 'truncated.mid',
      description: 'a file cut off half-way through its track',
      bytes: good.slice(0, Math.floor(good.length / 2)),
      expect: { ok: false, kind: FailureKind.truncated },
    },
    {
      name: 'chunk-length-past-end.mid',
      description: 'a complete file whose track chunk declares 1000 bytes more than the file holds',
      bytes: concatBytes([
        good.slice(0, trackStart),
        chunk('MTrk', good.slice(trackStart + 8), good.length - trackStart - 8 + 1000),
      ]),
      expect: { ok: false, kind: FailureKind.truncated },
    },
    {
      name: 'event-cut-short.mid',
      description: 'consistent chunk lengths, but the track ends inside a note-on',
      bytes: buildSmf({
        format: 0,
        division: { kind: 'ppq', ticksPerQuarter: PPQ },
        tracks: [encodeTrack([...phrase(), { tick: 8 * PPQ, type: 'raw', bytes: [0x90, 60] }], { endOfTrack: false })],
      }),
      expect: { ok: false, kind: FailureKind.truncated },
    },
    {
      name: 'bit-flipped.mid',
      description: 'one bit flipped in a note velocity, giving a data byte above 0x7F',
      bytes: bitFlipped(),
      expect: { ok: false, kind: FailureKind.invalidEvent },
    },
    {
      name: 'undefined-status.mid',
      description: 'a status byte 0xF4, which no MIDI file may hold',
      bytes: singleTrack([...phrase(), { tick: 2 * PPQ, type: 'raw', bytes: [0xf4] }]),
      expect: { ok: false, kind: FailureKind.invalidEvent },
    },
    {
      name: 'running-status-without-status.mid',
      description: 'a track whose first event has data bytes but no status byte',
      bytes: singleTrack([{ tick: 0, type: 'raw', bytes: [60, 100] }, ...phrase()]),
      expect: { ok: false, kind: FailureKind.runningStatus },
    },
    {
      name: 'zero-ppq.mid',
      description: 'a header giving 0 ticks per quarter note',
      bytes: buildSmf({ format: 0, division: { kind: 'raw', word: 0 }, tracks: [encodeTrack(phrase())] }),
      expect: { ok: false, kind: FailureKind.zeroDivision },
    },
    {
      name: 'absurd-delta.mid',
      description:
        'a delta time of 0x0FFFFFFF ticks (the largest a file can hold): about 78 hours at 120 BPM and 480 PPQ',
      bytes: singleTrack([...phrase(), ...note(0x0fffffff, PPQ, 0, 60, 90)]),
      expect: { ok: false, kind: FailureKind.absurdTiming },
    },
    {
      name: 'riff-wrapped.mid',
      description: 'a RIFF RMID (.rmi) container around a good file: unwrapped and analysed',
      bytes: wrapRiff(good),
      expect: { ok: true, warning: 'RIFF RMID wrapper removed' },
    },
    {
      name: 'smpte-division.mid',
      description: 'SMPTE division, 25 frames per second × 40 ticks per frame (1 ms per tick)',
      bytes: singleTrack(phrase(), { kind: 'smpte', framesPerSecond: 25, ticksPerFrame: 40 }),
      expect: { ok: true, warning: 'SMPTE division' },
    },
    {
      name: 'notes-never-released.mid',
      description: 'two notes whose note-offs never come',
      bytes: singleTrack([
        ...phrase(),
        { tick: 8 * PPQ, type: 'noteOn', channel: 0, pitch: 48, velocity: 80 },
        { tick: 8 * PPQ, type: 'noteOn', channel: 0, pitch: 55, velocity: 80 },
        { tick: 10 * PPQ, type: 'controlChange', channel: 0, controller: 64, value: 0 },
      ]),
      expect: { ok: true, warning: 'notes never released' },
    },
    {
      name: 'overlapping-notes.mid',
      description: '20 000 notes sounding at once',
      bytes: overlappingNotes(20_000),
      expect: { ok: true, warning: 'notes sound at once' },
    },
  ];
}
