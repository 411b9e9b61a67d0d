import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';
import { wholeNumber as checkedWholeNumber } from './whole-number.js';

/**
 * Coercers for command-line flags (and the environment variables that stand in for them), for yargs' `coerce`:
 *
 *   .option('files-per-shard', { describe: 'Files per shard', coerce: flags.wholeNumber('--files-per-shard', { min: 1 }) })
 *
 * Each one takes the label the user typed (`--files-per-shard`, `<dir>`, `DATABASE_URL`) and returns a function that
 * gives the checked value or throws a FlagError whose message is one line naming the label, what would be valid and
 * what was given. yargs hands a coercer's error to the CLI's fail handler (cli/usage.ts), which prints that line and
 * exits 64: the contract's "retrying cannot help" (contract/exit-codes.ts).
 *
 * Use them without `type: 'number'`: yargs turns `--cpu-millis abc` into NaN before a coercer sees it, and the message
 * could no longer say what was typed. Without a type, yargs still reads `12` as the number 12, and hands everything
 * else over as typed. yargs also runs coercers on defaults, so a default must be valid.
 */

/** A flag's value is not one it takes: the message is the one line the CLI prints. */
export class FlagError extends Error {
  override readonly name = 'FlagError';
}

export type Coercer<T> = (value: unknown) => T;

/** The flag's one value, or a FlagError for a flag given with no value (`--files`) or given more than once. */
function single(label: string, value: unknown): unknown {
  if (value === true || value === '') throw new FlagError(`${label} needs a value`);
  if (Array.isArray(value)) throw new FlagError(`${label} was given ${value.length} times; give it once`);
  return value;
}

/** A whole number in [min, max]: counts, sizes, milliseconds. `12` from the environment is read as 12. */
export function wholeNumber(label: string, range: { min: number; max?: number }): Coercer<number> {
  return (value) => {
    const v = single(label, value);
    const checked = checkedWholeNumber(label, v, range.min);
    if (range.max === undefined) {
      if (typeof checked === 'string') throw new FlagError(checked);
      return checked;
    }
    if (typeof checked === 'string' || checked > range.max)
      throw new FlagError(`${label} must be a whole number from ${range.min} to ${range.max}, got ${String(v)}`);
    return checked;
  };
}

/** A TCP port to listen on or connect to, 1 to 65535. */
export function port(label: string): Coercer<number> {
  return wholeNumber(label, { min: 1, max: 65_535 });
}

/**
 * A number (fractions allowed) above `above` (exclusive) and at most `atMost`: `(0, 1]` for a share of something.
 * `atMost` is optional for numbers with no upper limit.
 */
export function numberAbove(label: string, above: number, atMost?: number): Coercer<number> {
  const valid = atMost === undefined ? `a number above ${above}` : `a number in (${above}, ${atMost}]`;
  return (value) => {
    const v = single(label, value);
    const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isFinite(n) || !(n > above) || (atMost !== undefined && n > atMost))
      throw new FlagError(`${label} must be ${valid}, got ${String(v)}`);
    return n;
  };
}

/**
 * A value read by `parse` (undefined when it is not one), for formats another module owns: a CPU quantity through
 * controller/plan/cpu.ts, say. `valid` completes "must be …", with examples.
 */
export function parsedBy<T>(label: string, parse: (text: string) => T | undefined, valid: string): Coercer<T> {
  return (value) => {
    const v = single(label, value);
    const parsed = parse(String(v));
    if (parsed === undefined) throw new FlagError(`${label} must be ${valid}, got ${String(v)}`);
    return parsed;
  };
}

/** One of a fixed set of words. */
export function oneOf<const C extends readonly string[]>(label: string, choices: C): Coercer<C[number]> {
  return (value) => {
    const v = String(single(label, value));
    if (!choices.includes(v)) throw new FlagError(`${label} must be one of ${choices.join(', ')}, got ${v}`);
    return v;
  };
}

/**
 * A flag that may be repeated (`--status ok --status failed`), each value through `each`; the values of every
 * repetition are split at commas too (`--status ok,failed`). yargs hands an array option a list, which the single-value
 * coercers refuse.
 */
export function listOf<T>(label: string, each: Coercer<T>, options: { commas?: boolean } = {}): Coercer<T[]> {
  return (value) => {
    const given = (Array.isArray(value) ? value : [value]) as unknown[];
    if (given.length === 0) throw new FlagError(`${label} needs a value`);
    const values = options.commas ? given.flatMap((v) => (typeof v === 'string' ? v.split(',') : [v])) : given;
    return values.map((v) => each(typeof v === 'string' ? v.trim() : v));
  };
}

/** A string that is not empty (a corpus key, a database name, an image). */
export function nonEmpty(label: string): Coercer<string> {
  return (value) => {
    const v = single(label, value);
    if (typeof v !== 'string' && typeof v !== 'number') throw new FlagError(`${label} needs a value`);
    return String(v);
  };
}

/**
 * A PostgreSQL connection URL: postgres:// or postgresql://, naming a host (in the authority or, for a Unix socket,
 * as ?host=). pg reads anything else as something: `not-a-url` becomes a host named "base", retried for a minute.
 * The message never repeats the value, which may hold a password.
 */
export function databaseUrl(label: string): Coercer<string> {
  return (value) => {
    const v = single(label, value);
    const problem = databaseUrlProblem(String(v));
    if (problem) throw new FlagError(`${label} ${problem}; give postgres://USER:PASSWORD@HOST:5432/DATABASE`);
    return String(v);
  };
}

/** Why `url` is not a usable PostgreSQL URL, or null when it is one. Says nothing of the URL's content. */
export function databaseUrlProblem(url: string): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'is not a URL (its value is not shown: it may hold a password)';
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:')
    return `has the scheme ${u.protocol.slice(0, 20)} where postgres: or postgresql: belongs`;
  if (u.hostname === '' && !u.searchParams.get('host')) return 'names no host';
  return null;
}

/** Why `dir` is not a directory this process may list and read, or null when it is one. */
function readableDirectoryProblem(dir: string): string | null {
  try {
    if (!statSync(dir).isDirectory()) return 'is not a directory';
    accessSync(dir, constants.R_OK | constants.X_OK);
    return null;
  } catch (err) {
    return fsProblem(err);
  }
}

/** An existing directory this process may list and read: a corpus root. Returned as given. */
export function readableDirectory(label: string): Coercer<string> {
  return (value) => {
    const v = String(single(label, value));
    const problem = readableDirectoryProblem(v);
    if (problem) throw new FlagError(`${label} must be a readable directory, got ${v} (${problem})`);
    return v;
  };
}

/**
 * An existing file this process may read (a certificate, a key), returned as an absolute path: it is handed to other
 * processes (local mode's runners) that may not share the working directory.
 */
export function readableFile(label: string): Coercer<string> {
  return (value) => {
    const v = String(single(label, value));
    let problem: string | null = null;
    try {
      if (!statSync(v).isFile()) problem = 'is not a file';
      else accessSync(v, constants.R_OK);
    } catch (err) {
      problem = fsProblem(err);
    }
    if (problem) throw new FlagError(`${label} must be a file this user may read, got ${v} (${problem})`);
    return path.resolve(v);
  };
}

/**
 * A directory this process may write to, created later if missing: then its nearest existing ancestor must be a
 * writable directory. For data and output directories, checked before anything starts that would fail on them.
 */
export function writableDirectory(label: string): Coercer<string> {
  return (value) => {
    const v = String(single(label, value));
    const problem = writableDirectoryProblem(path.resolve(v));
    if (problem) throw new FlagError(`${label} must be a directory this user may write, got ${v} (${problem})`);
    return v;
  };
}

/**
 * A file to create or replace: its directory must exist and be writable, and the name must not be a directory's. A
 * result is written where the user said, not in a tree made up from a typo. With `stdout`, `-` means standard output.
 * Returned as given.
 */
export function outputFile(label: string, options: { stdout?: boolean } = {}): Coercer<string> {
  return (value) => {
    const v = String(single(label, value));
    if (options.stdout && v === '-') return v;
    const file = path.resolve(v);
    let problem: string | null = null;
    try {
      if (statSync(file).isDirectory()) problem = 'is a directory; name the file to write';
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'ENOENT') problem = fsProblem(err);
    }
    problem ??= existingWritableDirectoryProblem(path.dirname(file));
    if (problem) throw new FlagError(`${label} must be a file this user may write, got ${v} (${problem})`);
    return v;
  };
}

function existingWritableDirectoryProblem(dir: string): string | null {
  try {
    if (!statSync(dir).isDirectory()) return `${dir} is not a directory`;
    accessSync(dir, constants.W_OK | constants.X_OK);
    return null;
  } catch (err) {
    return `${dir}: ${fsProblem(err)}`;
  }
}

function writableDirectoryProblem(dir: string): string | null {
  for (let d = dir, child: string | null = null; ; child = d, d = path.dirname(d)) {
    try {
      if (!statSync(d).isDirectory()) return child === null ? 'is not a directory' : `${d} is not a directory`;
      accessSync(d, constants.W_OK | constants.X_OK);
      return null;
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code !== 'ENOENT' || d === path.dirname(d))
        return child === null ? fsProblem(err) : `${d}: ${fsProblem(err)}`;
    }
  }
}

function fsProblem(err: unknown): string {
  switch ((err as { code?: unknown }).code) {
    case 'ENOENT':
      return 'not found';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'ENOTDIR':
      return 'a part of the path is not a directory';
    default:
      return err instanceof Error ? err.message : String(err);
  }
}

/**
 * For `.check()`: the database of a command that takes `--database-url` (already coerced by databaseUrl) or else
 * DATABASE_URL from the environment, which is checked the same way. `required`: the command cannot run without one
 * (local mode starts its embedded Postgres instead).
 */
export function checkDatabaseUrl(given: unknown, options: { required: boolean; env?: NodeJS.ProcessEnv }): true {
  if (given !== undefined) return true;
  const fromEnv = (options.env ?? process.env).DATABASE_URL;
  if (fromEnv) databaseUrl('DATABASE_URL')(fromEnv);
  else if (options.required) throw new FlagError('no database: pass --database-url or set DATABASE_URL');
  return true;
}

/**
 * For `.check()`: a whole number from a flag or, when the flag is absent, from the environment variable that stands in
 * for it in a pod (JOB_COMPLETION_INDEX, CPU_REQUEST_MILLIS). Throws a FlagError naming both when neither holds one.
 */
export function checkFlagOrEnv(
  flag: string,
  given: unknown,
  variable: string,
  range: { min: number; max?: number },
  options: { required: boolean; env?: NodeJS.ProcessEnv },
): true {
  if (given !== undefined) return true;
  const fromEnv = (options.env ?? process.env)[variable];
  if (fromEnv !== undefined && fromEnv !== '') wholeNumber(`${variable} (for ${flag})`, range)(fromEnv);
  else if (options.required) throw new FlagError(`no ${flag}: pass ${flag} N or set ${variable}`);
  return true;
}
