/**
 * Which corpora share one connection budget.
 *
 * max_connections is a property of the Postgres *server*, not of one database on it: two corpora writing to different
 * databases of one server compete for the same slots. So, unless spec.database.poolKey names the budget explicitly,
 * the key is derived from the server's address in the URL — host (lower-cased) and port (5432 when absent) — and
 * hashed, so that status and metrics can show it without revealing anything of the URL. User name, password, database
 * name and options never enter the key.
 *
 * Behind a transaction pooler (spec.database.pooler) the URL's host:port is the pooler's, and its client limit is what
 * the corpora on it share, whatever database or user each one reaches through it: the key is the same hash, as
 * `pooler-`, so a pooler's budget is never merged with the budget of a server reached directly at the same address.
 *
 * Limits (documented in the README): two URLs reaching one server (or one pooler) under different names (an IP and a
 * DNS name, two Service names) look like two; that is what spec.database.poolKey is for.
 */
import { createHash } from 'node:crypto';

export class InvalidDatabaseUrlError extends Error {}

/** host:port of a postgres:// URL, for hashing. Throws InvalidDatabaseUrlError (with no part of the URL in the message). */
export function serverAddress(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new InvalidDatabaseUrlError(
      'the database URL is not a valid URL (expected postgres://user:password@host:port/database)',
    );
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    throw new InvalidDatabaseUrlError(
      `the database URL must start with postgres:// or postgresql://, not ${u.protocol}//`,
    );
  }
  // libpq also accepts the host as a query parameter (sockets, multi-host); take it when the authority has none.
  const host = (u.hostname || u.searchParams.get('host') || '').toLowerCase();
  if (host === '') throw new InvalidDatabaseUrlError('the database URL names no host');
  const port = u.port || u.searchParams.get('port') || '5432';
  return `${host}:${port}`;
}

/**
 * The budget key: spec.database.poolKey when given, else `server-` (`pooler-` behind a pooler) and 16 hex digits of
 * sha256(host:port).
 */
export function budgetKey(database: { poolKey?: string; pooler?: object }, url: string): string {
  if (database.poolKey !== undefined) return `key-${database.poolKey}`;
  const hash = createHash('sha256').update(serverAddress(url)).digest('hex').slice(0, 16);
  return `${database.pooler ? 'pooler' : 'server'}-${hash}`;
}
