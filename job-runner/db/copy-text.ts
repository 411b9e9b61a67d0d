import { pgText } from './text.js';

/**
 * Rows in COPY's text format (https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.2), for
 * `COPY … FROM STDIN`: one line per row, fields separated by tabs, `\N` for NULL, backslash, tab, newline and carriage
 * return escaped. A field is what the column's input function reads: a number or a string as it is, a boolean as t/f,
 * a Buffer as bytea's `\x…`, an array as an array literal `{…}` (one dimension, numbers or strings), and a `Json`
 * wrapper as JSON text. Strings are cleaned with pgText on the way, as pgJson does for the JSON path.
 */

/** A value for a json or jsonb column, which an array or object would otherwise be mistaken for an array literal. */
export class Json {
  constructor(readonly value: unknown) {}
}

export type CopyValue =
  string | number | boolean | null | undefined | Buffer | Json | readonly (string | number | null)[];

/** Bytes per chunk handed to the COPY stream: a write per row would cost more than the row. */
const CHUNK = 64 * 1024;

export function* copyText(rows: Iterable<readonly CopyValue[]>): Generator<string> {
  let chunk = '';
  for (const row of rows) {
    let line = '';
    for (let i = 0; i < row.length; i++) line += (i ? '\t' : '') + copyField(row[i]);
    chunk += `${line}\n`;
    if (chunk.length >= CHUNK) {
      yield chunk;
      chunk = '';
    }
  }
  if (chunk) yield chunk;
}

export function copyField(v: CopyValue): string {
  if (v === null || v === undefined) return '\\N';
  if (typeof v === 'number') return String(v);
  if (typeof v === 'boolean') return v ? 't' : 'f';
  if (typeof v === 'string') return escape(pgText(v));
  if (Buffer.isBuffer(v)) return `\\\\x${v.toString('hex')}`;
  if (v instanceof Json)
    return escape(JSON.stringify(v.value, (_key, x: unknown) => (typeof x === 'string' ? pgText(x) : x)));
  return escape(`{${v.map(arrayElement).join(',')}}`);
}

function arrayElement(e: string | number | null): string {
  if (e === null) return 'NULL';
  if (typeof e === 'number') return String(e);
  // Quoted, so that commas, braces, spaces and the word NULL stay part of the string.
  return `"${pgText(e).replace(/["\\]/g, '\\$&')}"`;
}

const ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

function escape(s: string): string {
  return s.replace(/[\\\t\n\r]/g, (c) => ESCAPES[c]!);
}
