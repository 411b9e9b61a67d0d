import type pg from 'pg';
import { PermanentError } from '../../contract/error-kinds.js';
import { isTransientDatabaseError } from '../pool/errors.js';
import { csvField } from './formats.js';

/**
 * `midi-corpus query "SQL"`: one statement, read only, and its result as an aligned table, CSV or JSON Lines, for
 * people who have no psql (the project does not install it).
 *
 * Read only three ways over: the statement runs in a READ ONLY transaction that is rolled back afterwards; it is
 * sent with the extended protocol, which takes exactly one statement, so "…; COMMIT; DELETE …" cannot step out of
 * that transaction; and the connection's default_transaction_read_only is on (set by the caller), so even a lone
 * COMMIT leaves nothing writable behind.
 */

export interface QueryResult {
  columns: string[];
  /** Values as Postgres prints them (text), NULL as null. */
  rows: (string | null)[][];
}

/** A statement Postgres refused (syntax, a write in the read-only transaction, a missing table): the user's to fix. */
export class QueryRefusedError extends PermanentError {
  override readonly name = 'QueryRefusedError';
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

/** Runs `sql` read only and returns every row as text. */
export async function runReadOnlyQuery(client: pg.ClientBase, sql: string): Promise<QueryResult> {
  await client.query('BEGIN READ ONLY');
  try {
    const statement: pg.QueryArrayConfig & { queryMode: 'extended' } = {
      text: sql,
      // The extended protocol parses exactly one statement (pg would send a parameterless query as a simple one).
      queryMode: 'extended',
      rowMode: 'array',
      // Every value as the server's text, so a table shows what psql would (no JavaScript Dates or floats).
      types: { getTypeParser: () => (v: string) => v },
    };
    const result = await client.query(statement);
    return {
      columns: (result.fields ?? []).map((f) => f.name),
      rows: (result.rows ?? []).map((r) => r.map((v) => (v === null ? null : String(v)))),
    };
  } catch (err) {
    const e = err as { message?: string; code?: string; severity?: string };
    // The server refused the statement itself; an outage (the server restarting under it) stays what it is: retry.
    if (typeof e.severity === 'string' && !isTransientDatabaseError(err))
      throw new QueryRefusedError(e.message ?? String(err), e.code);
    throw err;
  } finally {
    await client.query('ROLLBACK').catch(() => {});
  }
}

/** psql's aligned format: headers centred over columns, numbers right-aligned, then "(N rows)". */
export function alignedTable(result: QueryResult): string {
  const cells = result.rows.map((r) => r.map((v) => (v === null ? '' : v.replace(/\r?\n/g, '↵'))));
  const widths = result.columns.map((name, i) => Math.max(width(name), ...cells.map((r) => width(r[i]!))));
  const numeric = result.columns.map(
    (_, i) => cells.length > 0 && cells.every((r) => r[i] === '' || /^-?\d+(\.\d+)?(e[+-]?\d+)?$/i.test(r[i]!)),
  );
  const pad = (s: string, w: number, right: boolean) =>
    right ? ' '.repeat(w - width(s)) + s : s + ' '.repeat(w - width(s));
  const centre = (s: string, w: number) => {
    const left = Math.floor((w - width(s)) / 2);
    return ' '.repeat(left) + s + ' '.repeat(w - width(s) - left);
  };
  const lines = [
    ' ' + result.columns.map((c, i) => centre(c, widths[i]!)).join(' | ') + ' ',
    widths.map((w) => '-'.repeat(w + 2)).join('+'),
    ...cells.map((r) => ' ' + r.map((v, i) => pad(v, widths[i]!, numeric[i]!)).join(' | ') + ' '),
    `(${result.rows.length} ${result.rows.length === 1 ? 'row' : 'rows'})`,
  ];
  return lines.map((l) => l.trimEnd()).join('\n') + '\n';
}

export function csvTable(result: QueryResult): string {
  return [result.columns, ...result.rows].map((r) => r.map(csvField).join(',') + '\r\n').join('');
}

export function jsonLines(result: QueryResult): string {
  return result.rows
    .map((r) => JSON.stringify(Object.fromEntries(result.columns.map((c, i) => [c, r[i]]))) + '\n')
    .join('');
}

/** Characters on screen (code points; good enough for names and numbers). */
function width(s: string): number {
  return [...s].length;
}
