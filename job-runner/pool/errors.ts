import { describeError } from '../../contract/describe-error.js';
import { errorKind, TransientError, type ErrorKind } from '../../contract/error-kinds.js';
import { isTlsRefusal } from '../../contract/database-tls.js';

/**
 * Errors the pool raises, and what the database's own errors mean for a retry (contract/error-kinds.ts): a transient
 * one means "retry me" (exit 75), a configuration one means retrying cannot help (exit 64).
 */

export interface PoolPicture {
  max: number;
  active: number;
  waiting: number;
}

/** No connection became free in time. Says how big the pool is and how crowded, never where the database is. */
export class PoolAcquireTimeoutError extends TransientError {
  override readonly name = 'PoolAcquireTimeoutError';
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
export class DatabaseUnavailableError extends TransientError {
  override readonly name = 'DatabaseUnavailableError';
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

/**
 * The database said no to who we are or what we asked for: a configuration problem, not an outage. A refused TLS
 * handshake is one too (a certificate for another host will not become one for this host by waiting), raw or already
 * explained (contract/database-tls.ts).
 */
export function isConfigurationDatabaseError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return (typeof code === 'string' && CONFIGURATION_SQLSTATES.has(code)) || isTlsRefusal(err);
}

/** The kind of an error that ended a database command: the database's own errors by their code, ours by their class. */
export function databaseErrorKind(err: unknown): ErrorKind {
  if (isTransientDatabaseError(err)) return 'transient';
  if (isConfigurationDatabaseError(err)) return 'permanent';
  return errorKind(err);
}
