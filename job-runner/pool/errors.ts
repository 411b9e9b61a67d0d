import { describeError } from '../../contract/describe-error.js';
import { EXIT_BUG, EXIT_TEMPFAIL, EXIT_USAGE } from '../../contract/exit-codes.js';

/**
 * Errors the pool raises, and the classification the runner turns into exit codes: a transient error means
 * "retry me" (EX_TEMPFAIL, 75), a configuration error means retrying cannot help (EX_USAGE, 64).
 */

export interface PoolPicture {
  max: number;
  active: number;
  waiting: number;
}

/** No connection became free in time. Says how big the pool is and how crowded, never where the database is. */
export class PoolAcquireTimeoutError extends Error {
  override readonly name = 'PoolAcquireTimeoutError';
  /** Marks the error for any classifier that looks for the flag rather than the class. */
  readonly transient = true;
  constructor(
    readonly waitedMs: number,
    readonly picture: PoolPicture,
  ) {
    super(
      `no database connection became free within ${waitedMs} ms: pool max ${picture.max}, ` +
        `${picture.active} in use, ${picture.waiting} waiting`,
    );
  }
}

/** The database could not be reached (or kept refusing) until a deadline passed: starting, restarting, or gone. */
export class DatabaseUnavailableError extends Error {
  override readonly name = 'DatabaseUnavailableError';
  readonly transient = true;
  constructor(
    readonly attempts: number,
    readonly waitedMs: number,
    cause: unknown,
  ) {
    super(`database unreachable after ${attempts} attempt(s) over ${waitedMs} ms: ${describeError(cause)}`, { cause });
  }
}

/** Socket-level failures: the server is not there (yet), or went away. */
const TRANSIENT_NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ENOTFOUND',
]);

/**
 * SQLSTATEs worth a retry: class 08 (connection exception), admin/crash shutdown and "starting up" (57P01-03),
 * too many connections (53300), serialization failure and deadlock (40001, 40P01).
 * ENOTFOUND is here because in a cluster the database Service's DNS name may not exist yet when the pod starts.
 */
const TRANSIENT_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300', '40001', '40P01']);

/** Messages pg gives without a code when the socket dies or a connect/read times out. */
const TRANSIENT_MESSAGES = [
  'Connection terminated unexpectedly',
  'Connection terminated due to connection timeout',
  'Query read timeout',
  'Client has encountered a connection error and is not queryable',
];

/** Worth retrying later: the database was unreachable, restarting, or overloaded; nothing about the input is wrong. */
export function isTransientDatabaseError(err: unknown): boolean {
  if (err instanceof PoolAcquireTimeoutError || err instanceof DatabaseUnavailableError) return true;
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (TRANSIENT_NETWORK_CODES.has(code) || TRANSIENT_SQLSTATES.has(code) || code.startsWith('08')) return true;
  }
  if (TRANSIENT_MESSAGES.includes(err.message)) return true;
  // AggregateError from a host with several addresses (IPv4 and IPv6 both refused).
  if (err instanceof AggregateError) return err.errors.some(isTransientDatabaseError);
  return false;
}

/**
 * SQLSTATEs that retrying cannot fix: bad password or role (28000, 28P01), unknown database (3D000),
 * insufficient privilege (42501).
 */
const CONFIGURATION_SQLSTATES = new Set(['28000', '28P01', '3D000', '42501']);

/** The database said no to who we are or what we asked for: a configuration problem, not an outage. */
export function isConfigurationDatabaseError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && CONFIGURATION_SQLSTATES.has(code);
}

/** The exit code for an error that ended a database command. Errors that say "permanent" by name get 64 too. */
export function exitCodeForDatabaseError(err: unknown): number {
  if (isTransientDatabaseError(err)) return EXIT_TEMPFAIL;
  if (isConfigurationDatabaseError(err)) return EXIT_USAGE;
  if (err instanceof Error && PERMANENT_ERROR_NAMES.has(err.name)) return EXIT_USAGE;
  return EXIT_BUG;
}

/** Errors raised by our own checks that mean the setup is wrong (the schema is newer than the code, and so on). */
const PERMANENT_ERROR_NAMES = new Set(['SchemaTooNewError', 'MigrationChecksumError']);
