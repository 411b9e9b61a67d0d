/**
 * What a failure means for a retry: the one question the runner, local mode and Kubernetes ask of every error.
 *
 * - A `PermanentError` says that running the same work again cannot help (bad arguments, a corpus never scanned, a
 *   schema newer than the code): the runner exits 64, the Job fails the index at once, local mode stops the run.
 * - A `TransientError` says that the same work, run again later, should get through (the database restarting, no
 *   connection free in time, a shutdown asked for): the runner exits 75 and is run again.
 * - Anything else is a bug (exit 1): retried like a crash, a bounded number of times.
 *
 * Two classes rather than a `kind` field on one base: the kind is fixed by what an error *is*, so it cannot be
 * forgotten when one is thrown, and the check is `instanceof`, never a name or a message. Errors raised elsewhere (pg's,
 * the operating system's) carry no kind; the code that knows them classifies them (job-runner/pool/errors.ts for the
 * database's).
 */

/** Retrying cannot help: the configuration or the input must change first. */
export class PermanentError extends Error {
  override readonly name: string = 'PermanentError';
}

/** Worth running again later: nothing about the input is wrong. */
export class TransientError extends Error {
  override readonly name: string = 'TransientError';
}

export type ErrorKind = 'permanent' | 'transient' | 'bug';

/** The kind of an error by its class; an error of neither class is a bug. */
export function errorKind(err: unknown): ErrorKind {
  if (err instanceof PermanentError) return 'permanent';
  if (err instanceof TransientError) return 'transient';
  return 'bug';
}
