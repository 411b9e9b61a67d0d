import { describe, expect, it } from 'vitest';
import { MigrationChecksumError, SchemaTooNewError } from '../../../job-runner/db/migrations.js';
import { PoolAcquireTimeoutError } from '../../../job-runner/pool/errors.js';
import { exitCodeFor, ShutdownRequestedError, UsageError } from '../../../job-runner/runner/errors.js';

describe("the runner's exit codes", () => {
  it.each<[string, unknown, number]>([
    ['bad arguments', new UsageError('no root'), 64],
    ['a schema newer than the code', new SchemaTooNewError({ version: 3, name: 'drop-x', compatibleFrom: 3 }, 1), 64],
    ['a released migration edited', new MigrationChecksumError(1), 64],
    ['SIGTERM before the shard was done', new ShutdownRequestedError('SIGTERM'), 75],
    ['no connection free in time', new PoolAcquireTimeoutError(100, { max: 1, active: 1, waiting: 1 }), 75],
    ['anything else is a bug', new RangeError('x'), 1],
  ])('%s', (_name, err, exit) => {
    expect(exitCodeFor(err)).toBe(exit);
  });
});
