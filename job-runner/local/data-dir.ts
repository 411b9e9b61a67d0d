import path from 'node:path';

/**
 * Where local mode keeps its embedded Postgres and its runner logs when --data-dir is not given (relative to cwd).
 * A module of its own: the flags of local, db, report, export and query show it as their default, and reading it must
 * not load pg and the embedded server's code for a command that only prints its help.
 */
export const DEFAULT_DATA_DIR = path.join('.data', 'midi-corpus');
