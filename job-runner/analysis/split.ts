/**
 * Track splitting: each note-holding track of a multi-track file becomes a format-0 file of its own, with the tempo,
 * meter, key and SMPTE-offset events of the conductor track (track 0 of a format-1 file) merged in, so that it plays
 * at the same times as in the whole file. Such events found in other tracks are carried too: the analysis (like
 * @tonejs/midi and players) applies a format-1 tempo wherever it sits, so the split must as well to keep the times.
 *
 * How the bytes are written, and why neither of the two libraries at hand:
 * - the @tonejs/midi data model is lossy: it keeps notes, CCs and pitch bends but drops sysex, aftertouch, text and
 *   markers, keeps one program per track, splits tracks by (channel, program) and re-pairs notes with the defects
 *   the analysis compensates for (smf-reader.ts);
 * - midi-file's writeMidi round-trips its event objects faithfully, but its Writer appends with Array.concat on every
 *   variable-length number, string and sysex (quadratic in the track length: a long track takes seconds), and its
 *   parser, which would have to read the file again, refuses files this analysis accepts (odd meta lengths, unknown
 *   chunks) and accepts ones it refuses (truncated, bit-flipped).
 * So the split copies each event's bytes verbatim (writing out a running status in full) and only re-encodes delta
 * times: lossless by construction, linear, and it walks exactly the events the analysis read. The tests re-read every
 * split file with the analysis and with @tonejs/midi.
 */
import { createHash } from 'node:crypto';
import { FailureKind, MidiFormatError, describeThrown } from './failure.js';
import { readSmf, type SmfContent, type TrackSummary } from './smf-reader.js';

export interface SplitTrack {
  /** Index of the source track chunk. */
  trackIndex: number;
  name: string | null;
  noteCount: number;
  /** A complete format-0 MIDI file. */
  bytes: Uint8Array;
  /** Hex sha256 of `bytes`. */
  sha256: string;
}

export type SplitOutcome = { ok: true; tracks: SplitTrack[] } | { ok: false; reason: string };

/** Conductor meta events carried into every split track: tempo, SMPTE offset, time signature, key signature. */
const CONDUCTOR_META = new Set([0x51, 0x54, 0x58, 0x59]);

interface RawEvent {
  tick: number;
  /** The event without its delta time, status byte always present. */
  bytes: Uint8Array;
}

/** Splits a file's tracks; single-track files give no tracks. Never throws. */
export function splitTracks(fileBytes: Uint8Array): SplitOutcome {
  try {
    const content = readSmf(fileBytes);
    if (content.tracks.length < 2) return { ok: true, tracks: [] };
    // Format 2 tracks are independent songs; in format 1 the timing events of every track apply to all.
    const timingByTrack = content.tracks.map((track) =>
      content.format === 1
        ? trackEvents(content, track).filter((e) => e.bytes[0] === 0xff && CONDUCTOR_META.has(e.bytes[1]!))
        : [],
    );
    const tracks = content.tracks
      .filter((track) => track.noteTo > track.noteFrom)
      .map((track) => {
        const own = trackEvents(content, track);
        // Array.prototype.sort is stable: at equal ticks, track order is kept, so the same tempo wins as in the file.
        const timing = timingByTrack
          .filter((_, t) => t !== track.index)
          .flat()
          .sort((a, b) => a.tick - b.tick);
        const events = mergeByTick(timing, own);
        const bytes = singleTrackFile(content, events, track.endTick);
        return {
          trackIndex: track.index,
          name: track.name,
          noteCount: track.noteTo - track.noteFrom,
          bytes,
          sha256: createHash('sha256').update(bytes).digest('hex'),
        };
      });
    return { ok: true, tracks };
  } catch (thrown) {
    return {
      ok: false,
      reason: thrown instanceof MidiFormatError ? thrown.message : `${FailureKind.internal}: ${describeThrown(thrown)}`,
    };
  }
}

/** Timing events first at equal ticks, so a tempo at tick t applies to the notes at t. */
function mergeByTick(first: readonly RawEvent[], second: readonly RawEvent[]): RawEvent[] {
  const merged: RawEvent[] = [];
  let i = 0;
  let j = 0;
  while (i < first.length || j < second.length) {
    if (j >= second.length || (i < first.length && first[i]!.tick <= second[j]!.tick)) merged.push(first[i++]!);
    else merged.push(second[j++]!);
  }
  return merged;
}

/** The events of a track (already validated by readSmf) up to, not including, its end-of-track event. */
function trackEvents(content: SmfContent, track: TrackSummary): RawEvent[] {
  const b = content.smf;
  const end = track.bodyEnd;
  const events: RawEvent[] = [];
  let p = track.bodyStart;
  let tick = 0;
  let running = 0;
  const vlq = (): number => {
    let value = 0;
    let byte: number;
    do {
      if (p >= end) throw new MidiFormatError(FailureKind.truncated, `track ${track.index} ends inside a number`);
      byte = b[p++]!;
      value = value * 128 + (byte & 0x7f);
    } while (byte & 0x80);
    return value;
  };
  while (p < end) {
    tick += vlq();
    let status = b[p]!;
    const start = p;
    if (status >= 0x80) p++;
    else status = running;
    let bytes: Uint8Array;
    if (status === 0xff) {
      const type = b[p++]!;
      if (type === 0x2f) break;
      const length = vlq();
      p += length;
      bytes = b.subarray(start, p);
    } else if (status === 0xf0 || status === 0xf7) {
      const length = vlq();
      p += length;
      bytes = b.subarray(start, p);
    } else {
      running = status;
      const kind = status & 0xf0;
      const dataBytes = kind === 0xc0 || kind === 0xd0 ? 1 : 2;
      const dataStart = p;
      p += dataBytes;
      bytes = new Uint8Array(1 + dataBytes);
      bytes[0] = status;
      bytes.set(b.subarray(dataStart, p), 1);
    }
    if (p > end) throw new MidiFormatError(FailureKind.truncated, `track ${track.index} ends inside an event`);
    events.push({ tick, bytes });
  }
  return events;
}

function writeVlq(out: number[], value: number): void {
  const bytes = [value & 0x7f];
  for (let v = Math.floor(value / 128); v > 0; v = Math.floor(v / 128)) bytes.push((v & 0x7f) | 0x80);
  for (let i = bytes.length - 1; i >= 0; i--) out.push(bytes[i]!);
}

/** A format-0 file of `events`, with the source's division and an end-of-track at `endTick` or the last event. */
function singleTrackFile(content: SmfContent, events: readonly RawEvent[], endTick: number): Uint8Array {
  const body: number[] = [];
  let tick = 0;
  for (const event of events) {
    writeVlq(body, event.tick - tick);
    tick = event.tick;
    for (let i = 0; i < event.bytes.length; i++) body.push(event.bytes[i]!);
  }
  writeVlq(body, Math.max(endTick, tick) - tick);
  body.push(0xff, 0x2f, 0x00);

  const smf = content.smf;
  const header = [0x4d, 0x54, 0x68, 0x64, 0, 0, 0, 6, 0, 0, 0, 1, smf[12]!, smf[13]!];
  const length = body.length;
  const out = new Uint8Array(header.length + 8 + length);
  out.set(header, 0);
  out.set(
    [0x4d, 0x54, 0x72, 0x6b, (length >>> 24) & 0xff, (length >>> 16) & 0xff, (length >>> 8) & 0xff, length & 0xff],
    header.length,
  );
  out.set(body, header.length + 8);
  return out;
}
