import { describe, expect, it } from 'vitest';
import { parseMidi } from 'midi-file';
import {
  buildSmf,
  chunk,
  encodeTrack,
  microsecondsPerQuarter,
  note,
  vlq,
  wrapRiff,
} from '../../../job-runner/synth/smf-builder.js';

describe('SMF byte builder', () => {
  it.each([
    [0, [0x00]],
    [0x7f, [0x7f]],
    [0x80, [0x81, 0x00]],
    [0x2000, [0xc0, 0x00]],
    [0x3fff, [0xff, 0x7f]],
    [0x4000, [0x81, 0x80, 0x00]],
    [0x0fffffff, [0xff, 0xff, 0xff, 0x7f]],
  ])('encodes %i as the variable-length quantity %j', (value, bytes) => {
    expect(vlq(value)).toEqual(bytes);
  });

  it('writes events in tick order, keeping the given order at equal ticks, and ends the track', () => {
    const body = encodeTrack([
      ...note(10, 5, 0, 60, 100),
      { tick: 0, type: 'tempo', microsecondsPerQuarter: microsecondsPerQuarter(120) },
      { tick: 10, type: 'controlChange', channel: 0, controller: 64, value: 127 },
    ]);
    expect([...body]).toEqual([
      0x00, 0xff, 0x51, 0x03, 0x07, 0xa1, 0x20, 0x0a, 0x90, 60, 100, 0x00, 0xb0, 64, 127, 0x05, 0x80, 60, 64, 0x00,
      0xff, 0x2f, 0x00,
    ]);
  });

  it('omits repeated channel status bytes with running status, but not after a meta event', () => {
    const body = encodeTrack(
      [
        { tick: 0, type: 'noteOn', channel: 1, pitch: 60, velocity: 90 },
        { tick: 0, type: 'noteOn', channel: 1, pitch: 64, velocity: 90 },
        { tick: 0, type: 'trackName', text: 'x' },
        { tick: 1, type: 'noteOff', channel: 1, pitch: 60, asNoteOn: true },
        { tick: 1, type: 'noteOff', channel: 1, pitch: 64, asNoteOn: true },
      ],
      { runningStatus: true, endOfTrack: false },
    );
    expect([...body]).toEqual([
      0x00, 0x91, 60, 90, 0x00, 64, 90, 0x00, 0xff, 0x03, 0x01, 0x78, 0x01, 0x91, 60, 0, 0x00, 64, 0,
    ]);
  });

  it('builds files midi-file reads back: PPQ and SMPTE headers, pitch bends, key signatures', () => {
    const track = encodeTrack([
      { tick: 0, type: 'keySignature', sharpsFlats: -3, minor: true },
      { tick: 0, type: 'pitchBend', channel: 2, value: -8192 },
      { tick: 5, type: 'pitchBend', channel: 2, value: 8191 },
    ]);
    const ppq = parseMidi(
      buildSmf({ format: 1, division: { kind: 'ppq', ticksPerQuarter: 960 }, tracks: [track, track] }),
    );
    expect(ppq.header).toEqual({ format: 1, numTracks: 2, ticksPerBeat: 960 });
    expect(ppq.tracks[0]!.map((e) => ('value' in e ? e.value : 'key' in e ? [e.key, e.scale] : e.type))).toEqual([
      [-3, 1],
      -8192,
      8191,
      'endOfTrack',
    ]);
    const smpte = parseMidi(
      buildSmf({ format: 0, division: { kind: 'smpte', framesPerSecond: 29, ticksPerFrame: 80 }, tracks: [track] }),
    );
    expect(smpte.header).toEqual({ format: 0, numTracks: 1, framesPerSecond: 29, ticksPerFrame: 80 });
  });

  it('writes lying chunk lengths and track counts when asked', () => {
    expect([...chunk('MTrk', new Uint8Array([1, 2]), 0x01020304)]).toEqual([0x4d, 0x54, 0x72, 0x6b, 1, 2, 3, 4, 1, 2]);
    const bytes = buildSmf({ format: 1, division: { kind: 'raw', word: 0 }, tracks: [], declaredTrackCount: 7 });
    expect([...bytes.subarray(8)]).toEqual([0, 1, 0, 7, 0, 0]);
  });

  it('wraps a file in a RIFF RMID container with little-endian sizes and even padding', () => {
    const smf = new Uint8Array([1, 2, 3]);
    expect([...wrapRiff(smf)]).toEqual([
      ...Buffer.from('RIFF'),
      16,
      0,
      0,
      0,
      ...Buffer.from('RMIDdata'),
      3,
      0,
      0,
      0,
      1,
      2,
      3,
      0,
    ]);
  });
});
