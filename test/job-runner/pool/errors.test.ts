import { describe, expect, it } from 'vitest';
import {
  DatabaseUnavailableError,
  isTransientDatabaseError,
  PoolAcquireTimeoutError,
} from '../../../job-runner/pool/errors.js';
import { exitCodeFor } from '../../../job-runner/runner/errors.js';
import { SchemaTooNewError } from '../../../job-runner/db/migrations.js';

const withCode = (message: string, code: string) => Object.assign(new Error(message), { code });

describe('database error classification', () => {
  const table: Array<{ name: string; err: unknown; transient: boolean; exit: number }> = [
    {
      name: 'connection refused',
      err: withCode('connect ECONNREFUSED 10.0.0.1:5432', 'ECONNREFUSED'),
      transient: true,
      exit: 75,
    },
    {
      name: 'server shutting down (57P01)',
      err: withCode('terminating connection due to administrator command', '57P01'),
      transient: true,
      exit: 75,
    },
    {
      name: 'server starting up (57P03)',
      err: withCode('the database system is starting up', '57P03'),
      transient: true,
      exit: 75,
    },
    {
      name: 'too many connections (53300)',
      err: withCode('sorry, too many clients already', '53300'),
      transient: true,
      exit: 75,
    },
    { name: 'connection exception class 08', err: withCode('connection failure', '08006'), transient: true, exit: 75 },
    {
      name: 'socket closed under a query',
      err: new Error('Connection terminated unexpectedly'),
      transient: true,
      exit: 75,
    },
    {
      name: 'pool exhausted',
      err: new PoolAcquireTimeoutError(100, { max: 2, active: 2, waiting: 3 }),
      transient: true,
      exit: 75,
    },
    {
      name: 'database gone for good',
      err: new DatabaseUnavailableError(5, 60_000, new Error('x')),
      transient: true,
      exit: 75,
    },
    {
      name: 'IPv4 and IPv6 both refused',
      err: new AggregateError([withCode('refused', 'ECONNREFUSED')]),
      transient: true,
      exit: 75,
    },
    {
      name: 'wrong password (28P01)',
      err: withCode('password authentication failed', '28P01'),
      transient: false,
      exit: 64,
    },
    {
      name: 'no such database (3D000)',
      err: withCode('database "x" does not exist', '3D000'),
      transient: false,
      exit: 64,
    },
    {
      name: 'schema newer than the code',
      err: new SchemaTooNewError({ version: 3, name: 'drop-x', compatibleFrom: 3 }, 1),
      transient: false,
      exit: 64,
    },
    {
      name: 'a syntax error is a bug',
      err: withCode('syntax error at or near "x"', '42601'),
      transient: false,
      exit: 1,
    },
    { name: 'a plain bug', err: new TypeError('x is undefined'), transient: false, exit: 1 },
  ];
  for (const row of table) {
    it(`${row.name}: ${row.transient ? 'transient' : 'not transient'}, exit ${row.exit}`, () => {
      expect(isTransientDatabaseError(row.err)).toBe(row.transient);
      expect(exitCodeFor(row.err)).toBe(row.exit);
    });
  }
});

describe('error messages', () => {
  it('name the pool size and the queue', () => {
    expect(new PoolAcquireTimeoutError(30_000, { max: 5, active: 5, waiting: 7 }).message).toBe(
      'no database connection became free within 30000 ms: pool max 5, 5 in use, 7 waiting',
    );
  });
  it('never carry a database URL', () => {
    const cause = new Error('could not connect to postgres://app:s3cret@db:5432/midi');
    const msg = new DatabaseUnavailableError(3, 900, cause).message;
    expect(msg).not.toContain('s3cret');
  });
});
