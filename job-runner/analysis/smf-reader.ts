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
 * sounding note of that pitch. Where files are not well formed, the reader does what a listener would hear, or what
 * the writer meant, instead:
 *  - a note-off with nothing sounding is ignored, unless a note-on of its pitch follows at the same tick: that pair
 *    is one zero-length note (music21 writes chord symbols so, abc2midi some notes); a repeated note (off then on
 *    while one sounds) stays two notes;
 *  - notes are paired by channel regardless of program changes (tonejs splits tracks by (channel, program) before
 *    pairing, so a program change while a note sounds loses that note);
 *  - a key with notes never released is paired again last in, first out, so that the dangling note is the one left
 *    over (first in, first out would lengthen every later note of the pitch onto the next one's note-off); a note
 *    left over ends at the next note-on of its pitch and channel, else at the end of its track, and is reported
 *    (tonejs silently drops it).
 */
import type { Division } from './types.js';
import { FailureKind, MidiFormatError } from './failure.js';
import { Warnings } from './warnings.js';

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
  warnings: Warnings;
}

const SMPTE_RATES = new Set([24, 25, 29, 30]);

/** Reads a file's bytes; throws MidiFormatError for input it refuses. */
export function readSmf(
  bytes: Uint8Array,
  limits: ReaderLimits = DEFAULT_READER_LIMITS,
  /** Filled as reading goes, so the caller keeps the warnings of a file that is refused half-way. */
  warnings: Warnings = new Warnings(),
): SmfContent {
  if (bytes.length === 0) throw new MidiFormatError(FailureKind.empty, 'the file has zero bytes');
  const smf = unwrapRiff(bytes, warnings);
  return new Reader(smf, limits, warnings).read();
}

/**
 * RIFF MIDI (.rmi): a RIFF container of type 'RMID' whose 'data' chunk is a plain SMF. Returns the SMF bytes
 * (the input itself when it is not RIFF). Exported for the track splitter, which needs the same bytes.
 */
export function unwrapRiff(bytes: Uint8Array, warnings: Warnings): Uint8Array {
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

/** Track names are cut to this many characters: a name is a label, and a crafted file can hold one of megabytes. */
export const MAX_NAME_LENGTH = 256;

/**
 * Track names: UTF-8 when valid, else Latin-1 (what most old files mean), each byte one code point, decoded without
 * spreading the bytes into arguments (a long name overflowed the call stack); control characters (NUL included,
 * which Postgres text refuses) removed; cut to MAX_NAME_LENGTH characters, the last an ellipsis, and `cut` says so.
 */
export function decodeText(bytes: Uint8Array): { text: string | null; cut: boolean } {
  // Only the first bytes can reach the name (4 per character covers any UTF-8), cut where a character starts so
  // that a long valid UTF-8 name stays valid.
  let end = Math.min(bytes.length, MAX_NAME_LENGTH * 4 + 4);
  if (end < bytes.length) while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  const head = bytes.subarray(0, end);
  let text: string;
  try {
    text = utf8.decode(head);
  } catch {
    text = Buffer.from(head.buffer, head.byteOffset, head.byteLength).toString('latin1');
  }
  // eslint-disable-next-line no-control-regex
  text = text.replace(/[\u0000-\u001f\u007f]/g, '').trim();
  const chars = [...text];
  const cut = end < bytes.length || chars.length > MAX_NAME_LENGTH;
  if (cut) text = chars.slice(0, MAX_NAME_LENGTH - 1).join('') + '…';
  return { text: text === '' ? null : text, cut };
}

type Column = Float64Array | Uint8Array | Uint16Array | Uint32Array | Int32Array;

/** `a` copied into a new array of its own type with `size` elements, the rest zero: how the scratch columns grow. */
function grown<A extends Column>(a: A, size: number): A {
  const b = new (a.constructor as new (length: number) => A)(size);
  (b as Column).set(a);
  return b;
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
    this.startTick = grown(this.startTick, size);
    this.endTick = grown(this.endTick, size);
    this.pitch = grown(this.pitch, size);
    this.velocity = grown(this.velocity, size);
    this.channel = grown(this.channel, size);
    this.track = grown(this.track, size);
    this.next = grown(this.next, size);
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
  /** Keys that had a note-on or note-off in the current track, so only those are reset after it. */
  touched: new Int32Array(KEYS),
  touchedMark: new Uint8Array(KEYS),
  /** Per key: the tick of its last note-off that found nothing sounding, valid while `strayMark` is the track's serial. */
  strayTick: new Float64Array(KEYS),
  strayMark: new Uint32Array(KEYS),
  /** Per key, in the current track: its stray note-offs and its zero-length notes, so that a re-pairing can recount. */
  strayCount: new Int32Array(KEYS),
  zeroCount: new Int32Array(KEYS),
  /** Per key, while re-pairing: the key has notes left unreleased (1), and its last note-on so far. */
  unbalanced: new Uint8Array(KEYS),
  lastOn: new Int32Array(KEYS),
  /** Every note-off of the current track in file order: tick, key, and how many note-ons (table rows) came before. */
  offs: { count: 0, tick: new Float64Array(256), key: new Uint16Array(256), before: new Uint32Array(256) },
  /** While re-pairing, per note row: the row of the next note-on of its key in its track, -1 for none. */
  nextOn: new Int32Array(256),
  /** A serial per track read, so that per-key marks of earlier tracks (and files) never match. */
  serial: 0,
};

function logNoteOff(tick: number, key: number, before: number): void {
  const offs = scratch.offs;
  if (offs.count === offs.tick.length) {
    offs.tick = grown(offs.tick, offs.count * 2);
    offs.key = grown(offs.key, offs.count * 2);
    offs.before = grown(offs.before, offs.count * 2);
  }
  offs.tick[offs.count] = tick;
  offs.key[offs.count] = key;
  offs.before[offs.count] = before;
  offs.count++;
}

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
    private readonly warnings: Warnings,
  ) {
    // A previous file may have been refused half-way through a track, leaving queues behind.
    this.notes.count = 0;
    scratch.openHead.fill(-1);
    scratch.openTail.fill(-1);
    scratch.touchedMark.fill(0);
    scratch.strayCount.fill(0);
    scratch.zeroCount.fill(0);
    scratch.unbalanced.fill(0);
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
    const { openHead, openTail, touched, touchedMark, strayTick, strayMark, strayCount, zeroCount } = scratch;
    const serial = (scratch.serial = (scratch.serial + 1) >>> 0 || 1);
    scratch.offs.count = 0;
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
    let zeroLength = 0;
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
          if (strayMark[key] === serial && strayTick[key] === tick) {
            // A note-off found nothing sounding, and this note-on of its pitch follows at the same tick: how some
            // writers (music21's chord symbols) put a zero-length note. It ends where it starts (notes.add).
            strayMark[key] = 0;
            strayNoteOffs--;
            strayCount[key] = strayCount[key]! - 1;
            zeroLength++;
            zeroCount[key] = zeroCount[key]! + 1;
          } else {
            const tail = openTail[key]!;
            if (tail !== -1) notes.next[tail] = note;
            else openHead[key] = note;
            openTail[key] = note;
          }
          if (touchedMark[key] === 0) {
            touchedMark[key] = 1;
            touched[touchedCount++] = key;
          }
        } else if (kind === 0x80 || kind === 0x90) {
          const key = (channel << 7) | d1;
          const head = openHead[key]!;
          logNoteOff(tick, key, notes.count);
          if (touchedMark[key] === 0) {
            touchedMark[key] = 1;
            touched[touchedCount++] = key;
          }
          if (head === -1) {
            strayNoteOffs++;
            strayCount[key] = strayCount[key]! + 1;
            strayMark[key] = serial;
            strayTick[key] = tick;
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
        if (type === 0x03 && name === null) {
          const decoded = decodeText(bytes.subarray(data, data + length));
          name = decoded.text;
          if (decoded.cut)
            this.warnings.push(`track ${trackIndex}: name of ${length} bytes cut to ${MAX_NAME_LENGTH} characters`);
        }
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

    // Keys with notes never released are paired again (repair), so that one dangling note does not lengthen every
    // later note of its pitch as first-in first-out pairing does; every other key keeps the pairing above.
    let unreleased = 0;
    const unbalancedKeys: number[] = [];
    for (let k = 0; k < touchedCount; k++) {
      const key = touched[k]!;
      if (openHead[key] !== -1) {
        scratch.unbalanced[key] = 1;
        unbalancedKeys.push(key);
        strayNoteOffs -= strayCount[key]!;
        zeroLength -= zeroCount[key]!;
      }
    }
    if (unbalancedKeys.length > 0) {
      const counts = this.repair(noteFrom, tick, unbalancedKeys);
      unreleased = counts.unreleased;
      strayNoteOffs += counts.strays;
      zeroLength += counts.zeroLength;
    }
    for (let k = 0; k < touchedCount; k++) {
      const key = touched[k]!;
      openHead[key] = -1;
      openTail[key] = -1;
      touchedMark[key] = 0;
      strayCount[key] = 0;
      zeroCount[key] = 0;
      scratch.unbalanced[key] = 0;
    }
    if (strayNoteOffs > 0) {
      this.warnings.push(`track ${trackIndex}: ${strayNoteOffs} note-offs without a sounding note ignored`);
    }
    if (zeroLength > 0) {
      this.warnings.push(
        `track ${trackIndex}: ${zeroLength} note-offs with nothing sounding, followed at their tick by a note-on of their pitch: read as zero-length notes`,
      );
    }
    if (unreleased > 0) {
      this.warnings.push(
        `track ${trackIndex}: ${unreleased} notes never released, each ended at the next note-on of its pitch and channel or else at the end of the track (tick ${tick})`,
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

  /**
   * Pairs the notes of the keys marked unbalanced (some note of theirs was never released) again, walking the
   * track's note-ons (table rows from `noteFrom`) and note-offs (scratch.offs) in file order: a note-off closes the
   * latest sounding note of its key (last in, first out, so that a dangling note is the one left over rather than
   * every later note being shifted onto the next note-off), the zero-length rule applies as in the first pass, and
   * each note left over ends at the next note-on of its key, or at `endTick`. `keys` are the keys marked unbalanced.
   * Returns the counts for those keys.
   */
  private repair(
    noteFrom: number,
    endTick: number,
    keys: readonly number[],
  ): { unreleased: number; strays: number; zeroLength: number } {
    const { notes } = this;
    const { unbalanced, lastOn, strayTick, strayMark, offs, openHead: top } = scratch;
    const serial = (scratch.serial = (scratch.serial + 1) >>> 0 || 1);
    if (scratch.nextOn.length < notes.count) scratch.nextOn = new Int32Array(notes.startTick.length);
    const nextOn = scratch.nextOn;
    const keyOf = (row: number): number => (notes.channel[row]! << 7) | notes.pitch[row]!;
    for (const key of keys) {
      top[key] = -1;
      lastOn[key] = -1;
    }
    let strays = 0;
    let zeroLength = 0;
    let j = 0;
    for (let row = noteFrom; row <= notes.count; row++) {
      // The note-offs that came before this note-on (all that remain, after the last one).
      for (; j < offs.count && (row === notes.count || offs.before[j]! <= row); j++) {
        const key = offs.key[j]!;
        if (unbalanced[key] !== 1) continue;
        const t = offs.tick[j]!;
        const sounding = top[key]!;
        if (sounding === -1) {
          strays++;
          strayMark[key] = serial;
          strayTick[key] = t;
        } else {
          notes.endTick[sounding] = t;
          top[key] = notes.next[sounding]!;
        }
      }
      if (row === notes.count) break;
      const key = keyOf(row);
      if (unbalanced[key] !== 1) continue;
      const t = notes.startTick[row]!;
      nextOn[row] = -1;
      if (lastOn[key] !== -1) nextOn[lastOn[key]!] = row;
      lastOn[key] = row;
      notes.endTick[row] = t;
      if (strayMark[key] === serial && strayTick[key] === t) {
        strayMark[key] = 0;
        strays--;
        zeroLength++;
      } else {
        notes.next[row] = top[key]!;
        top[key] = row;
      }
    }
    let unreleased = 0;
    for (const key of keys) {
      for (let row = top[key]!; row !== -1; row = notes.next[row]!) {
        const following = nextOn[row]!;
        notes.endTick[row] = following === -1 ? endTick : notes.startTick[following]!;
        unreleased++;
      }
    }
    return { unreleased, strays, zeroLength };
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
