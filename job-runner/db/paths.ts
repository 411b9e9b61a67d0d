/**
 * File paths as stored: the raw bytes the file system gave (names need not be UTF-8 on Linux) plus a display form
 * for people, where valid UTF-8 stays as it is and every other byte is written `\xNN`.
 */

/** The bytes of a path given either as raw bytes (readdir with encoding 'buffer') or as a JS string (UTF-8). */
export function rawPath(path: Buffer | string): Buffer {
  return typeof path === 'string' ? Buffer.from(path, 'utf8') : path;
}

/**
 * Decodes UTF-8 strictly (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF) and escapes each byte
 * that is not part of a valid sequence. Control characters are escaped the same way, so a name with a newline or an
 * escape sequence in it cannot garble a log line or a terminal.
 */
export function displayPath(raw: Buffer): string {
  // Most names are printable ASCII, shown as they are: one native decode instead of a string built byte by byte
  // (a scan does this for every file of the corpus).
  if (printableAscii(raw)) return raw.toString('latin1');
  let out = '';
  let i = 0;
  while (i < raw.length) {
    const len = validSequenceLength(raw, i);
    if (len === 0) {
      out += escapeByte(raw[i]!);
      i += 1;
    } else if (len === 1) {
      const b = raw[i]!;
      out += b < 0x20 || b === 0x7f ? escapeByte(b) : String.fromCharCode(b);
      i += 1;
    } else {
      out += raw.toString('utf8', i, i + len);
      i += len;
    }
  }
  return out;
}

function printableAscii(raw: Buffer): boolean {
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i]!;
    if (b < 0x20 || b >= 0x7f) return false;
  }
  return true;
}

function escapeByte(b: number): string {
  return `\\x${b.toString(16).padStart(2, '0')}`;
}

/** Length of the valid UTF-8 sequence starting at `i`, or 0 when the byte there does not start one. */
function validSequenceLength(buf: Buffer, i: number): number {
  const b0 = buf[i]!;
  if (b0 < 0x80) return 1;
  const cont = (k: number, lo = 0x80, hi = 0xbf) => {
    const b = buf[i + k];
    return b !== undefined && b >= lo && b <= hi;
  };
  if (b0 >= 0xc2 && b0 <= 0xdf) return cont(1) ? 2 : 0;
  if (b0 === 0xe0) return cont(1, 0xa0) && cont(2) ? 3 : 0;
  if ((b0 >= 0xe1 && b0 <= 0xec) || b0 === 0xee || b0 === 0xef) return cont(1) && cont(2) ? 3 : 0;
  if (b0 === 0xed) return cont(1, 0x80, 0x9f) && cont(2) ? 3 : 0;
  if (b0 === 0xf0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (b0 >= 0xf1 && b0 <= 0xf3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (b0 === 0xf4) return cont(1, 0x80, 0x8f) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}
