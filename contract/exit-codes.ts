import type { ErrorKind } from './error-kinds.js';

/**
 * Exit codes of every pod command (scan, run-shard, migrate) and of local mode, the sysexits.h values Kubernetes'
 * podFailurePolicy and local mode's supervisor act on: 0 done, 75 run me again, 64 retrying cannot help, 1 a bug.
 * docs/runner.md lists what leads to each.
 */
export const EXIT_OK = 0;
/** EX_TEMPFAIL: run me again later. */
export const EXIT_TEMPFAIL = 75;
/** EX_USAGE: bad arguments or configuration; the Jobs fail the index (or the scan) at once on it. */
export const EXIT_USAGE = 64;
export const EXIT_BUG = 1;

/** The exit code that says `kind` (error-kinds.ts). */
export function exitCodeOf(kind: ErrorKind): number {
  switch (kind) {
    case 'permanent':
      return EXIT_USAGE;
    case 'transient':
      return EXIT_TEMPFAIL;
    case 'bug':
      return EXIT_BUG;
  }
}
