import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TlsRefusedError } from '../../../contract/database-tls.js';
import { databaseErrorKind } from '../../../job-runner/pool/errors.js';
import { RunnerPool } from '../../../job-runner/pool/pool.js';
import type { LocalRunReport } from '../../../job-runner/local/report.js';
import { DEFAULT_LEDGER_DATABASE } from '../../../contract/ledger.js';
import { DEFAULT_POOL_TUNING } from '../../../contract/pool-sizing.js';
import { runShardArgs } from '../../../contract/run-shard-command.js';
import { tlsFlags } from '../../../contract/tls-options.js';
import {
  makeTestCertificates,
  startTlsPostgres,
  type TestCertificates,
  type TlsTestPostgres,
} from '../../support/tls-postgres.js';
import { lastJson, runCli, writeCorpus } from '../runner/cli.js';

// sslmode with libpq's meaning, against a real Postgres serving certificates made for this file: what the server
// itself says of each connection (pg_stat_ssl) and what a refusal says.

let certs: TestCertificates;
let db: TlsTestPostgres;

beforeAll(async () => {
  certs = await makeTestCertificates();
  db = await startTlsPostgres(certs);
});
afterAll(async () => {
  await db?.destroy();
  await certs?.remove();
});

/** Opens the runner's pool on `url` and asks the server whether this very connection is encrypted. */
async function sslOfConnection(url: string): Promise<{ ssl: boolean; version: string | null }> {
  const pool = new RunnerPool({
    connectionString: url,
    size: { max: 1, warm: 1 },
    applicationName: 'mco tls-test',
    statsIntervalMs: 0,
    openTimeoutMs: 2_000,
  });
  try {
    await pool.open();
    return await pool.use(async (c) => {
      const r = await c.query<{ ssl: boolean; version: string | null }>(
        'SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()',
      );
      return r.rows[0]!;
    });
  } finally {
    await pool.close();
  }
}

/** The error opening the pool on `url` ends with. */
async function refusal(url: string): Promise<Error> {
  const err = await sslOfConnection(url).then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  if (!err) throw new Error('the connection was not refused');
  return err;
}

describe('sslmode against a server with TLS', () => {
  it('verify-full with the CA connects encrypted, as the server sees it', async () => {
    const seen = await sslOfConnection(db.urlWith({ sslmode: 'verify-full', sslrootcert: certs.caFile }, 'localhost'));
    expect(seen.ssl).toBe(true);
    expect(seen.version).toMatch(/^TLSv1\.[23]$/);
  });

  it('verify-full checks an IP address against the certificate too', async () => {
    const seen = await sslOfConnection(db.urlWith({ sslmode: 'verify-full', sslrootcert: certs.caFile }, '127.0.0.1'));
    expect(seen.ssl).toBe(true);
  });

  it('disable connects in clear', async () => {
    expect((await sslOfConnection(db.urlWith({ sslmode: 'disable' }))).ssl).toBe(false);
    // No sslmode is disable too (node-postgres' default; libpq's prefer is refused, see the contract's tests).
    expect((await sslOfConnection(db.url)).ssl).toBe(false);
  });

  it('require encrypts without a CA, and does not verify the server', async () => {
    expect((await sslOfConnection(db.urlWith({ sslmode: 'require' }))).ssl).toBe(true);
  });

  it('a CA that did not sign the server certificate is refused, naming the CA file', async () => {
    const err = await refusal(db.urlWith({ sslmode: 'verify-full', sslrootcert: certs.otherCaFile }, 'localhost'));
    expect(err).toBeInstanceOf(TlsRefusedError);
    expect(err.message).toContain(`the server's certificate is not signed by the CA in ${certs.otherCaFile}`);
    expect(databaseErrorKind(err)).toBe('permanent');
    expect(err.message).not.toContain(new URL(db.url).password);
  });

  it('require with a CA verifies the chain, as libpq does', async () => {
    const err = await refusal(db.urlWith({ sslmode: 'require', sslrootcert: certs.otherCaFile }));
    expect(err.message).toContain("the server's certificate is not signed by the CA in");
    expect((await sslOfConnection(db.urlWith({ sslmode: 'require', sslrootcert: certs.caFile }))).ssl).toBe(true);
  });

  it('a CA file that cannot be read is a configuration error naming the file', async () => {
    const missing = path.join(certs.dir, 'no-such.crt');
    expect(
      () =>
        new RunnerPool({
          connectionString: db.urlWith({ sslmode: 'verify-full', sslrootcert: missing }),
          size: { max: 1, warm: 1 },
          applicationName: 'mco tls-test',
        }),
    ).toThrow(`cannot read the sslrootcert file ${missing}: not found`);
  });

  describe('while the server shows a certificate for another host name', () => {
    beforeAll(() => db.serveCertificate(certs.otherHost));
    afterAll(() => db.serveCertificate(certs.server));

    it('verify-ca accepts it (the chain is good) and verify-full refuses it, naming the host', async () => {
      expect(
        (await sslOfConnection(db.urlWith({ sslmode: 'verify-ca', sslrootcert: certs.caFile }, 'localhost'))).ssl,
      ).toBe(true);
      const err = await refusal(db.urlWith({ sslmode: 'verify-full', sslrootcert: certs.caFile }, 'localhost'));
      expect(err).toBeInstanceOf(TlsRefusedError);
      expect(err.message).toBe(
        "the server's certificate is not for host localhost (it is for DNS:db.example.invalid); sslmode=verify-full",
      );
      expect(databaseErrorKind(err)).toBe('permanent');
    });
  });

  describe('when the server asks for a client certificate (pg_hba: hostssl … cert)', () => {
    beforeAll(() => db.setHba(['hostssl all all 127.0.0.1/32 cert', 'host all all 127.0.0.1/32 reject']));
    afterAll(() => db.setHba(['host all all 127.0.0.1/32 scram-sha-256']));

    it('connects with the client certificate and key, and is refused without them', async () => {
      const withCert = db.urlWith({
        sslmode: 'verify-full',
        sslrootcert: certs.caFile,
        sslcert: certs.client.cert,
        sslkey: certs.client.key,
      });
      expect((await sslOfConnection(withCert)).ssl).toBe(true);
      const err = await refusal(db.urlWith({ sslmode: 'verify-full', sslrootcert: certs.caFile }));
      expect(databaseErrorKind(err)).toBe('permanent');
      expect((err as { code?: string }).code).toBe('28000');
    });
  });

  describe('when the server has TLS switched off', () => {
    beforeAll(async () => {
      await db.admin('ALTER SYSTEM SET ssl = off');
      await db.admin('SELECT pg_reload_conf()');
    });
    afterAll(async () => {
      await db.query('ALTER SYSTEM SET ssl = on');
      await db.query('SELECT pg_reload_conf()');
    });

    it('require is refused with "does not accept TLS", at once and for good', async () => {
      const err = await refusal(db.urlWith({ sslmode: 'require' }));
      expect(err).toBeInstanceOf(TlsRefusedError);
      expect(err.message).toBe(
        'the server does not accept TLS (sslmode=require); enable ssl on the server, or say sslmode=disable',
      );
      expect(databaseErrorKind(err)).toBe('permanent');
    });
  });
});

const CAP = { maxConnections: 12, headroom: 2, ledgerDatabase: DEFAULT_LEDGER_DATABASE };

/** The real commands, as a user runs them: every connection of local mode and its runners over verified TLS. */
describe('midi-corpus local over TLS', () => {
  let tmp: string;
  let database: string;
  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'mco-local-tls-'));
    database = await db.createDatabase('tls_local');
    // Clear connections are refused from here on: a single one opened without TLS would fail the run.
    await db.setHba(['hostssl all all 127.0.0.1/32 scram-sha-256', 'hostnossl all all 127.0.0.1/32 reject']);
  });
  afterAll(async () => {
    await db.setHba(['host all all 127.0.0.1/32 scram-sha-256']);
    await rm(tmp, { recursive: true, force: true });
  });

  it('ingests a corpus with --ssl-root-cert and sslmode=verify-full: every file once, the cap held', async () => {
    const FILES = 12;
    const root = path.join(tmp, 'corpus');
    await writeCorpus(root, { files: FILES, size: 'small' });
    const url = new URL(database);
    url.hostname = 'localhost';
    url.searchParams.set('sslmode', 'verify-full');
    // An observer of its own, through pg alone (node-postgres' no-verify: encrypted, unverified, as pg_hba now
    // demands), counting every client backend of the server.
    const observer = new pg.Client({ connectionString: `${db.url}?sslmode=no-verify`, application_name: 'observer' });
    await observer.connect();
    let peak = 0;
    let samples = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const { rows } = await observer.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'client backend'",
        );
        peak = Math.max(peak, rows[0]!.n);
        samples++;
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    // 12 − 3 reserved − 2 headroom = 7 for everyone: the observer (another application), local mode's 1, runners of 2.
    const exit = await runCli(
      [
        'local',
        root,
        '--files-per-shard',
        '4',
        '--max-connections',
        '12',
        '--ssl-root-cert',
        certs.caFile,
        '--data-dir',
        path.join(tmp, 'data'),
        '--json',
      ],
      { DATABASE_URL: url.toString() },
    );
    sampling = false;
    await sampler;
    await observer.end();
    expect(exit.code, exit.stderr.slice(-3000)).toBe(0);
    const report = lastJson<LocalRunReport>(exit);
    expect({ outcome: report.outcome, files: report.files.ok, recorded: report.thisRun.recorded.ok }).toEqual({
      outcome: 'complete',
      files: FILES,
      recorded: FILES,
    });
    const rows = await db.admin<{ ok: number; analysed: number }>(
      `SELECT count(*) FILTER (WHERE f.status = 'ok')::int AS ok, count(a.file_id)::int AS analysed
         FROM midi.files f LEFT JOIN midi.file_analysis a ON a.file_id = f.id`,
      'tls_local',
    );
    expect(rows.rows[0]).toEqual({ ok: FILES, analysed: FILES });
    expect(samples).toBeGreaterThan(1);
    expect(peak).toBeGreaterThan(2);
    expect(peak).toBeLessThanOrEqual(7);
  });

  it("runs scan and run-shard as the operator's pods do: the URL from the environment, the CA by flag", async () => {
    const root = path.join(tmp, 'pod-corpus');
    await writeCorpus(root, { files: 3, size: 'small' });
    const url = new URL(database);
    url.hostname = 'localhost';
    url.searchParams.set('sslmode', 'verify-full');
    const env = { DATABASE_URL: url.toString(), JOB_COMPLETION_INDEX: '0' };
    const tls = { rootCert: certs.caFile };
    const scan = await runCli(
      ['scan', '--corpus', 'pods', '--root', root, '--shards', '1', ...tlsFlags(tls), '--json'],
      env,
    );
    expect(scan.code, scan.stderr.slice(-2000)).toBe(0);
    // The command line the run Job's pod template carries (contract/run-shard-command.ts), with the CA's path.
    const args = runShardArgs({ corpus: 'pods', root, pool: DEFAULT_POOL_TUNING, cap: CAP, tls });
    const run = await runCli(args, env);
    expect(run.code, run.stderr.slice(-2000)).toBe(0);
    expect(lastJson<{ recorded: { ok: number } }>(run).recorded.ok).toBe(3);
  });

  it('stops at once on a CA that did not sign the server certificate, saying so in one line', async () => {
    const root = path.join(tmp, 'refused');
    await writeCorpus(root, { files: 2 });
    const url = new URL(database);
    url.searchParams.set('sslmode', 'verify-full');
    const exit = await runCli(
      ['local', root, '--ssl-root-cert', certs.otherCaFile, '--data-dir', path.join(tmp, 'data-refused')],
      { DATABASE_URL: url.toString() },
    );
    expect(exit.code).toBe(64);
    // Info lines come first off a terminal (LOG_LEVEL info); the person's line is the last, and names the cause.
    expect(exit.stderr.trim().split('\n').at(-1)).toMatch(
      new RegExp(
        `^midi-corpus local: the server's certificate is not signed by the CA in ${certs.otherCaFile} ` +
          '\\([A-Z_]+\\); sslmode=verify-full$',
      ),
    );
    expect(exit.stderr).not.toContain(new URL(database).password);
  });
});
