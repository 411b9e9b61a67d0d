import { describe, expect, it } from 'vitest';
import {
  checksumOf,
  MigrationChecksumError,
  pendingMigrations,
  SchemaTooNewError,
  type Migration,
} from '../../../job-runner/db/migrations.js';

const m = (version: number, sql = `SELECT ${version}`): Migration => ({ version, name: `m${version}`, sql });
const recorded = (...ms: Migration[]) => ms.map((x) => ({ version: x.version, checksum: checksumOf(x) }));

describe('pendingMigrations', () => {
  const code = [m(1), m(2), m(3)];
  const table = [
    { name: 'a fresh database gets everything, in order', recorded: [], want: [1, 2, 3] },
    { name: 'a partly migrated database gets the rest', recorded: recorded(m(1)), want: [2, 3] },
    { name: 'a current database gets nothing', recorded: recorded(m(1), m(2), m(3)), want: [] },
  ];
  for (const row of table) {
    it(row.name, () => expect(pendingMigrations(row.recorded, code).map((x) => x.version)).toEqual(row.want));
  }
  it('refuses a database migrated by a newer release', () => {
    expect(() => pendingMigrations(recorded(m(1), m(2), m(3), m(4)), code)).toThrow(SchemaTooNewError);
    expect(() => pendingMigrations(recorded(m(1), m(2), m(3), m(4)), code)).toThrow(/version 4 .* only up to 3/);
  });
  it('refuses when an applied migration was edited afterwards', () => {
    expect(() => pendingMigrations(recorded(m(1, 'SELECT "edited"')), code)).toThrow(MigrationChecksumError);
  });
});
