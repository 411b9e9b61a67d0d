import { displayPath, rawPath } from './paths.js';

/**
 * A scan's listing as COPY's binary format, for `COPY pg_temp.scan_in FROM STDIN (FORMAT binary)`: raw_path bytea,
 * path text, size_bytes bigint, modified_at timestamptz, problem boolean.
 * https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.4
 *
 * Binary rather than text: a name is sent as its bytes, so no name (tabs, newlines, backslashes, `\.`, bytes that are
 * not UTF-8) can be misread as a delimiter or an escape, and nothing is hex-encoded on the way (the server decoded
 * `\x…` for every path), and the time arrives as the timestamptz it is stored as.
 */

/** Minimal shape of a listed entry (ScannedFile in store.ts). */
export interface CopyRow {
  path: Buffer | string;
  size: number;
  modifiedUs?: number | null;
  problem?: boolean;
}

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const FIELDS = 5;
const TRAILER = Buffer.from([0xff, 0xff]);
/** Microseconds from the Unix epoch to Postgres' (2000-01-01 UTC), where binary timestamps count from. */
const PG_EPOCH_US = 946_684_800_000_000;
/** Bytes per chunk written to the COPY stream: a write per row would cost more than the COPY itself. */
const CHUNK = 64 * 1024;
/** A row's fixed part: field count, five lengths, int8, int8, bool. */
const FIXED = 2 + 5 * 4 + 8 + 8 + 1;

/** Fills fixed-size chunks with rows; `row` returns a full chunk when the next row did not fit. */
class Encoder {
  private buf = Buffer.allocUnsafe(CHUNK);
  private at = 0;

  constructor() {
    this.put(SIGNATURE);
    this.buf.writeInt32BE(0, this.at); // flags: no OIDs
    this.buf.writeInt32BE(0, this.at + 4); // no header extension
    this.at += 8;
  }

  row(f: CopyRow): Buffer | null {
    const raw = rawPath(f.path);
    const display = displayPath(raw);
    // UTF-16 to UTF-8 is at most three bytes per code unit.
    const most = FIXED + raw.length + display.length * 3;
    let full: Buffer | null = null;
    if (this.at + most > this.buf.length) {
      full = this.take();
      this.buf = Buffer.allocUnsafe(Math.max(CHUNK, most));
    }
    const b = this.buf;
    let at = this.at;
    b.writeInt16BE(FIELDS, at);
    b.writeInt32BE(raw.length, at + 2);
    at += 6 + raw.copy(b, at + 6);
    const n = b.write(display, at + 4, 'utf8');
    b.writeInt32BE(n, at);
    at += 4 + n;
    b.writeInt32BE(8, at);
    at = writeInt64(b, at + 4, f.size);
    if (f.modifiedUs === undefined || f.modifiedUs === null) {
      b.writeInt32BE(-1, at);
      at += 4;
    } else {
      b.writeInt32BE(8, at);
      at = writeInt64(b, at + 4, f.modifiedUs - PG_EPOCH_US);
    }
    b.writeInt32BE(1, at);
    b[at + 4] = f.problem ? 1 : 0;
    this.at = at + 5;
    return full;
  }

  /** What is left, with the trailer. */
  end(): Buffer {
    this.put(TRAILER);
    return this.take();
  }

  private put(bytes: Buffer): void {
    if (this.at + bytes.length > this.buf.length) throw new Error('internal error: COPY chunk overflow');
    this.at += bytes.copy(this.buf, this.at);
  }

  private take(): Buffer {
    const out = this.buf.subarray(0, this.at);
    this.buf = Buffer.allocUnsafe(CHUNK);
    this.at = 0;
    return out;
  }
}

/** A whole number (|v| < 2^53) as a big-endian int64: the high and low 32 bits, without a BigInt per row. */
function writeInt64(b: Buffer, at: number, v: number): number {
  b.writeInt32BE(Math.floor(v / 0x1_0000_0000), at);
  b.writeUInt32BE(v >>> 0, at + 4);
  return at + 8;
}

/** The COPY data for a listing, in chunks. Synchronous for a synchronous listing (the scan's walk): no await per row. */
export function* copyChunks(files: Iterable<CopyRow>): Generator<Buffer> {
  const enc = new Encoder();
  for (const f of files) {
    const full = enc.row(f);
    if (full) yield full;
  }
  yield enc.end();
}

export async function* copyChunksAsync(files: AsyncIterable<CopyRow>): AsyncGenerator<Buffer> {
  const enc = new Encoder();
  for await (const f of files) {
    const full = enc.row(f);
    if (full) yield full;
  }
  yield enc.end();
}
