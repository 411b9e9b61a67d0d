import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkDatabaseUrl,
  checkFlagOrEnv,
  databaseUrl,
  FlagError,
  listOf,
  nonEmpty,
  numberAbove,
  oneOf,
  outputFile,
  parsedBy,
  port,
  readableDirectory,
  wholeNumber,
  writableDirectory,
  type Coercer,
} from '../../common/flags.js';

/** The coercer's value, or the message of the FlagError it threw (anything else it threw fails the test). */
function outcome<T>(coerce: Coercer<T>, value: unknown): T | string {
  try {
    return coerce(value);
  } catch (err) {
    if (!(err instanceof FlagError)) throw err;
    return err.message;
  }
}

describe('flag coercers', () => {
  it.each<[string, Coercer<unknown>, unknown, unknown]>([
    ['a whole number as yargs parses it', wholeNumber('--n', { min: 1 }), 3, 3],
    ['a whole number from the environment', wholeNumber('N', { min: 0 }), '12', 12],
    ['zero where one is the least', wholeNumber('--n', { min: 1 }), 0, '--n must be a whole number ≥ 1, got 0'],
    ['a fraction', wholeNumber('--n', { min: 0 }), 1.5, '--n must be a whole number ≥ 0, got 1.5'],
    ['text where a count belongs', wholeNumber('--n', { min: 0 }), 'abc', '--n must be a whole number ≥ 0, got abc'],
    ['a flag with no value', wholeNumber('--n', { min: 0 }), true, '--n needs a value'],
    ['an empty value', wholeNumber('--n', { min: 0 }), '', '--n needs a value'],
    ['a flag given twice', wholeNumber('--n', { min: 0 }), [1, 2], '--n was given 2 times; give it once'],
    ['above the most', wholeNumber('--n', { min: 1, max: 9 }), 10, '--n must be a whole number from 1 to 9, got 10'],
    [
      'below the least of a range',
      wholeNumber('--n', { min: 1, max: 9 }),
      0,
      '--n must be a whole number from 1 to 9, got 0',
    ],
    ['a port', port('--port'), 5432, 5432],
    ['a port out of range', port('--port'), 70_000, '--port must be a whole number from 1 to 65535, got 70000'],
    ['a share in range', numberAbove('--f', 0, 1), 0.5, 0.5],
    ['a share of one', numberAbove('--f', 0, 1), 1, 1],
    ['a share above one', numberAbove('--f', 0, 1), 3, '--f must be a number in (0, 1], got 3'],
    ['a share of zero', numberAbove('--f', 0, 1), 0, '--f must be a number in (0, 1], got 0'],
    ['a positive number', numberAbove('--c', 0), 1.5, 1.5],
    ['a positive number that is text', numberAbove('--c', 0), 'x', '--c must be a number above 0, got x'],
    ['a parsed value', parsedBy('--cpu', (t) => (t === '2' ? 2000 : undefined), 'a CPU quantity'), '2', 2000],
    [
      'a value the parser refuses',
      parsedBy('--cpu', () => undefined, 'a CPU quantity such as 500m'),
      'abc',
      '--cpu must be a CPU quantity such as 500m, got abc',
    ],
    ['a choice', oneOf('--format', ['csv', 'jsonl'] as const), 'csv', 'csv'],
    [
      'not a choice',
      oneOf('--format', ['csv', 'jsonl'] as const),
      'xml',
      '--format must be one of csv, jsonl, got xml',
    ],
    ['a name', nonEmpty('--corpus'), 'songs', 'songs'],
    ['a name that yargs read as a number', nonEmpty('--corpus'), 7, '7'],
    ['an empty name', nonEmpty('--corpus'), '', '--corpus needs a value'],
    ['a repeated flag, each value checked', listOf('--s', oneOf('--s', ['a', 'b'] as const)), ['a', 'b'], ['a', 'b']],
    ['a repeated flag given once', listOf('--n', wholeNumber('--n', { min: 0 })), 3, [3]],
    ['values split at commas', listOf('--s', nonEmpty('--s'), { commas: true }), ['a, b', 'c'], ['a', 'b', 'c']],
    [
      'one bad value among several',
      listOf('--s', oneOf('--s', ['a', 'b'] as const), { commas: true }),
      ['a,x'],
      '--s must be one of a, b, got x',
    ],
    ['a repeated flag with no value', listOf('--s', nonEmpty('--s')), true, '--s needs a value'],
  ])('%s', (_name, coerce, value, want) => {
    expect(outcome(coerce, value)).toEqual(want);
  });
});

describe('databaseUrl', () => {
  const coerce = databaseUrl('--database-url');

  it.each([
    'postgres://user:pw@db:5432/midi',
    'postgresql://db/midi?sslmode=require',
    'postgresql:///midi?host=/var/run/postgresql',
  ])('takes %s', (url) => {
    expect(coerce(url)).toBe(url);
  });

  it.each<[string, string, RegExp]>([
    ['not a URL (pg would read a host named "base")', 'not-a-url', /is not a URL/],
    ['another scheme', 'http://user:s3cret@db/midi', /has the scheme http: where postgres: or postgresql: belongs/],
    ['no host', 'postgres:///midi', /names no host/],
  ])('refuses %s, without repeating it', (_name, url, message) => {
    const got = outcome(coerce, url) as string;
    expect(got).toMatch(message);
    expect(got).toMatch(/^--database-url .*; give postgres:\/\/USER:PASSWORD@HOST:5432\/DATABASE$/);
    expect(got).not.toContain(url);
    expect(got).not.toContain('s3cret');
  });

  it('checks DATABASE_URL when the flag is absent, and asks for one where the command needs it', () => {
    expect(checkDatabaseUrl('postgres://db/x', { required: true, env: { DATABASE_URL: 'junk' } })).toBe(true);
    expect(checkDatabaseUrl(undefined, { required: true, env: { DATABASE_URL: 'postgres://db/x' } })).toBe(true);
    expect(() => checkDatabaseUrl(undefined, { required: true, env: { DATABASE_URL: 'junk' } })).toThrow(
      /^DATABASE_URL is not a URL/,
    );
    expect(() => checkDatabaseUrl(undefined, { required: true, env: {} })).toThrow(
      'no database: pass --database-url or set DATABASE_URL',
    );
    expect(checkDatabaseUrl(undefined, { required: false, env: {} })).toBe(true);
  });
});

describe('checkFlagOrEnv', () => {
  const range = { min: 0 };
  it('takes the flag, else the variable, and names both when neither holds a whole number', () => {
    expect(checkFlagOrEnv('--shard', 3, 'JOB_COMPLETION_INDEX', range, { required: true, env: {} })).toBe(true);
    expect(
      checkFlagOrEnv('--shard', undefined, 'JOB_COMPLETION_INDEX', range, {
        required: true,
        env: { JOB_COMPLETION_INDEX: '4' },
      }),
    ).toBe(true);
    expect(() =>
      checkFlagOrEnv('--shard', undefined, 'JOB_COMPLETION_INDEX', range, {
        required: true,
        env: { JOB_COMPLETION_INDEX: 'x' },
      }),
    ).toThrow('JOB_COMPLETION_INDEX (for --shard) must be a whole number ≥ 0, got x');
    expect(() =>
      checkFlagOrEnv('--shard', undefined, 'JOB_COMPLETION_INDEX', range, { required: true, env: {} }),
    ).toThrow('no --shard: pass --shard N or set JOB_COMPLETION_INDEX');
    expect(checkFlagOrEnv('--cpu-millis', undefined, 'CPU_REQUEST_MILLIS', range, { required: false, env: {} })).toBe(
      true,
    );
  });
});

describe('directories', () => {
  let tmp: string;
  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'mco-flags-'));
    await writeFile(path.join(tmp, 'file'), 'x');
  });
  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('a readable directory exists, is a directory, and is readable', async () => {
    const coerce = readableDirectory('<dir>');
    expect(coerce(tmp)).toBe(tmp);
    expect(outcome(coerce, path.join(tmp, 'gone'))).toBe(
      `<dir> must be a readable directory, got ${tmp}/gone (not found)`,
    );
    expect(outcome(coerce, path.join(tmp, 'file'))).toBe(
      `<dir> must be a readable directory, got ${tmp}/file (is not a directory)`,
    );
    const locked = path.join(tmp, 'locked');
    await mkdir(locked, { mode: 0o000 });
    // root reads anything: the permission case can only be seen as another user.
    if (process.getuid?.() !== 0)
      expect(outcome(coerce, locked)).toBe(`<dir> must be a readable directory, got ${locked} (permission denied)`);
  });

  it('a writable directory may be missing, as long as the nearest existing one above it is a writable directory', () => {
    const coerce = writableDirectory('--data-dir');
    expect(coerce(path.join(tmp, 'new', 'deeper'))).toBe(path.join(tmp, 'new', 'deeper'));
    expect(outcome(coerce, path.join(tmp, 'file'))).toBe(
      `--data-dir must be a directory this user may write, got ${tmp}/file (is not a directory)`,
    );
    expect(outcome(coerce, path.join(tmp, 'file', 'below'))).toMatch(
      /^--data-dir must be a directory this user may write/,
    );
  });

  it('an output file is one to create or replace in an existing, writable directory; - is stdout where allowed', () => {
    const coerce = outputFile('--output');
    expect(coerce(path.join(tmp, 'new.html'))).toBe(path.join(tmp, 'new.html'));
    expect(coerce(path.join(tmp, 'file'))).toBe(path.join(tmp, 'file'));
    expect(outputFile('--output', { stdout: true })('-')).toBe('-');
    expect(outcome(coerce, tmp)).toBe(
      `--output must be a file this user may write, got ${tmp} (is a directory; name the file to write)`,
    );
    expect(outcome(coerce, path.join(tmp, 'gone', 'r.html'))).toBe(
      `--output must be a file this user may write, got ${tmp}/gone/r.html (${tmp}/gone: not found)`,
    );
    expect(outcome(coerce, path.join(tmp, 'file', 'r.html'))).toMatch(
      /^--output must be a file this user may write, got .*\/file\/r\.html \(.*\)$/,
    );
  });
});
