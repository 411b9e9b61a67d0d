/**
 * Files crafted to exhaust a runner rather than to be music: each is small on disk and quick to make, and asks the
 * reader for one warning per event or per chunk, or for a name of megabytes. The analysis must answer each with a
 * bounded outcome (a capped warning list, a cut name), so that a runner's memory stays within its pod's limit.
 */
import { buildSmf, chunk, concatBytes, encodeTrack, note, vlq } from './smf-builder.js';

const PPQ = 480;
const DIVISION = { kind: 'ppq', ticksPerQuarter: PPQ } as const;
/** Two quarter notes, C4 then E4, as the music each hostile file also holds. */
const TWO_NOTES = encodeTrack([...note(0, PPQ, 0, 60, 90), ...note(PPQ, PPQ, 0, 64, 90)]);

/** `count` tempo meta events of length 2 (a tempo takes 3 bytes: each is ignored with a warning), then two notes. */
export function manyMalformedTempos(count: number): Uint8Array {
  const event = [0x00, 0xff, 0x51, 0x02, 0x07, 0xa1];
  const tempos = new Uint8Array(count * event.length);
  for (let i = 0; i < count; i++) tempos.set(event, i * event.length);
  return buildSmf({ format: 0, division: DIVISION, tracks: [concatBytes([tempos, TWO_NOTES])] });
}

/** A good one-track file followed by `count` empty chunks of an unknown type (each skipped with a warning). */
export function manyUnknownChunks(count: number): Uint8Array {
  const good = buildSmf({ format: 0, division: DIVISION, tracks: [TWO_NOTES] });
  const unknown = chunk('XYZZ', new Uint8Array(0));
  const out = new Uint8Array(good.length + count * unknown.length);
  out.set(good, 0);
  for (let i = 0; i < count; i++) out.set(unknown, good.length + i * unknown.length);
  return out;
}

/** A one-track file whose track name is `length` bytes of 0xE9 (é in Latin-1, invalid as UTF-8), then two notes. */
export function longLatin1Name(length: number): Uint8Array {
  return withTrackName(new Uint8Array(length).fill(0xe9));
}

/** A one-track file named by these bytes, as they are, then two notes. */
export function withTrackName(name: Uint8Array): Uint8Array {
  const meta = concatBytes([new Uint8Array([0x00, 0xff, 0x03, ...vlq(name.length)]), name]);
  return buildSmf({ format: 0, division: DIVISION, tracks: [concatBytes([meta, TWO_NOTES])] });
}

/**
 * One track of `notes` sixteenth-length notes cycling over an octave, by running status, note-offs as note-ons of
 * velocity 0: 6 bytes a note, so 2.4 million notes (4.8 million events, near the reader's bound) fit in 14 MB.
 */
export function manyNotes(notes: number): Uint8Array {
  const track = new Uint8Array(notes * 6 + 8);
  let o = 0;
  track.set([0x00, 0x90, 60, 64], o); // the first note-on with its status byte, the rest by running status
  o += 4;
  for (let i = 1; i < notes * 2; i++) {
    track.set([i % 2, 60 + ((i % 24) >> 1), i % 2 ? 0 : 64], o);
    o += 3;
  }
  track.set([0x00, 0xff, 0x2f, 0x00], o);
  o += 4;
  return concatBytes([chunk('MThd', new Uint8Array([0, 0, 0, 1, 0x01, 0xe0])), chunk('MTrk', track.subarray(0, o))]);
}
