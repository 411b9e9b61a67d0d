import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PoolAcquireTimeoutError } from '../../../job-runner/pool/errors.js';
import { applicationNameFor } from '../../../contract/application-name.js';
import { Admission } from '../../../job-runner/pool/admission.js';
import { RunnerPool, type RunnerPoolOptions } from '../../../job-runner/pool/pool.js';
import { ManualClock } from '../../support/manual-clock.js';
import { startTestPostgres, type TestPostgres } from '../../support/postgres.js';
import { waitUntil } from '../../support/wait.js';

describe('RunnerPool against a real Postgres', () => {
  let db: TestPostgres;
  let url: string;
  const pools: RunnerPool[] = [];
  let names = 0;

  beforeAll(async () => {
    db = await startTestPostgres({ maxConnections: 60 });
    url = await db.createDatabase();
  });
  afterEach(async () => {
    await Promise.all(pools.splice(0).map((p) => p.close()));
  });
  afterAll(async () => db?.destroy());

  /** A pool with its own application_name, so pg_stat_activity tells its connections from everyone else's. */
  function makePool(options: Partial<RunnerPoolOptions> & { size: RunnerPoolOptions['size'] }) {
    const applicationName = applicationNameFor({ role: 'test', corpus: 'pool', shard: ++names });
    const pool = new RunnerPool({ connectionString: url, applicationName, statsIntervalMs: 0, ...options });
    pools.push(pool);
    return { pool, applicationName };
  }

  async function backends(applicationName: string): Promise<number[]> {
    const { rows } = await db.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [
      applicationName,
    ]);
    return rows.map((r) => r.pid);
  }

  it('opens its warm connections before anything is checked out, named for corpus and shard', async () => {
    const { pool, applicationName } = makePool({ size: { max: 5, warm: 3 } });
    expect(await backends(applicationName)).toHaveLength(0);
    await pool.open();
    expect(await backends(applicationName)).toHaveLength(3);
    expect(pool.stats()).toMatchObject({ total: 3, idle: 3, active: 0, acquires: 0 });
  });

  it('sets statement_timeout and idle_in_transaction_session_timeout on every connection at connect time', async () => {
    const { pool } = makePool({ size: { max: 1, warm: 1 }, statementTimeoutMs: 250, idleInTransactionTimeoutMs: 7000 });
    await pool.open();
    const { rows } = await pool.use((c) =>
      c.query(
        "SELECT current_setting('statement_timeout') AS st, current_setting('idle_in_transaction_session_timeout') AS iit",
      ),
    );
    expect(rows).toEqual([{ st: '250ms', iit: '7s' }]);
    await expect(pool.use((c) => c.query('SELECT pg_sleep(5)'))).rejects.toMatchObject({ code: '57014' });
  });

  it('asks the server to give up on a silent peer within 30 s: keepalives and tcp_user_timeout on every connection', async () => {
    const settings = (pool: RunnerPool) =>
      pool.use(async (c) => {
        // On a Unix socket the server ignores these and shows 0, so the test checks it is talking over TCP.
        const { rows } = await c.query<Record<string, string>>(
          `SELECT inet_server_addr() IS NOT NULL AS tcp, current_setting('tcp_keepalives_idle') AS idle,
                  current_setting('tcp_keepalives_interval') AS interval, current_setting('tcp_keepalives_count') AS count,
                  current_setting('tcp_user_timeout') AS user_timeout`,
        );
        return rows[0];
      });
    const { pool } = makePool({ size: { max: 2, warm: 2 } });
    await pool.open();
    expect(await settings(pool)).toEqual({ tcp: true, idle: '10', interval: '5', count: '3', user_timeout: '25000' });

    const { pool: tuned } = makePool({
      size: { max: 1, warm: 1 },
      serverKeepalive: { idleSeconds: 4, intervalSeconds: 2, count: 2, userTimeoutMs: 7000 },
    });
    await tuned.open();
    expect(await settings(tuned)).toEqual({ tcp: true, idle: '4', interval: '2', count: '2', user_timeout: '7000' });

    const { pool: untouched } = makePool({ size: { max: 1, warm: 1 }, serverKeepalive: false });
    await untouched.open();
    // The server's own settings (the OS's, over TCP): what a plain connection gets.
    const plain = await db.query(
      "SELECT current_setting('tcp_keepalives_idle') AS idle, current_setting('tcp_user_timeout') AS user_timeout",
    );
    expect(await settings(untouched)).toMatchObject(plain.rows[0]!);
    expect(plain.rows[0]).not.toMatchObject({ idle: '10' });
  });

  it('lets the server end the backend of a client that vanished mid-statement (client_connection_check_interval)', async () => {
    const { pool, applicationName } = makePool({ size: { max: 1, warm: 1 }, connectionCheckIntervalMs: 200 });
    await pool.open();
    const client = await pool.acquire();
    const [pid] = await backends(applicationName);
    expect((await client.query('SHOW client_connection_check_interval')).rows).toEqual([
      { client_connection_check_interval: '200ms' },
    ]);
    // As a SIGKILLed runner: the statement is under way on the server when the client's socket goes away.
    const sleeping = client.query('SELECT pg_sleep(60)').catch(() => 'gone');
    await waitUntil(
      'the statement to run on the server',
      async () =>
        (await db.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND query LIKE 'SELECT pg_sleep%'", [pid]))
          .rowCount === 1,
    );
    (client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
    await sleeping;
    // Without the setting the backend would sleep on for a minute, holding its connection slot.
    await waitUntil(
      'the server to end the backend',
      async () => (await db.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])).rowCount === 0,
      10_000,
    );
    client.release(new Error('socket destroyed by the test'));
  });

  it('never holds more than max connections under 50 concurrent acquires', async () => {
    const { pool, applicationName } = makePool({ size: { max: 4, warm: 2 } });
    await pool.open();
    let observed = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        observed = Math.max(observed, (await backends(applicationName)).length);
      }
    })();
    await Promise.all(Array.from({ length: 50 }, () => pool.use((c) => c.query('SELECT pg_sleep(0.02)'))));
    sampling = false;
    await sampler;
    expect(observed).toBe(4);
    expect(pool.stats()).toMatchObject({ peak: 4, acquires: 50, waiting: 0 });
  });

  it('gives up waiting with a PoolAcquireTimeoutError that names the pool size, not the database', async () => {
    const { pool } = makePool({ size: { max: 1, warm: 1 }, acquireTimeoutMs: 200 });
    await pool.open();
    const held = await pool.acquire();
    const err = await pool.acquire().catch((e: unknown) => e);
    held.release();
    expect(err).toBeInstanceOf(PoolAcquireTimeoutError);
    expect((err as Error).message).toMatch(/within \d+ ms: pool max 1, 1 in use, \d+ waiting$/);
    expect((err as Error).message).not.toContain('127.0.0.1');
  });

  it('hands out a recently used connection without a ping and pings one idle past the window', async () => {
    const clock = new ManualClock();
    const { pool } = makePool({ size: { max: 1, warm: 1 }, bypassWindowMs: 1000, clock });
    await pool.open();
    const use = () => pool.use((c) => c.query('SELECT 1'));
    await use();
    clock.advance(500);
    await use();
    expect(pool.stats()).toMatchObject({ pings: 0, bypassed: 2 });
    clock.advance(1500);
    await use();
    expect(pool.stats()).toMatchObject({ pings: 1, bypassed: 2 });
  });

  const modes = [
    { validation: 'always' as const, pings: 3 },
    { validation: 'never' as const, pings: 0 },
  ];
  for (const m of modes) {
    it(`with validation '${m.validation}' pings ${m.pings} of 3 checkouts`, async () => {
      const clock = new ManualClock();
      const { pool } = makePool({ size: { max: 1, warm: 1 }, validation: m.validation, clock });
      await pool.open();
      for (let i = 0; i < 3; i++) {
        clock.advance(i * 5000);
        await pool.use((c) => c.query('SELECT 1'));
      }
      expect(pool.stats().pings).toBe(m.pings);
    });
  }

  it('replaces connections killed with pg_terminate_backend before handing one out', async () => {
    const { pool, applicationName } = makePool({ size: { max: 3, warm: 3 }, validation: 'always' });
    await pool.open();
    const killed = await backends(applicationName);
    expect(killed).toHaveLength(3);
    await db.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [
      applicationName,
    ]);
    const pids = await Promise.all(
      [1, 2, 3].map(() =>
        pool.use(async (c) => (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid),
      ),
    );
    expect(pids.filter((p) => killed.includes(p))).toEqual([]);
    const s = pool.stats();
    expect(s.idleErrors + s.discarded).toBe(3);
    expect(s.opened).toBeGreaterThanOrEqual(4);
  });

  it('discards a connection that stopped answering when its ping times out, and hands out a fresh one', async () => {
    const clock = new ManualClock();
    const { pool } = makePool({ size: { max: 1, warm: 1 }, pingTimeoutMs: 300, clock });
    await pool.open();
    const client = await pool.acquire();
    const deafPid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    // The socket stops being read: to the pool this looks like a half-open connection (peer gone without a FIN).
    (client as unknown as { connection: { stream: { pause(): void } } }).connection.stream.pause();
    client.release();
    clock.advance(5000);
    const pid = await pool.use(
      async (c) => (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid,
    );
    expect(pid).not.toBe(deafPid);
    expect(pool.stats()).toMatchObject({ pings: 1, discarded: 1 });
  });

  it('retires each connection at its own jittered deadline', async () => {
    const clock = new ManualClock();
    const randoms = [0, 1];
    const { pool, applicationName } = makePool({
      size: { max: 2, warm: 2 },
      maxLifetimeMs: 10_000,
      lifetimeJitter: 0.1,
      clock,
      random: () => randoms.shift() ?? 0.5,
    });
    await pool.open(); // the two warm connections retire at +9 s and +11 s; later ones at +10 s after they open
    const originals = await backends(applicationName);
    const stillThere = async () => (await backends(applicationName)).filter((pid) => originals.includes(pid)).length;
    const useBoth = async () => {
      const [a, b] = [await pool.acquire(), await pool.acquire()];
      a.release();
      b.release();
    };
    clock.advance(9_500);
    await useBoth();
    expect(pool.stats()).toMatchObject({ retired: 1, opened: 3 });
    expect(await stillThere()).toBe(1);
    clock.advance(2_000);
    await useBoth();
    expect(pool.stats()).toMatchObject({ retired: 2, opened: 4 });
    expect(await stillThere()).toBe(0);
    expect(await backends(applicationName)).toHaveLength(2);
  });

  it('keeps "never retire" available: maxLifetimeMs 0', async () => {
    const clock = new ManualClock();
    const { pool } = makePool({ size: { max: 1, warm: 1 }, maxLifetimeMs: 0, clock });
    await pool.open();
    clock.advance(365 * 24 * 3600_000);
    await pool.use((c) => c.query('SELECT 1'));
    expect(pool.stats()).toMatchObject({ retired: 0, opened: 1 });
  });

  // Last: it restarts the server under every other pool of this file.
  it('recovers from a full Postgres restart in the middle of use', async () => {
    const { pool } = makePool({ size: { max: 2, warm: 2 }, acquireTimeoutMs: 60_000 });
    await pool.open();
    await pool.use((c) => c.query('SELECT 1'));
    await db.stop();
    const during = pool.use((c) => c.query<{ one: number }>('SELECT 1 AS one'));
    // A pod starting while the database is down waits in open() instead of failing.
    const { pool: late, applicationName } = makePool({ size: { max: 2, warm: 2 } });
    const opening = late.open();
    await db.start();
    expect((await during).rows).toEqual([{ one: 1 }]);
    await opening;
    expect(await backends(applicationName)).toHaveLength(2);
    expect(pool.stats().idleErrors).toBe(2);
    const after = await Promise.all([1, 2, 3].map(() => pool.use((c) => c.query('SELECT 1'))));
    expect(after).toHaveLength(3);
    expect(pool.stats().total).toBeLessThanOrEqual(2);
  });
});

describe('RunnerPool behind a transaction pooler', () => {
  const behind = (over: Partial<RunnerPoolOptions> = {}) =>
    new RunnerPool({
      connectionString: 'postgres://midi@pgbouncer.invalid:6432/midi',
      size: { max: 2, warm: 1 },
      applicationName: 'mco test',
      poolMode: 'transaction',
      ...over,
    });

  it('uses no named statements there, and does where it reaches the server itself', () => {
    expect(behind().namedStatements).toBe(false);
    expect(behind({ poolMode: 'direct' }).namedStatements).toBe(true);
  });

  it('refuses an admission: the server ledger needs a session of its own', () => {
    const admission = new Admission({
      connectionString: 'postgres://midi@pgbouncer.invalid:6432/midi',
      holder: applicationNameFor({ role: 'run', corpus: 'c', shard: 0, claim: 2 }),
      claim: 2,
      cap: { headroom: 2 },
    });
    expect(() => behind({ admission })).toThrow('behind a transaction pooler there is no server ledger to admit');
  });
});
