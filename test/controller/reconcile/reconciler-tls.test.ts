import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresDatabaseAccess } from '../../../controller/reconcile/database.js';
import {
  makeTestCertificates,
  startTlsPostgres,
  type TestCertificates,
  type TlsTestPostgres,
} from '../../support/tls-postgres.js';
import { condition, setupReconciler } from './harness.js';

// The controller's own connections (the server ledger, max_connections) over TLS with the CA of spec.database.tls,
// read from its Secret through the API: on a real Postgres that refuses every connection in clear, serving
// certificates made for this file. What each refusal puts in status.

let certs: TestCertificates;
let db: TlsTestPostgres;
let url: string;
beforeAll(async () => {
  certs = await makeTestCertificates();
  db = await startTlsPostgres(certs);
  url = await db.createDatabase('controller_tls');
  await db.setHba(['hostssl all all 127.0.0.1/32 scram-sha-256', 'hostnossl all all 127.0.0.1/32 reject']);
});
afterAll(async () => {
  await db?.destroy();
  await certs?.remove();
});

const TLS_SPEC = { database: { secretRef: { name: 'db' }, tls: { secretRef: { name: 'db-ca' }, caKey: 'ca.crt' } } };

/** A reconciler whose Secret music/db holds `databaseUrl` and music/db-ca the CA in `caFile`. */
async function setup(databaseUrl: string, caFile: string) {
  const s = setupReconciler(
    {
      url: databaseUrl,
      database: (world) =>
        new PostgresDatabaseAccess({ readSecret: async (ns, name) => world.secrets.get(`${ns}/${name}`) }),
    },
    [{ name: 'a', uid: 'uid-a', spec: TLS_SPEC }],
  );
  s.world.setSecret('music/db-ca', { 'ca.crt': await readFile(caFile, 'utf8') });
  return s;
}

/** The corpus's URL with host `host` and sslmode `mode`. */
function urlFor(host: string, mode: string): string {
  const u = new URL(url);
  u.hostname = host;
  u.searchParams.set('sslmode', mode);
  return u.toString();
}

describe('the controller over TLS', () => {
  it('reads the server with verify-full and the CA from the Secret, and starts the scan', async () => {
    const { world, pass, corpus } = await setup(urlFor('localhost', 'verify-full'), certs.caFile);
    await pass('a');
    expect(world.writes).toEqual(['create a-scan parallelism=1']);
    // The pods get the same CA, from the same Secret, as files.
    const scanPod = world.job('a-scan')!.spec!.template.spec!;
    expect(scanPod.volumes).toContainEqual({
      name: 'database-tls',
      secret: { secretName: 'db-ca', items: [{ key: 'ca.crt', path: 'ca.crt' }], defaultMode: 0o444 },
    });
    await pass('a');
    // max_connections came from the server itself: the connection that read it was verified TLS (clear is refused).
    const shown = await db.admin<{ max_connections: string }>('SHOW max_connections');
    const maxConnections = Number(shown.rows[0]!.max_connections);
    expect(corpus('a').status?.budget).toMatchObject({ limit: maxConnections });
    expect(condition(corpus('a'), 'BudgetLimited')?.reason).not.toBe('DatabaseTlsRefused');
  });

  it('a CA that did not sign the server certificate: status names the Secret and key, nothing starts', async () => {
    const { world, pass, corpus } = await setup(urlFor('localhost', 'verify-full'), certs.otherCaFile);
    await pass('a');
    expect(world.writes.filter((w) => w.startsWith('create'))).toEqual([]);
    const budget = condition(corpus('a'), 'BudgetLimited');
    expect(budget).toMatchObject({ status: 'True', reason: 'DatabaseTlsRefused' });
    expect(budget?.message).toContain(
      "the server's certificate is not signed by the CA in Secret music/db-ca key ca.crt",
    );
    expect(JSON.stringify(corpus('a').status)).not.toContain(new URL(url).password);
  });

  describe('while the server shows a certificate for another host name', () => {
    beforeAll(() => db.serveCertificate(certs.otherHost));
    afterAll(() => db.serveCertificate(certs.server));

    it('verify-full is refused naming the host; verify-ca goes on', async () => {
      const full = await setup(urlFor('localhost', 'verify-full'), certs.caFile);
      await full.pass('a');
      expect(full.world.writes.filter((w) => w.startsWith('create'))).toEqual([]);
      expect(condition(full.corpus('a'), 'BudgetLimited')).toMatchObject({
        reason: 'DatabaseTlsRefused',
        message: expect.stringContaining(
          "the server's certificate is not for host localhost (it is for DNS:db.example.invalid)",
        ),
      });
      const chainOnly = await setup(urlFor('localhost', 'verify-ca'), certs.caFile);
      await chainOnly.pass('a');
      expect(chainOnly.world.writes).toEqual(['create a-scan parallelism=1']);
    });
  });

  describe('when the server has TLS switched off', () => {
    beforeAll(async () => {
      // In clear from here: the rules that refused it go too.
      await db.setHba(['host all all 127.0.0.1/32 scram-sha-256']);
      await db.admin('ALTER SYSTEM SET ssl = off');
      await db.admin('SELECT pg_reload_conf()');
    });

    it('require is refused with "does not accept TLS"', async () => {
      const { world, pass, corpus } = await setup(urlFor('127.0.0.1', 'require'), certs.caFile);
      await pass('a');
      expect(world.writes.filter((w) => w.startsWith('create'))).toEqual([]);
      expect(condition(corpus('a'), 'BudgetLimited')).toMatchObject({
        reason: 'DatabaseTlsRefused',
        message: expect.stringContaining('the server does not accept TLS (sslmode=require)'),
      });
    });
  });
});
