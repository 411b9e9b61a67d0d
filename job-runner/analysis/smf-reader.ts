/**
 * A single-pass Standard MIDI File reader over the raw bytes.
 *
 * Why not midi-file's parseMidi (what @tonejs/midi uses)? It allocates one object per event, never checks bounds
 * (reading past the end gives `undefined` and then NaN, so truncated files "parse"), never checks that data bytes are
 * below 0x80 (so bit-flipped files "parse" into nonsense), and throws bare strings. This reader walks the bytes once,
 * keeps only what the analysis needs in typed arrays, pairs notes as it goes, and refuses bad input with a precise
 * reason naming the track and byte offset. Measured in bench/analysis.ts.
 *
 * Note pairing follows @tonejs/midi so that note counts and durations agree on well-formed files: notes pair per
 * (track, channel, pitch), first in first out — a note-off (or a note-on with velocity 0) closes the earliest
 * sounding note of that pitch. Three deliberate differences, each a @tonejs/midi defect (docs/analysis.md):
 *  - a note-off with no sounding note is ignored (tonejs lets it close a later note-on at the same tick, giving a
 *    zero-length note and leaving the real note-off unused);
 *  - notes are paired by channel regardless of program changes (tonejs splits tracks by (channel, program) before
 *    pairing, so a program change while a note sounds loses that note);
 *  - a note never released is closed at the end of its track and reported (tonejs silently drops it).
 */
import type { Division } from './types.js';
import { FailureKind, MidiFormatError } from './failure.js';

export interface ReaderLimits {
  /** Events (of all kinds, all tracks) beyond which a file is refused, so a hostile file cannot exhaust memory. */
  maxEvents: number;
  /**
   * Return the note table as views of this thread's reused buffers instead of a copy: valid only until the next
   * readSmf call. For callers that are done with the notes before reading another file (analyzeMidi).
   */
  borrowNotes?: boolean;
}

export const DEFAULT_READER_LIMITS: ReaderLimits = { maxEvents: 5_000_000 };

/** Notes as columns: note i sounds on `channel[i]` from `startTick[i]` to `endTick[i]` in track `track[i]`. */
export interface NoteTable {
  count: number;
  startTick: Float64Array;
  endTick: Float64Array;
  pitch: Uint8Array;
  velocity: Uint8Array;
  channel: Uint8Array;
  track: Uint32Array;
}

export interface TempoEvent {
  tick: number;
  microsecondsPerQuarter: number;
}
export interface TimeSignatureEvent {
  tick: number;
  numerator: number;
  denominator: number;
}
export interface KeySignatureEvent {
  tick: number;
  sharpsFlats: number;
  minor: boolean;
}
export interface ProgramChangeEvent {
  tick: number;
  channel: number;
  program: number;
  track: number;
}

export interface TrackSummary {
  index: number;
  /** The MTrk chunk's body is bytes [bodyStart, bodyEnd) of `SmfContent.smf`. */
  bodyStart: number;
  bodyEnd: number;
  name: string | null;
  /** Tick of the end-of-track event, or of the last event when it is missing. */
  endTick: number;
  /** The track's notes are rows [noteFrom, noteTo) of the note table. */
  noteFrom: number;
  noteTo: number;
  firstProgram: number | null;
  controlChangeCount: number;
  pitchBendCount: number;
}

export interface SmfContent {
  format: 0 | 1 | 2;
  division: Division;
  tracks: TrackSummary[];
  notes: NoteTable;
  /** In file order (track by track); consumers sort by tick with a stable sort. */
  tempos: TempoEvent[];
  timeSignatures: TimeSignatureEvent[];
  keySignatures: KeySignatureEvent[];
  programChanges: ProgramChangeEvent[];
  controlChangeCount: number;
  pitchBendCount: number;
  /** The largest single delta time, for the absurd-timing check. */
  largestDelta: { ticks: number; track: number };
  /** The SMF bytes themselves (inside a RIFF wrapper when there was one). */
  smf: Uint8Array;
  warnings: string[];
}

const SMPTE_RATES = new Set([24, 25, 29, 30]);

/** Reads a file's bytes; throws MidiFormatError for input it refuses. */
export function readSmf(
  bytes: Uint8Array,
  limits: ReaderLimits = DEFAULT_READER_LIMITS,
  /** Filled as reading goes, so the caller keeps the warnings of a file that is refused half-way. */
  warnings: string[] = [],
): SmfContent {
  if (bytes.length === 0) throw new MidiFormatError(FailureKind.empty, 'the file has zero bytes');
  const smf = unwrapRiff(bytes, warnings);
  return new Reader(smf, limits, warnings).read();
}

/**
 * RIFF MIDI (.rmi): a RIFF container of type 'RMID' whose 'data' chunk is a plain SMF. Returns the SMF bytes
 * (the input itself when it is not RIFF). Exported for the track splitter, which needs the same bytes.
 */
export function unwrapRiff(bytes: Uint8Array, warnings: string[]): Uint8Array {
  if (!startsWith(bytes, 0, 'RIFF')) return bytes;
  if (bytes.length < 12 || !startsWith(bytes, 8, 'RMID')) {
    throw new MidiFormatError(FailureKind.notMidi, `a RIFF file of type '${ascii(bytes, 8, 4)}', not RMID`);
  }
  let p = 12;
  while (p + 8 <= bytes.length) {
    const size = (bytes[p + 4]! | (bytes[p + 5]! << 8) | (bytes[p + 6]! << 16)) + bytes[p + 7]! * 0x1000000;
    if (startsWith(bytes, p, 'data')) {
      if (p + 8 + size > bytes.length) {
        throw new MidiFormatError(
          FailureKind.truncated,
          `the RMID 'data' chunk declares ${size} bytes but only ${bytes.length - p - 8} remain`,
        );
      }
      warnings.push('RIFF RMID wrapper removed; the MIDI data inside was analysed');
      return bytes.subarray(p + 8, p + 8 + size);
    }
    p += 8 + size + (size & 1); // RIFF chunks are padded to even lengths
  }
  throw new MidiFormatError(FailureKind.notMidi, "a RIFF RMID file without a 'data' chunk");
}

function startsWith(bytes: Uint8Array, at: number, tag: string): boolean {
  if (at + tag.length > bytes.length) return false;
  for (let i = 0; i < tag.length; i++) if (bytes[at + i] !== tag.charCodeAt(i)) return false;
  return true;
}

function ascii(bytes: Uint8Array, at: number, length: number): string {
  let s = '';
  for (let i = at; i < Math.min(at + length, bytes.length); i++) {
    const b = bytes[i]!;
    s += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`;
  }
  return s;
}

function hex(n: number): string {
  return `0x${n.toString(16).toUpperCase().padStart(2, '0')}`;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Track names: UTF-8 when valid, else Latin-1 (what most old files mean); control characters (NUL included,
 *  which Postgres text refuses) removed. */
function decodeText(bytes: Uint8Array): string | null {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    text = String.fromCharCode(...bytes);
  }
  // eslint-disable-next-line no-control-regex
  text = text.replace(/[\u0000-\u001f\u007f]/g, '').trim();
  return text === '' ? null : text;
}

/** Growable note columns. */
class NoteTableBuilder {
  count = 0;
  startTick: Float64Array = new Float64Array(256);
  endTick: Float64Array = new Float64Array(256);
  pitch: Uint8Array = new Uint8Array(256);
  velocity: Uint8Array = new Uint8Array(256);
  channel: Uint8Array = new Uint8Array(256);
  track: Uint32Array = new Uint32Array(256);
  /** Next note in the same (channel, pitch) queue of open notes; -1 at the tail. */
  next: Int32Array = new Int32Array(256);

  add(tick: number, channel: number, pitch: number, velocity: number, track: number): number {
    if (this.count === this.startTick.length) this.grow();
    const i = this.count++;
    this.startTick[i] = tick;
    this.endTick[i] = tick;
    this.pitch[i] = pitch;
    this.velocity[i] = velocity;
    this.channel[i] = channel;
    this.track[i] = track;
    this.next[i] = -1;
    return i;
  }

  private grow(): void {
    const size = this.startTick.length * 2;
    const growF = (a: Float64Array): Float64Array => {
      const b = new Float64Array(size);
      b.set(a);
      return b;
    };
    const growU8 = (a: Uint8Array): Uint8Array => {
      const b = new Uint8Array(size);
      b.set(a);
      return b;
    };
    this.startTick = growF(this.startTick);
    this.endTick = growF(this.endTick);
    this.pitch = growU8(this.pitch);
    this.velocity = growU8(this.velocity);
    this.channel = growU8(this.channel);
    const track = new Uint32Array(size);
    track.set(this.track);
    this.track = track;
    const next = new Int32Array(size);
    next.set(this.next);
    this.next = next;
  }

  /** The notes as views of the builder's buffers, which the next file reuses. */
  view(): NoteTable {
    const n = this.count;
    return {
      count: n,
      startTick: this.startTick.subarray(0, n),
      endTick: this.endTick.subarray(0, n),
      pitch: this.pitch.subarray(0, n),
      velocity: this.velocity.subarray(0, n),
      channel: this.channel.subarray(0, n),
      track: this.track.subarray(0, n),
    };
  }

  copy(): NoteTable {
    const n = this.count;
    return {
      count: n,
      startTick: this.startTick.slice(0, n),
      endTick: this.endTick.slice(0, n),
      pitch: this.pitch.slice(0, n),
      velocity: this.velocity.slice(0, n),
      channel: this.channel.slice(0, n),
      track: this.track.slice(0, n),
    };
  }
}

const KEYS = 16 * 128;

/**
 * Buffers reused from file to file (a worker analyses thousands of files; growing fresh arrays for each one cost a
 * fifth of the time). readSmf is synchronous, so one set per thread is enough.
 */
const scratch = {
  notes: new NoteTableBuilder(),
  /** Per (channel * 128 + pitch): first and last note of the FIFO queue of sounding notes, -1 when empty. */
  openHead: new Int32Array(KEYS),
  openTail: new Int32Array(KEYS),
  /** Keys that had a sounding note in the current track, so only those are reset after it. */
  touched: new Int32Array(KEYS),
  touchedMark: new Uint8Array(KEYS),
};

class Reader {
  private readonly notes = scratch.notes;
  private readonly tempos: TempoEvent[] = [];
  private readonly timeSignatures: TimeSignatureEvent[] = [];
  private readonly keySignatures: KeySignatureEvent[] = [];
  private readonly programChanges: ProgramChangeEvent[] = [];
  private controlChangeCount = 0;
  private pitchBendCount = 0;
  private eventCount = 0;
  private largestDelta = { ticks: 0, track: 0 };

  constructor(
    private readonly bytes: Uint8Array,
    private readonly limits: ReaderLimits,
    private readonly warnings: string[],
  ) {
    // A previous file may have been refused half-way through a track, leaving queues behind.
    this.notes.count = 0;
    scratch.openHead.fill(-1);
    scratch.openTail.fill(-1);
    scratch.touchedMark.fill(0);
  }

  read(): SmfContent {
    const { bytes, warnings } = this;
    if (!startsWith(bytes, 0, 'MThd')) {
      throw new MidiFormatError(
        FailureKind.notMidi,
        `the file starts with '${ascii(bytes, 0, 8)}' instead of 'MThd' (or a RIFF RMID wrapper)`,
      );
    }
    if (bytes.length < 14) {
      throw new MidiFormatError(FailureKind.truncated, `the file ends inside the header chunk (${bytes.length} bytes)`);
    }
    const headerLength = this.u32(4);
    if (headerLength < 6)
      throw new MidiFormatError(FailureKind.invalidHeader, `header chunk length ${headerLength}, below 6`);
    if (8 + headerLength > bytes.length) {
      throw new MidiFormatError(
        FailureKind.truncated,
        `the header chunk declares ${headerLength} bytes but only ${bytes.length - 8} remain`,
      );
    }
    const format = this.u16(8);
    const declaredTracks = this.u16(10);
    const divisionWord = this.u16(12);
    if (format > 2) throw new MidiFormatError(FailureKind.invalidHeader, `format ${format} (only 0, 1 and 2 exist)`);
    const division = this.division(divisionWord);
    if (format === 0 && declaredTracks !== 1)
      warnings.push(`format 0 file declares ${declaredTracks} tracks instead of 1`);

    const tracks: TrackSummary[] = [];
    let p = 8 + headerLength;
    let extraChunks = 0;
    while (p + 8 <= bytes.length) {
      const length = this.u32(p + 4);
      const id = ascii(bytes, p, 4);
      const chunkEnd = p + 8 + length;
      if (chunkEnd > bytes.length) {
        throw new MidiFormatError(
          FailureKind.truncated,
          `chunk '${id}' at byte ${p} declares ${length} bytes but only ${bytes.length - p - 8} remain`,
        );
      }
      if (id !== 'MTrk') {
        warnings.push(`unknown chunk '${id}' at byte ${p} skipped`);
      } else if (tracks.length < declaredTracks) {
        tracks.push(this.readTrack(tracks.length, p + 8, chunkEnd));
      } else {
        extraChunks++;
      }
      p = chunkEnd;
    }
    if (p < bytes.length) warnings.push(`${bytes.length - p} trailing bytes after the last chunk ignored`);
    if (extraChunks > 0) {
      warnings.push(`${extraChunks} track chunks beyond the ${declaredTracks} the header declares ignored`);
    }
    if (tracks.length < declaredTracks) {
      warnings.push(`the header declares ${declaredTracks} tracks but the file holds ${tracks.length}`);
    }
    return {
      format: format as 0 | 1 | 2,
      division,
      tracks,
      notes: this.limits.borrowNotes ? this.notes.view() : this.notes.copy(),
      tempos: this.tempos,
      timeSignatures: this.timeSignatures,
      keySignatures: this.keySignatures,
      programChanges: this.programChanges,
      controlChangeCount: this.controlChangeCount,
      pitchBendCount: this.pitchBendCount,
      largestDelta: this.largestDelta,
      smf: bytes,
      warnings,
    };
  }

  private division(word: number): Division {
    if (word & 0x8000) {
      const framesPerSecond = 256 - (word >> 8);
      const ticksPerFrame = word & 0xff;
      if (!SMPTE_RATES.has(framesPerSecond)) {
        throw new MidiFormatError(
          FailureKind.invalidHeader,
          `SMPTE division with ${framesPerSecond} frames per second (only 24, 25, 29 and 30 exist)`,
        );
      }
      if (ticksPerFrame === 0)
        throw new MidiFormatError(FailureKind.zeroDivision, 'SMPTE division with 0 ticks per frame');
      return { kind: 'smpte', framesPerSecond: framesPerSecond as 24 | 25 | 29 | 30, ticksPerFrame };
    }
    if (word === 0)
      throw new MidiFormatError(FailureKind.zeroDivision, 'the header gives 0 ticks per quarter note (PPQ)');
    return { kind: 'ppq', ticksPerQuarter: word };
  }

  private u16(at: number): number {
    return (this.bytes[at]! << 8) | this.bytes[at + 1]!;
  }

  private u32(at: number): number {
    const b = this.bytes;
    return b[at]! * 0x1000000 + ((b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!);
  }

  /** Reads one MTrk chunk body [start, end). The hot loop: keep it free of allocation. */
  private readTrack(trackIndex: number, start: number, end: number): TrackSummary {
    const { bytes, notes } = this;
    const { openHead, openTail, touched, touchedMark } = scratch;
    let touchedCount = 0;
    const noteFrom = notes.count;
    const maxEvents = this.limits.maxEvents;
    let eventCount = this.eventCount;
    let tick = 0;
    let running = 0;
    let name: string | null = null;
    let firstProgram: number | null = null;
    let controlChanges = 0;
    let pitchBends = 0;
    let strayNoteOffs = 0;
    let endOfTrack = false;
    let p = start;
    const where = (at: number): string => `track ${trackIndex}, byte ${at}`;

    while (p < end) {
      const eventStart = p;
      // Delta time: a variable-length quantity of at most 4 bytes.
      let b = bytes[p++]!;
      let delta = b & 0x7f;
      let vlqBytes = 1;
      while (b & 0x80) {
        if (p >= end)
          throw new MidiFormatError(FailureKind.truncated, `${where(eventStart)}: the track ends inside a delta time`);
        if (vlqBytes === 4) {
          throw new MidiFormatError(FailureKind.invalidEvent, `${where(eventStart)}: delta time longer than 4 bytes`);
        }
        b = bytes[p++]!;
        delta = delta * 128 + (b & 0x7f);
        vlqBytes++;
      }
      if (delta > this.largestDelta.ticks) this.largestDelta = { ticks: delta, track: trackIndex };
      tick += delta;
      if (++eventCount > maxEvents) {
        throw new MidiFormatError(
          FailureKind.tooManyEvents,
          `more than ${maxEvents} events (limit reached in ${where(eventStart)})`,
        );
      }
      if (p >= end)
        throw new MidiFormatError(FailureKind.truncated, `${where(eventStart)}: the track ends after a delta time`);

      let status = bytes[p]!;
      if (status < 0x80) {
        // Running status: the previous channel status applies and this byte is the first data byte. Like midi-file
        // and most players, meta and sysex events do not cancel it (many real files rely on that).
        if (running === 0) {
          throw new MidiFormatError(
            FailureKind.runningStatus,
            `${where(p)}: data byte ${hex(status)} where a status byte is needed, with no previous status to reuse`,
          );
        }
        status = running;
      } else {
        p++;
        if (status < 0xf0) running = status;
      }

      const kind = status & 0xf0;
      if (kind !== 0xf0) {
        const channel = status & 0x0f;
        const dataBytes = kind === 0xc0 || kind === 0xd0 ? 1 : 2;
        if (p + dataBytes > end) {
          throw new MidiFormatError(
            FailureKind.truncated,
            `${where(eventStart)}: the track ends inside a channel message`,
          );
        }
        const d1 = bytes[p]!;
        const d2 = dataBytes === 2 ? bytes[p + 1]! : 0;
        if ((d1 | d2) & 0x80) {
          throw new MidiFormatError(
            FailureKind.invalidEvent,
            `${where(p)}: data byte ${hex(d1 & 0x80 ? d1 : d2)} (at or above 0x80) inside a channel message ${hex(status)}`,
          );
        }
        p += dataBytes;
        if (kind === 0x90 && d2 !== 0) {
          const key = (channel << 7) | d1;
          const note = notes.add(tick, channel, d1, d2, trackIndex);
          const tail = openTail[key]!;
          if (tail !== -1) {
            notes.next[tail] = note;
          } else {
            openHead[key] = note;
            if (touchedMark[key] === 0) {
              touchedMark[key] = 1;
              touched[touchedCount++] = key;
            }
          }
          openTail[key] = note;
        } else if (kind === 0x80 || kind === 0x90) {
          const key = (channel << 7) | d1;
          const head = openHead[key]!;
          if (head === -1) {
            strayNoteOffs++;
          } else {
            notes.endTick[head] = tick;
            const next = notes.next[head]!;
            openHead[key] = next;
            if (next === -1) openTail[key] = -1;
          }
        } else if (kind === 0xb0) {
          controlChanges++;
        } else if (kind === 0xe0) {
          pitchBends++;
        } else if (kind === 0xc0) {
          if (firstProgram === null) firstProgram = d1;
          this.programChanges.push({ tick, channel, program: d1, track: trackIndex });
        }
        continue;
      }

      if (status === 0xff) {
        if (p >= end)
          throw new MidiFormatError(FailureKind.truncated, `${where(eventStart)}: the track ends inside a meta event`);
        const type = bytes[p++]!;
        if (type >= 0x80) {
          throw new MidiFormatError(
            FailureKind.invalidEvent,
            `${where(eventStart)}: meta event type ${hex(type)} (at or above 0x80)`,
          );
        }
        const length = this.vlq(p, end, eventStart, trackIndex);
        p = this.vlqEnd;
        if (p + length > end) {
          throw new MidiFormatError(
            FailureKind.truncated,
            `${where(eventStart)}: meta event ${hex(type)} declares ${length} bytes but only ${end - p} remain in the track`,
          );
        }
        const data = p;
        p += length;
        if (type === 0x2f) {
          endOfTrack = true;
          break;
        }
        this.meta(type, data, length, tick, trackIndex);
        if (type === 0x03 && name === null) name = decodeText(bytes.subarray(data, data + length));
        continue;
      }

      if (status === 0xf0 || status === 0xf7) {
        const length = this.vlq(p, end, eventStart, trackIndex);
        p = this.vlqEnd;
        if (p + length > end) {
          throw new MidiFormatError(
            FailureKind.truncated,
            `${where(eventStart)}: sysex event declares ${length} bytes but only ${end - p} remain in the track`,
          );
        }
        p += length;
        continue;
      }

      throw new MidiFormatError(
        FailureKind.invalidEvent,
        `${where(eventStart + vlqBytes)}: status byte ${hex(status)} is not allowed in a MIDI file`,
      );
    }

    this.eventCount = eventCount;
    if (!endOfTrack) this.warnings.push(`track ${trackIndex} has no end-of-track event`);
    else if (p < end) this.warnings.push(`track ${trackIndex}: ${end - p} bytes after the end-of-track event ignored`);
    if (strayNoteOffs > 0) {
      this.warnings.push(`track ${trackIndex}: ${strayNoteOffs} note-offs without a sounding note ignored`);
    }

    // Notes never released: close them at the end of the track.
    let unreleased = 0;
    for (let k = 0; k < touchedCount; k++) {
      const key = touched[k]!;
      for (let note = openHead[key]!; note !== -1; note = notes.next[note]!) {
        notes.endTick[note] = tick;
        unreleased++;
      }
      openHead[key] = -1;
      openTail[key] = -1;
      touchedMark[key] = 0;
    }
    if (unreleased > 0) {
      this.warnings.push(
        `track ${trackIndex}: ${unreleased} notes never released, closed at the end of the track (tick ${tick})`,
      );
    }
    this.controlChangeCount += controlChanges;
    this.pitchBendCount += pitchBends;
    return {
      index: trackIndex,
      bodyStart: start,
      bodyEnd: end,
      name,
      endTick: tick,
      noteFrom,
      noteTo: notes.count,
      firstProgram,
      controlChangeCount: controlChanges,
      pitchBendCount: pitchBends,
    };
  }

  /** Position after the last variable-length quantity read by vlq(). */
  private vlqEnd = 0;

  private vlq(at: number, end: number, eventStart: number, track: number): number {
    let value = 0;
    for (let i = 0; i < 4; i++) {
      if (at >= end) {
        throw new MidiFormatError(
          FailureKind.truncated,
          `track ${track}, byte ${eventStart}: the track ends inside a length`,
        );
      }
      const b = this.bytes[at++]!;
      value = value * 128 + (b & 0x7f);
      if (!(b & 0x80)) {
        this.vlqEnd = at;
        return value;
      }
    }
    throw new MidiFormatError(
      FailureKind.invalidEvent,
      `track ${track}, byte ${eventStart}: length longer than 4 bytes`,
    );
  }

  /** Tempo, meter and key; malformed ones are skipped with a warning (players ignore them too). */
  private meta(type: number, at: number, length: number, tick: number, track: number): void {
    const b = this.bytes;
    if (type === 0x51) {
      const us = length === 3 ? (b[at]! << 16) | (b[at + 1]! << 8) | b[at + 2]! : 0;
      if (us === 0)
        this.warnings.push(`track ${track}, tick ${tick}: tempo event of length ${length} with value ${us} ignored`);
      else this.tempos.push({ tick, microsecondsPerQuarter: us });
    } else if (type === 0x58) {
      const numerator = length >= 2 ? b[at]! : 0;
      const power = length >= 2 ? b[at + 1]! : 0;
      if ((length !== 4 && length !== 2) || numerator === 0 || power > 7) {
        this.warnings.push(`track ${track}, tick ${tick}: malformed time signature ignored`);
      } else {
        this.timeSignatures.push({ tick, numerator, denominator: 2 ** power });
      }
    } else if (type === 0x59) {
      const sf = length === 2 ? (b[at]! << 24) >> 24 : 0;
      const mi = length === 2 ? b[at + 1]! : 0;
      if (length !== 2 || sf < -7 || sf > 7 || mi > 1) {
        this.warnings.push(`track ${track}, tick ${tick}: malformed key signature ignored`);
      } else {
        this.keySignatures.push({ tick, sharpsFlats: sf, minor: mi === 1 });
      }
    }
  }
}
