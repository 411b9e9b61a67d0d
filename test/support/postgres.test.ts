import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostgres, type TestPostgres } from './postgres.js';

describe('the test Postgres', () => {
  let db: TestPostgres;
  beforeAll(async () => {
    db = await startTestPostgres({ maxConnections: 23 });
  });
  afterAll(async () => db?.destroy());

  it('is a real server with the settings asked for, and survives a restart with its data', async () => {
    expect((await db.query('SHOW max_connections')).rows[0]).toEqual({ max_connections: '23' });
    const url = await db.createDatabase('restart_probe');
    const pg = (await import('pg')).default;
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query('CREATE TABLE t (x int); INSERT INTO t VALUES (42)');
    await c.end();
    await db.stop();
    await db.start();
    const c2 = new pg.Client({ connectionString: url });
    await c2.connect();
    expect((await c2.query('SELECT x FROM t')).rows).toEqual([{ x: 42 }]);
    await c2.end();
  });
});

describe('a test Postgres listening beyond 127.0.0.1', () => {
  it('accepts password logins on the extra address from the network given, and on 127.0.0.1 as before', async () => {
    const db = await startTestPostgres({ listen: [{ address: '127.0.0.3', clients: '127.0.0.0/8' }] });
    try {
      const pg = (await import('pg')).default;
      for (const host of ['127.0.0.3', '127.0.0.1']) {
        const url = new URL(db.url);
        url.hostname = host;
        const c = new pg.Client({ connectionString: url.toString() });
        await c.connect();
        expect((await c.query<{ addr: string }>('SELECT host(inet_server_addr()) AS addr')).rows[0]!.addr).toBe(host);
        await c.end();
      }
      const hba = (
        await db.query<{ address: string | null; auth_method: string }>(
          "SELECT address, auth_method FROM pg_hba_file_rules WHERE address = '127.0.0.0'",
        )
      ).rows;
      expect(hba).toEqual([{ address: '127.0.0.0', auth_method: 'scram-sha-256' }]);
    } finally {
      await db.destroy();
    }
  });
});
