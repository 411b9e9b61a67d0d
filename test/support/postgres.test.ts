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
