import { PermanentError, TransientError } from '../../contract/error-kinds.js';
import { exitCodeOf } from '../../contract/exit-codes.js';
import { databaseErrorKind } from '../pool/errors.js';

/**
 * The runner's own reasons to stop, each of the kind (contract/error-kinds.ts) that gives its exit code: 75 asks to
 * be run again later, 64 says running again cannot help.
 */

/** Bad arguments or configuration: a missing root, a corpus that was never scanned. */
export class UsageError extends PermanentError {
  override readonly name = 'UsageError';
}

/** SIGTERM or SIGINT arrived: the shard stopped early and should be run again. */
export class ShutdownRequestedError extends TransientError {
  override readonly name = 'ShutdownRequestedError';
  constructor(signal: string) {
    super(`stopped by ${signal} before the shard was done; run it again to finish`);
  }
}

/** The exit code of a runner command (scan, run-shard, migrate, local) that ended on `err`. */
export function exitCodeFor(err: unknown): number {
  return exitCodeOf(databaseErrorKind(err));
}
