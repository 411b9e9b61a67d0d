import { execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI } from '../job-runner/runner/cli.js';

/**
 * The exit-code contract for usage and configuration errors, on the built CLI (`dist/cli/main.js`, the project's Node):
 * for every command's bad inputs, exit 64, exactly one line on stderr that names the flag (or the argument, or the
 * variable) and what would be valid, and no stack trace. For `local`, also that nothing was started or contacted: no
 * data directory, no postgres process, no connection to the database URL it was given.
 */

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

let tmp: string;
/** A file where a directory belongs. */
let aFile: string;
/** A directory nobody may read or write (mode 000; the CLI runs as another user when the tests run as root). */
let locked: string;
/** A listening socket standing in for a database: local mode must never connect to it on a usage error. */
let trap: net.Server;
let trapConnections = 0;
let trapUrl: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'mco-usage-'));
  aFile = path.join(tmp, 'a-file');
  await writeFile(aFile, 'not a directory');
  // Reachable by the unprivileged user that the permission cases run as.
  await chmod(tmp, 0o755);
  locked = path.join(tmp, 'locked');
  await mkdir(locked, { mode: 0o000 });
  trap = net.createServer((socket) => {
    trapConnections++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => trap.listen(0, '127.0.0.1', resolve));
  trapUrl = `postgres://user:s3cret@127.0.0.1:${(trap.address() as net.AddressInfo).port}/midi`;
});

afterAll(async () => {
  await new Promise((resolve) => trap.close(resolve));
  await chmod(locked, 0o755);
  await rm(tmp, { recursive: true, force: true });
});

/** Root reads and writes anything: the permission cases run the CLI as nobody (uid 65534) then, through setpriv. */
const AS_NOBODY = process.getuid?.() === 0 ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'] : [];

/** Runs the built CLI in `tmp` with no database in its environment unless `env` gives one. */
function cli(args: string[], env: Record<string, string> = {}, prefix: string[] = []): Promise<Exit> {
  const started = Date.now();
  const {
    DATABASE_URL: _d,
    JOB_COMPLETION_INDEX: _j,
    CPU_REQUEST_MILLIS: _c,
    POD_NAME: _p,
    ...inherited
  } = process.env;
  return new Promise((resolve) => {
    const [file, ...rest] = [...prefix, process.execPath, CLI, ...args];
    execFile(file!, rest, { cwd: tmp, env: { ...inherited, ...env }, timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** The contract: exit 64, one stderr line, from midi-corpus, matching `line`, without a stack trace or a secret. */
function expectUsageError(exit: Exit, line: RegExp): void {
  const lines = exit.stderr.trimEnd().split('\n');
  expect(exit.code, exit.stderr).toBe(64);
  expect(lines, 'exactly one line on stderr').toHaveLength(1);
  expect(lines[0]).toMatch(/^midi-corpus( [a-z-]+)?: /);
  expect(lines[0]).toMatch(line);
  expect(exit.stderr).not.toMatch(/^\s+at /m);
  expect(exit.stderr).not.toContain('s3cret');
}

type Case = [name: string, args: () => string[], line: RegExp, env?: () => Record<string, string>];

const PLAN = ['plan', '--files', '100', '--files-per-shard', '10', '--cpu', '1', '--max-connections', '30'];
/** The good plan command line with `flag` set to `value` (replaced where the line has it, else added). */
const planWith = (flag: string, value?: string) => {
  const i = PLAN.indexOf(flag);
  const set = value === undefined ? [flag] : [flag, value];
  return i < 0 ? [...PLAN, ...set] : [...PLAN.slice(0, i), ...set, ...PLAN.slice(i + 2)];
};
const planWithout = (flag: string) => {
  const i = PLAN.indexOf(flag);
  return [...PLAN.slice(0, i), ...PLAN.slice(i + 2)];
};
const DB = ['--database-url', 'postgres://db.invalid/midi'];

const cases: Record<string, Case[]> = {
  'midi-corpus': [
    ['no command', () => [], /Name a command/],
    ['an unknown command', () => ['frobnicate'], /unknown command frobnicate/],
    ['a mistyped command', () => ['plaan'], /unknown command plaan: did you mean plan\?/],
  ],
  plan: [
    ['a CPU that is not a quantity', () => planWith('--cpu', 'abc'), /--cpu must be a positive CPU quantity.*got abc/],
    ['a CPU of zero', () => planWith('--cpu', '0'), /--cpu must be a positive CPU quantity.*got 0/],
    ['zero files per shard', () => planWith('--files-per-shard', '0'), /--files-per-shard must be a whole number/],
    [
      'a warm fraction above one',
      () => planWith('--warm-fraction', '3'),
      /--warm-fraction must be a number in \(0, 1\]/,
    ],
    ['a negative file count', () => planWith('--files', '-5'), /--files must be a whole number ≥ 0, got -5/],
    ['a fractional file count', () => planWith('--files', '2.5'), /--files must be a whole number ≥ 0, got 2.5/],
    ['text for max-connections', () => planWith('--max-connections', 'abc'), /--max-connections must be .*got abc/],
    ['no parallelism', () => planWith('--max-parallelism', '0'), /--max-parallelism must be a whole number/],
    ['a negative reserve', () => planWith('--reserved', '-1'), /--reserved must be a whole number ≥ 0, got -1/],
    ['zero connections per worker', () => planWith('--connections-per-worker', '0'), /--connections-per-worker/],
    ['negative extra connections', () => planWith('--extra-connections', '-1'), /--extra-connections/],
    ['a fractional pool cap', () => planWith('--max-per-pod', '1.5'), /--max-per-pod must be a whole number/],
    ['a flag given twice', () => [...PLAN, '--files', '3'], /--files was given 2 times/],
    ['a flag with no value', () => [...planWithout('--files'), '--files'], /--files needs a value/],
    ['an unknown option', () => planWith('--bogus', '1'), /unknown option --bogus: `midi-corpus plan --help`/],
    ['a stray argument', () => [...PLAN, 'extra'], /unexpected argument extra/],
    ['a missing required flag', () => planWithout('--files'), /missing --files/],
    ['both sharding flags', () => planWith('--shards', '3'), /--files-per-shard and --shards exclude each other/],
    ['no CPU', () => planWithout('--cpu'), /give --cpu or --cpu-millis/],
    ['no runner fits', () => planWith('--max-connections', '3'), /No runner pod fits/],
  ],
  migrate: [
    ['a URL that is not one', () => ['migrate', '--database-url', 'not-a-url'], /--database-url is not a URL/],
    [
      'a URL of another scheme',
      () => ['migrate', '--database-url', 'http://u:s3cret@h/d'],
      /--database-url has the scheme http:/,
    ],
    ['a URL with no host', () => ['migrate', '--database-url', 'postgres:///d'], /--database-url names no host/],
    ['no database at all', () => ['migrate'], /no database: pass --database-url or set DATABASE_URL/],
    ['a bad DATABASE_URL', () => ['migrate'], /DATABASE_URL is not a URL/, () => ({ DATABASE_URL: 's3cret' })],
    ['a wait that is not a number', () => ['migrate', ...DB, '--wait-seconds', 'abc'], /--wait-seconds must be/],
    [
      'a CA file that does not exist',
      () => ['migrate', ...DB, '--ssl-root-cert', path.join(tmp, 'no-ca.crt')],
      /--ssl-root-cert must be a file this user may read, got .*no-ca\.crt \(not found\)/,
    ],
    [
      'a CA that is a directory',
      () => ['migrate', ...DB, '--ssl-root-cert', tmp],
      /--ssl-root-cert must be a file this user may read, got .* \(is not a file\)/,
    ],
    [
      'sslmode=prefer',
      () => ['migrate', '--database-url', 'postgres://u:s3cret@db.invalid/midi?sslmode=prefer'],
      /the database's TLS settings: sslmode=prefer is not supported: it falls back to an unencrypted connection/,
    ],
    [
      'sslmode=verify-full without a CA',
      () => ['migrate', '--database-url', 'postgres://u:s3cret@db.invalid/midi?sslmode=verify-full'],
      /sslmode=verify-full needs the CA that signed the server's certificate/,
    ],
    [
      'an unknown sslmode in DATABASE_URL',
      () => ['migrate'],
      /sslmode=verify-most is not one of disable, require, verify-ca, verify-full/,
      () => ({ DATABASE_URL: 'postgres://u:s3cret@db.invalid/midi?sslmode=verify-most' }),
    ],
    [
      'a client certificate without its key',
      () => ['migrate', '--database-url', 'postgres://db.invalid/midi?sslmode=require', '--ssl-cert', aFile],
      /a client certificate needs its key and a key its certificate/,
    ],
  ],
  scan: [
    [
      'a root that does not exist',
      () => ['scan', ...DB, '--corpus', 'c', '--shards', '1', '--root', path.join(tmp, 'gone')],
      /--root must be a readable directory, got .* \(not found\)/,
    ],
    [
      'a root that is a file',
      () => ['scan', ...DB, '--corpus', 'c', '--shards', '1', '--root', aFile],
      /--root must be a readable directory, got .* \(is not a directory\)/,
    ],
    ['no corpus', () => ['scan', ...DB, '--shards', '1', '--root', tmp], /missing --corpus/],
    [
      'an empty corpus key',
      () => ['scan', ...DB, '--corpus', '', '--shards', '1', '--root', tmp],
      /--corpus needs a value/,
    ],
    [
      'zero shards',
      () => ['scan', ...DB, '--corpus', 'c', '--shards', '0', '--root', tmp],
      /--shards must be a whole number ≥ 1/,
    ],
    ['no sharding', () => ['scan', ...DB, '--corpus', 'c', '--root', tmp], /give --files-per-shard or --shards/],
    [
      'a cap of zero',
      () => ['scan', ...DB, '--corpus', 'c', '--shards', '1', '--root', tmp, '--max-connections', '0'],
      /--max-connections must be a whole number ≥ 1/,
    ],
    [
      'a malformed URL',
      () => ['scan', '--database-url', 'nope', '--corpus', 'c', '--shards', '1', '--root', tmp],
      /--database-url is not a URL/,
    ],
  ],
  'run-shard': [
    [
      'no shard',
      () => ['run-shard', ...DB, '--corpus', 'c', '--root', tmp],
      /no --shard: pass --shard N or set JOB_COMPLETION_INDEX/,
    ],
    [
      'a negative shard',
      () => ['run-shard', ...DB, '--corpus', 'c', '--root', tmp, '--shard', '-1'],
      /--shard must be a whole number ≥ 0, got -1/,
    ],
    [
      'a bad completion index',
      () => ['run-shard', ...DB, '--corpus', 'c', '--root', tmp],
      /JOB_COMPLETION_INDEX \(for --shard\) must be a whole number ≥ 0, got x/,
      () => ({ JOB_COMPLETION_INDEX: 'x' }),
    ],
    [
      'a bad CPU request from the Downward API',
      () => ['run-shard', ...DB, '--corpus', 'c', '--root', tmp, '--shard', '0'],
      /CPU_REQUEST_MILLIS \(for --cpu-millis\) must be a whole number ≥ 1, got 0/,
      () => ({ CPU_REQUEST_MILLIS: '0' }),
    ],
    [
      'zero files per batch',
      () => ['run-shard', ...DB, '--corpus', 'c', '--root', tmp, '--shard', '0', '--batch-files', '0'],
      /--batch-files must be a whole number ≥ 1/,
    ],
    [
      'a root that does not exist',
      () => ['run-shard', ...DB, '--corpus', 'c', '--root', path.join(tmp, 'gone'), '--shard', '0'],
      /--root must be a readable directory/,
    ],
    [
      'no database',
      () => ['run-shard', '--corpus', 'c', '--root', tmp, '--shard', '0'],
      /no database: pass --database-url or set DATABASE_URL/,
    ],
  ],
  'generate-sample': [
    ['no directory', () => ['generate-sample'], /missing <dir>: usage midi-corpus generate-sample <dir>/],
    [
      'a file where the directory belongs',
      () => ['generate-sample', aFile],
      /<dir> must be a directory this user may write, got .* \(is not a directory\)/,
    ],
    [
      'a negative file count',
      () => ['generate-sample', path.join(tmp, 'g'), '--files', '-1'],
      /--files must be a whole number ≥ 0, got -1/,
    ],
    [
      'a seed that is not a number',
      () => ['generate-sample', path.join(tmp, 'g'), '--seed', 'abc'],
      /--seed must be a whole number ≥ 0, got abc/,
    ],
  ],
  controller: [
    [
      'a port out of range',
      () => ['controller', '--metrics-port', '70000'],
      /--metrics-port must be a whole number from 0 to 65535, got 70000/,
    ],
    [
      'a port that is not a number',
      () => ['controller', '--health-port', 'abc'],
      /--health-port must be a whole number from 0 to 65535, got abc/,
    ],
    ['an unknown option', () => ['controller', '--bogus'], /unknown option --bogus/],
  ],
  db: [
    ['a port of zero', () => ['db', '--port', '0'], /--port must be a whole number from 1 to 65535, got 0/],
    ['an unknown option', () => ['db', '--bogus'], /unknown option --bogus/],
  ],
};

/**
 * The result commands (report, export, query) read a database: local mode's, from --data-dir, unless a URL is given.
 * Each case runs twice below, as local's do: once for the embedded database (nothing may appear in the data directory,
 * no postgres may run on it) and once with DATABASE_URL naming the trap (which must see no connection).
 */
const RESULT_CASES: Case[] = [
  [
    'report: a port that is not a number',
    () => ['report', '--port', 'abc'],
    /--port must be a whole number from 1 to 65535, got abc/,
  ],
  [
    'report: a malformed --database-url',
    () => ['report', '--database-url', 'not-a-url'],
    /--database-url is not a URL/,
  ],
  [
    'report: a malformed DATABASE_URL',
    () => ['report'],
    /DATABASE_URL has the scheme junk: where postgres: or postgresql: belongs/,
    () => ({ DATABASE_URL: 'junk:s3cret' }),
  ],
  ['report: an empty corpus key', () => ['report', '--corpus', ''], /--corpus needs a value/],
  [
    'report: an output that is a directory',
    () => ['report', '-o', tmp],
    /--output must be a file this user may write, got .* \(is a directory; name the file to write\)/,
  ],
  [
    'report: an output in a directory that does not exist',
    () => ['report', '-o', path.join(tmp, 'gone', 'r.html')],
    /--output must be a file this user may write, got .*gone\/r\.html \(.*gone: not found\)/,
  ],
  // Each command its own directory: the cases run concurrently, and each looks for any process naming its directory.
  [
    'report: a data directory that holds no database',
    () => ['report', '--data-dir', path.join(tmp, 'no-cluster-report')],
    /^midi-corpus report: no local-mode database in .*no-cluster-report .*give --data-dir the directory a `midi-corpus local` run used$/,
  ],
  ['report: an unknown option', () => ['report', '--bogus'], /unknown option --bogus: `midi-corpus report --help`/],
  ['export: a status with no value', () => ['export', '--status'], /--status needs a value/],
  ['export: a status that is no word', () => ['export', '--status', 'ok;drop'], /--status: "ok;drop" is not a status/],
  [
    'export: a tempo that is not a number',
    () => ['export', '--tempo-min', 'fast'],
    /--tempo-min must be a number above 0, got fast/,
  ],
  ['export: a tempo of zero', () => ['export', '--tempo-max', '0'], /--tempo-max must be a number above 0, got 0/],
  [
    'export: a tempo range upside down',
    () => ['export', '--tempo-min', '140', '--tempo-max', '90'],
    /--tempo-min: 140 is above --tempo-max 90/,
  ],
  ['export: a key that is not one', () => ['export', '--key', 'H minor'], /--key: "H minor" is not a key/],
  ['export: a meter that is not one', () => ['export', '--meter', '4/3'], /--meter: "4\/3" is not a meter/],
  [
    'export: an instrument that is not one',
    () => ['export', '--instrument', 'kazoo'],
    /--instrument: "kazoo" is neither/,
  ],
  ['export: an instrument with no value', () => ['export', '--instrument'], /--instrument needs a value/],
  [
    'export: a format that is not one',
    () => ['export', '--format', 'xml'],
    /--format must be one of csv, jsonl, parquet, got xml/,
  ],
  [
    'export: zero rows per fetch',
    () => ['export', '--fetch-size', '0'],
    /--fetch-size must be a whole number ≥ 1, got 0/,
  ],
  [
    'export: a row group size that is not a number',
    () => ['export', '--row-group-size', 'abc'],
    /--row-group-size must be a whole number ≥ 1, got abc/,
  ],
  ['export: a port out of range', () => ['export', '--port', '70000'], /--port must be a whole number from 1 to 65535/],
  ['export: a malformed --database-url', () => ['export', '--database-url', 'nope'], /--database-url is not a URL/],
  [
    'export: an output in a directory that does not exist',
    () => ['export', '-o', path.join(tmp, 'gone', 'files.csv')],
    /--output must be a file this user may write, got .*gone\/files\.csv \(.*gone: not found\)/,
  ],
  [
    'export: a data directory that holds no database',
    () => ['export', '--data-dir', path.join(tmp, 'no-cluster-export')],
    /^midi-corpus export: no local-mode database in .*no-cluster-export /,
  ],
  ['query: no statement', () => ['query'], /missing <sql>: usage midi-corpus query <sql>/],
  ['query: an empty statement', () => ['query', ''], /<sql> needs a value/],
  ['query: a blank statement', () => ['query', '  '], /<sql> needs a statement/],
  ['query: both formats', () => ['query', 'SELECT 1', '--csv', '--json'], /--csv and --json exclude each other/],
  [
    'query: a port of zero',
    () => ['query', 'SELECT 1', '--port', '0'],
    /--port must be a whole number from 1 to 65535, got 0/,
  ],
  [
    'query: a URL of another scheme',
    () => ['query', 'SELECT 1', '--database-url', 'mysql://u:s3cret@db/x'],
    /--database-url has the scheme mysql: where postgres: or postgresql: belongs/,
  ],
  [
    'query: a data directory that holds no database',
    () => ['query', 'SELECT 1', '--data-dir', path.join(tmp, 'no-cluster-query')],
    /^midi-corpus query: no local-mode database in .*no-cluster-query /,
  ],
];

describe('usage and configuration errors: one line, exit 64', () => {
  for (const [command, table] of Object.entries(cases)) {
    describe.concurrent(command, () => {
      it.each(table)('%s', async (name, args, line, env) => {
        const exit = await cli(args(), env?.());
        expectUsageError(exit, line);
        if (name === 'no runner fits') {
          // The plan still goes to stdout: its figures say why nothing fits.
          expect(exit.stdout).toMatch(/parallelism\s+0 pods/);
        }
      });
    });
  }

  it.each<[string, () => string[], RegExp]>([
    [
      'local on a directory it may not read',
      () => ['local', locked],
      /<dir> must be a readable directory, got .*locked \(permission denied\)/,
    ],
    [
      'scan of a root it may not read',
      () => ['scan', ...DB, '--corpus', 'c', '--shards', '1', '--root', locked],
      /--root must be a readable directory, got .*locked \(permission denied\)/,
    ],
    [
      'local with a data directory it may not write',
      () => ['local', tmp, '--data-dir', path.join(locked, 'data')],
      /--data-dir must be a directory this user may write, got .*locked\/data \(permission denied\)/,
    ],
    [
      'report to a directory it may not write',
      () => ['report', '-o', path.join(locked, 'r.html')],
      /--output must be a file this user may write, got .*locked\/r\.html \(permission denied\)/,
    ],
    [
      'export to a directory it may not write',
      () => ['export', '-o', path.join(locked, 'files.csv')],
      /--output must be a file this user may write, got .*locked\/files\.csv \(permission denied\)/,
    ],
    [
      'generate-sample into a directory it may not write',
      () => ['generate-sample', path.join(locked, 'songs')],
      /<dir> must be a directory this user may write, got .*locked\/songs \(permission denied\)/,
    ],
  ])('%s', async (_name, args, line) => {
    expectUsageError(await cli(args(), {}, AS_NOBODY), line);
  });

  it('migrate refuses a malformed URL at once, without retrying a host made up from it', async () => {
    const exit = await cli(['migrate', '--database-url', 'not-a-url', '--wait-seconds', '60']);
    expectUsageError(exit, /--database-url is not a URL/);
    expect(exit.ms).toBeLessThan(10_000);
    expect(exit.stderr).not.toMatch(/retrying|ENOTFOUND/);
  });
});

/** Processes whose command line mentions `text` (a postgres started on a data directory names it with -D). */
function processesMentioning(text: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (cmdline.includes(text)) found.push(`${entry}: ${cmdline}`);
    } catch {
      // The process ended while we looked.
    }
  }
  return found;
}

const LOCAL_CASES: Case[] = [
  ['no directory', () => ['local'], /missing <dir>: usage midi-corpus local <dir>/],
  [
    'a directory that does not exist',
    () => ['local', path.join(tmp, 'gone')],
    /<dir> must be a readable directory, got .* \(not found\)/,
  ],
  [
    'a file where the directory belongs',
    () => ['local', aFile],
    /<dir> must be a readable directory, got .* \(is not a directory\)/,
  ],
  ['a malformed --database-url', () => ['local', tmp, '--database-url', 'not-a-url'], /--database-url is not a URL/],
  [
    'a malformed DATABASE_URL',
    () => ['local', tmp],
    /DATABASE_URL has the scheme junk: where postgres: or postgresql: belongs/,
    () => ({ DATABASE_URL: 'junk:s3cret' }),
  ],
  ['a port out of range', () => ['local', tmp, '--port', '70000'], /--port must be a whole number from 1 to 65535/],
  [
    'zero files per shard',
    () => ['local', tmp, '--files-per-shard', '0'],
    /--files-per-shard must be a whole number ≥ 1/,
  ],
  [
    'both sharding flags',
    () => ['local', tmp, '--files-per-shard', '5', '--shards', '2'],
    /--files-per-shard and --shards exclude each other/,
  ],
  ['zero runners', () => ['local', tmp, '--max-runners', '0'], /--max-runners must be a whole number ≥ 1/],
  [
    'no CPU per runner',
    () => ['local', tmp, '--cpu-millis-per-runner', '0'],
    /--cpu-millis-per-runner must be a whole number ≥ 1/,
  ],
  [
    'attempts that are not a number',
    () => ['local', tmp, '--shard-attempts', 'x'],
    /--shard-attempts must be a whole number ≥ 1, got x/,
  ],
  [
    'a warm fraction above one',
    () => ['local', tmp, '--warm-fraction', '3'],
    /--warm-fraction must be a number in \(0, 1\]/,
  ],
  ['a cap of zero', () => ['local', tmp, '--max-connections', '0'], /--max-connections must be a whole number ≥ 1/],
  ['a negative headroom', () => ['local', tmp, '--headroom', '-1'], /--headroom must be a whole number ≥ 0/],
  [
    'a data directory under a file',
    () => ['local', tmp, '--data-dir', path.join(aFile, 'data')],
    /--data-dir must be a directory this user may write/,
  ],
  [
    'a split output that is a file',
    () => ['local', tmp, '--split-output', aFile],
    /--split-output must be a directory this user may write/,
  ],
  ['an unknown option', () => ['local', tmp, '--bogus'], /unknown option --bogus: `midi-corpus local --help`/],
  [
    'a CA file that does not exist',
    () => ['local', tmp, '--ssl-root-cert', path.join(tmp, 'no-ca.crt')],
    /--ssl-root-cert must be a file this user may read/,
  ],
];

/**
 * Each case twice: with the embedded Postgres (no data directory may appear, no postgres may run on it), and with a
 * database URL (the socket behind it must see no connection). `withDataDir` adds the case's own data directory to a
 * command line that names none; the cases whose names match `needsNoUrl` are about the database URL or the data
 * directory themselves and run only the first way.
 */
function nothingStartedOrContacted(
  cases: Case[],
  needsNoUrl: RegExp,
  withDataDir: (given: string[], dataDir: string) => string[],
): void {
  describe.concurrent('embedded', () => {
    it.each(cases)('%s', async (name, args, line, env) => {
      const own = path.join(tmp, `data-${name.replace(/\W+/g, '-')}`);
      const given = withDataDir(args(), own);
      const dataDir = given.includes('--data-dir') ? given[given.indexOf('--data-dir') + 1]! : own;
      const exit = await cli(given, env?.());
      expectUsageError(exit, line);
      expect(existsSync(dataDir), 'no data directory created').toBe(false);
      expect(existsSync(path.join(tmp, '.data')), 'nor the default one').toBe(false);
      expect(processesMentioning(dataDir), 'no postgres on it').toEqual([]);
    });
  });

  describe('with a database URL', () => {
    it.each(cases.filter(([name]) => !needsNoUrl.test(name)))('%s', async (_name, args, line) => {
      const before = trapConnections;
      const exit = await cli(args(), { DATABASE_URL: trapUrl });
      expectUsageError(exit, line);
      // The listener counts every connection it accepts; give a straggler time to arrive before saying none did.
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(trapConnections - before, 'no connection to the database').toBe(0);
    });
  });
}

describe('local: every check before a database is started or contacted', () => {
  nothingStartedOrContacted(LOCAL_CASES, /URL/, (given, dataDir) =>
    given.includes('--data-dir') || given.length < 2 ? given : [...given, '--data-dir', dataDir],
  );

  it('the trap does count a connection: local mode with good flags reaches it', async () => {
    // Without this the "no connection" checks above could pass on a listener that never counts. Local mode keeps
    // retrying a database that hangs up; the first connection is all this needs, then it is stopped.
    const before = trapConnections;
    const child = spawn(process.execPath, [CLI, 'local', tmp, '--data-dir', path.join(tmp, 'data-good')], {
      cwd: tmp,
      env: { ...process.env, DATABASE_URL: trapUrl },
      stdio: 'ignore',
    });
    try {
      const deadline = Date.now() + 20_000;
      while (trapConnections === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(trapConnections - before).toBeGreaterThan(0);
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('report, export, query: every check before a database is started or contacted', () => {
  nothingStartedOrContacted(RESULT_CASES, /URL|url|data directory/, (given, dataDir) =>
    given.includes('--data-dir') ? given : [...given, '--data-dir', dataDir],
  );

  it('the trap does count a connection: query with good flags reaches it', async () => {
    // The control for the cases above: the same command line, minus the mistake, connects.
    const before = trapConnections;
    const exit = await cli(['query', 'SELECT 1'], { DATABASE_URL: trapUrl });
    expect(exit.code, exit.stderr).not.toBe(0);
    expect(exit.stderr).not.toContain('s3cret');
    expect(trapConnections - before).toBeGreaterThan(0);
  });
});
