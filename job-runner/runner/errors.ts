import { EXIT_TEMPFAIL, EXIT_USAGE } from '../../contract/exit-codes.js';
import { exitCodeForDatabaseError } from '../pool/errors.js';

/**
 * The runner's own reasons to stop, and the exit code of each (contracts.md): 75 asks to be run again later, 64 says
 * running again cannot help.
 */

/** Bad arguments or configuration: a missing root, a corpus that was never scanned. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** SIGTERM or SIGINT arrived: the shard stopped early and should be run again. */
export class ShutdownRequestedError extends Error {
  override readonly name = 'ShutdownRequestedError';
  readonly transient = true;
  constructor(signal: string) {
    super(`stopped by ${signal} before the shard was done; run it again to finish`);
  }
}

export function exitCodeFor(err: unknown): number {
  if (err instanceof UsageError) return EXIT_USAGE;
  if (err instanceof ShutdownRequestedError) return EXIT_TEMPFAIL;
  return exitCodeForDatabaseError(err);
}
