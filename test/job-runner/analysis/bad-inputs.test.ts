import { describe, expect, it } from 'vitest';
import { analyzeMidi } from '../../../job-runner/analysis/analyze.js';
import { failureKindOf } from '../../../job-runner/analysis/failure.js';
import { badInputs } from '../../../job-runner/synth/bad-inputs.js';

describe('bad and odd input', () => {
  it.each(badInputs().map((b) => [b.name, b] as const))('%s gives its expected outcome', (_, input) => {
    const outcome = analyzeMidi(input.bytes);
    if (input.expect.ok) {
      expect(outcome.ok, outcome.ok ? '' : outcome.reason).toBe(true);
      expect(outcome.warnings).toContainEqual(expect.stringContaining(input.expect.warning));
    } else {
      expect(outcome.ok).toBe(false);
      if (!outcome.ok) expect(failureKindOf(outcome.reason), outcome.reason).toBe(input.expect.kind);
    }
  });

  it.each([
    ['zero-byte.mid', 'empty file: the file has zero bytes'],
    ['not-midi.mid', "not a MIDI file: the file starts with 'These ar' instead of 'MThd' (or a RIFF RMID wrapper)"],
    ['chunk-length-past-end.mid', "truncated: chunk 'MTrk' at byte 14 declares 1083 bytes but only 83 remain"],
    ['event-cut-short.mid', 'truncated: track 0, byte 101: the track ends inside a channel message'],
    [
      'bit-flipped.mid',
      'invalid event: track 0, byte 67: data byte 0xDB (at or above 0x80) inside a channel message 0x90',
    ],
    ['undefined-status.mid', 'invalid event: track 0, byte 52: status byte 0xF4 is not allowed in a MIDI file'],
    [
      'running-status-without-status.mid',
      'running status without a status byte: track 0, byte 23: data byte 0x3C where a status byte is needed, with no previous status to reuse',
    ],
    ['zero-ppq.mid', 'zero division: the header gives 0 ticks per quarter note (PPQ)'],
  ])('says precisely what is wrong with %s', (name, reason) => {
    const outcome = analyzeMidi(badInputs().find((b) => b.name === name)!.bytes);
    expect(outcome.ok === false && outcome.reason).toBe(reason);
  });

  it.each([
    [
      'a 5-byte delta time',
      [0x81, 0x80, 0x80, 0x80, 0x00, 0xff, 0x2f, 0x00],
      'invalid event: track 0, byte 22: delta time longer than 4 bytes',
    ],
    [
      'a meta event longer than its track',
      [0x00, 0xff, 0x01, 0x10, 0x41],
      'truncated: track 0, byte 22: meta event 0x01 declares 16 bytes but only 1 remain in the track',
    ],
    [
      'a sysex longer than its track',
      [0x00, 0xf0, 0x05, 0x7e],
      'truncated: track 0, byte 22: sysex event declares 5 bytes but only 1 remain in the track',
    ],
  ])('refuses %s', (_, body, reason) => {
    // A format-0 header, then one track chunk holding `body`; the track body starts at byte 22.
    const bytes = new Uint8Array([
      0x4d,
      0x54,
      0x68,
      0x64,
      0,
      0,
      0,
      6,
      0,
      0,
      0,
      1,
      0x01,
      0xe0,
      0x4d,
      0x54,
      0x72,
      0x6b,
      0,
      0,
      0,
      body.length,
      ...body,
    ]);
    expect(analyzeMidi(bytes)).toMatchObject({ ok: false, reason });
  });

  it.each([
    ['format 3', [0, 3, 0, 1, 1, 0xe0], 'invalid header: format 3 (only 0, 1 and 2 exist)'],
    [
      'an SMPTE rate of 23 frames',
      [0, 0, 0, 1, 0xe9, 40],
      'invalid header: SMPTE division with 23 frames per second (only 24, 25, 29 and 30 exist)',
    ],
    ['0 ticks per SMPTE frame', [0, 0, 0, 1, 0xe7, 0], 'zero division: SMPTE division with 0 ticks per frame'],
  ])('refuses a header with %s', (_, header, reason) => {
    const bytes = new Uint8Array([0x4d, 0x54, 0x68, 0x64, 0, 0, 0, 6, ...header]);
    expect(analyzeMidi(bytes)).toMatchObject({ ok: false, reason });
  });

  it('warns about, but reads, unknown chunks, missing end-of-track events and a wrong track count', () => {
    const track = [0x00, 0x90, 60, 100, 0x60, 0x80, 60, 0];
    const bytes = new Uint8Array([
      0x4d,
      0x54,
      0x68,
      0x64,
      0,
      0,
      0,
      6,
      0,
      1,
      0,
      3,
      0x01,
      0xe0,
      0x58,
      0x59,
      0x5a,
      0x5a,
      0,
      0,
      0,
      2,
      1,
      2,
      0x4d,
      0x54,
      0x72,
      0x6b,
      0,
      0,
      0,
      track.length,
      ...track,
    ]);
    const outcome = analyzeMidi(bytes);
    expect(outcome.ok && outcome.analysis.noteCount).toBe(1);
    expect(outcome.warnings).toEqual([
      "unknown chunk 'XYZZ' at byte 14 skipped",
      'track 0 has no end-of-track event',
      'the header declares 3 tracks but the file holds 1',
    ]);
  });
});
