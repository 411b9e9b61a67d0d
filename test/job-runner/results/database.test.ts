import { describe, expect, it } from 'vitest';
import { checkDatabaseUrl } from '../../../job-runner/results/database.js';
import { UsageError } from '../../../job-runner/runner/errors.js';

describe('checkDatabaseUrl', () => {
  it.each([
    'postgres://midi:s3cret@db.example:5432/midi',
    'postgresql://db/midi?sslmode=require',
    'postgres:///midi?host=/run/postgresql',
  ])('takes %s', (url) => {
    expect(() => checkDatabaseUrl(url)).not.toThrow();
  });

  it.each(['not-a-url', 'not-a-url:s3cret', 'http://db/midi', 'postgres:///midi', '', 'db.example:5432/midi'])(
    'refuses %j as a usage error that does not repeat it',
    (url) => {
      let error: unknown;
      try {
        checkDatabaseUrl(url);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(UsageError);
      expect((error as Error).message).toMatch(/^--database-url \(or DATABASE_URL\): not a database URL/);
      if (url) expect((error as Error).message).not.toContain(url);
    },
  );
});
