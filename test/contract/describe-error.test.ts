import { describe, expect, it } from 'vitest';
import { describeDatabaseUrl, describeError, scrubSecrets } from '../../contract/describe-error.js';

const withCode = (message: string, code: string) => Object.assign(new Error(message), { code });

describe('describeError', () => {
  it('never carries a database URL', () => {
    expect(describeError(withCode('bad postgresql://u:pw@h/d', '28P01'))).toBe('bad postgresql://[redacted] (28P01)');
  });

  it('describes the first of an AggregateError, and what is not an Error as text', () => {
    expect(describeError(new AggregateError([withCode('refused', 'ECONNREFUSED'), new Error('second')]))).toBe(
      'refused (ECONNREFUSED)',
    );
    expect(describeError('postgres://app:s3cret@db/midi is down')).toBe('postgres://[redacted] is down');
  });
});

describe('describeDatabaseUrl', () => {
  it('keeps the server and the database, drops the user, password and options', () => {
    expect(describeDatabaseUrl('postgres://app:s3cret@db:5432/midi?sslmode=require')).toBe('postgres://db:5432/midi');
    expect(describeDatabaseUrl('not a url: s3cret')).toBe('[unparseable database url]');
  });
});

describe('scrubSecrets', () => {
  it('redacts every connection URI in free text, whatever its case', () => {
    expect(scrubSecrets("connect to 'POSTGRESQL://a:b@h/d' or postgres://c:d@h2/e failed")).toBe(
      "connect to 'POSTGRESQL://[redacted]' or postgres://[redacted] failed",
    );
  });
});
