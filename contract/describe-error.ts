/**
 * Text about an error or a database that is safe to put in a log line, a MidiCorpus status or an Event: nothing that
 * looks like a connection URI (and so may carry a password) gets through.
 */

/** An error's message (with its SQLSTATE when there is one), secrets scrubbed: safe for logs and status. */
export function describeError(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return describeError(err.errors[0]);
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return scrubSecrets(typeof code === 'string' && code !== '' ? `${err.message} (${code})` : err.message);
  }
  return scrubSecrets(String(err));
}

/**
 * A database URL with its password (and any user info) removed, for messages that must name the server.
 * `postgres://app:s3cret@db:5432/midi?sslmode=require` → `postgres://db:5432/midi`.
 */
export function describeDatabaseUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '[unparseable database url]';
  }
}

/** Replaces anything that looks like a connection URI inside free text (error messages from drivers, say). */
export function scrubSecrets(text: string): string {
  return text.replace(/\b(postgres(?:ql)?:\/\/)[^\s'"]*/gi, '$1[redacted]');
}
