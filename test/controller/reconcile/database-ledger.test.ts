import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { applicationNameFor } from '../../../contract/application-name.js';
import { PostgresDatabaseAccess } from '../../../controller/reconcile/database.js';
import { ManualClock } from '../../support/manual-clock.js';
import { startTestPostgres, type TestPostgres } from '../../support/postgres.js';
import { waitUntil } from '../../support/wait.js';
import { condition, setupReconciler } from './harness.js';

// PostgresDatabaseAccess's ledger and endBackends on a real server, as the superuser, as an ordinary role (which may
// not see the details of other users' sessions) and as one with pg_monitor; then the reconcile ending the backends
// of a pod that no longer exists.
let db: TestPostgres;
let url: string;
/** The corpus database's URL as another role. */
const as = (role: string) => {
  const u = new URL(url);
  u.username = role;
  u.password = `${role}-pw`;
  return u.toString();
};
const clients: pg.Client[] = [];
/** A session that stays open until the test ends, on the corpus database unless `connectionString` says otherwise. */
async function session(applicationName: string, connectionString = url): Promise<pg.Client & { ended?: unknown }> {
  const c: pg.Client & { ended?: unknown } = new pg.Client({ connectionString, application_name: applicationName });
  c.on('error', (err) => (c.ended = err));
  await c.connect();
  clients.push(c);
  return c;
}
const pidOf = async (c: pg.Client) => (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
const names = async () =>
  (await db.query<{ application_name: string }>('SELECT application_name FROM pg_stat_activity')).rows.map(
    (r) => r.application_name,
  );

beforeAll(async () => {
  db = await startTestPostgres({ maxConnections: 30 });
  url = await db.createDatabase();
  await db.query("CREATE ROLE plain LOGIN PASSWORD 'plain-pw'");
  await db.query("CREATE ROLE monitor LOGIN PASSWORD 'monitor-pw' IN ROLE pg_monitor");
});
afterEach(async () => {
  for (const c of clients.splice(0)) await c.end().catch(() => {});
});
afterAll(async () => db?.destroy());

const access = (o: { clock?: ManualClock } = {}) =>
  new PostgresDatabaseAccess({ readSecret: async () => undefined, ...o });
const holder = applicationNameFor({ role: 'run', corpus: 'music/a', shard: 0, pod: 'a-run-0-bcdfg', claim: 3 });

describe('PostgresDatabaseAccess.ledger', () => {
  it('reads every session but its own through the ledger database: claims, other applications, exactly as the superuser', async () => {
    await session(holder);
    await session('grafana');
    const { picture, sessions } = await access().ledger('k', { url }, 'postgres');
    expect(picture.exact).toBe(true);
    expect(picture.holders.get(holder)).toEqual({ claim: 3, live: 1 });
    expect(picture.unclaimed).toBe(1);
    expect(sessions.map((s) => s.application_name)).not.toContain('mco operator');
    expect(sessions.find((s) => s.application_name === holder)).toMatchObject({
      datname: new URL(url).pathname.slice(1),
      usename: 'postgres',
    });
  });

  it("gives an ordinary role an upper bound (another user's sessions are counted by database and role), pg_monitor an exact count", async () => {
    await session(holder);
    await session('grafana');
    const plain = await access().ledger('k', { url: as('plain') }, 'postgres');
    expect(plain.picture.exact).toBe(false);
    expect(plain.picture.holders.get(holder)).toEqual({ claim: 3, live: 1 }); // application_name is shown to all
    expect(plain.picture.unclaimed).toBeGreaterThanOrEqual(1);
    const monitor = await access().ledger('k', { url: as('monitor') }, 'postgres');
    expect(monitor.picture.exact).toBe(true);
    expect(monitor.picture.unclaimed).toBe(1);
  });

  it('reads the server at most once per budget key every few seconds', async () => {
    const clock = new ManualClock(Date.parse('2025-03-01T12:00:00Z'));
    const a = access({ clock });
    expect((await a.ledger('k', { url }, 'postgres')).picture.unclaimed).toBe(0);
    await session('grafana');
    expect((await a.ledger('k', { url }, 'postgres')).picture.unclaimed).toBe(0);
    clock.advance(5_000);
    expect((await a.ledger('k', { url }, 'postgres')).picture.unclaimed).toBe(1);
  });

  it('says through which database it could not read, never the URL, and refreshes max_connections when it can', async () => {
    const a = access();
    await expect(a.ledger('k', { url }, 'no_such_db')).rejects.toThrow(
      /^through the ledger database "no_such_db": .*no_such_db.* does not exist/,
    );
    await expect(a.ledger('k', { url }, 'no_such_db')).rejects.not.toThrow(/postgres:\/\/|:[^ ]*@/);
    await a.ledger('k', { url }, 'postgres');
    // Read on the ledger's connection: asked with a URL where nothing listens, it is answered from that reading.
    expect(await a.maxConnections('k', { url: 'postgres://u:p@127.0.0.1:1/x' })).toBe(30);
  });
});

describe('PostgresDatabaseAccess.endBackends', () => {
  it("ends a holder's backends, only while they carry its name, and is refused another role's", async () => {
    const mine = await session('mco run/2 music/a s1 a-run-1-bcdfh', as('plain'));
    const theirs = await session('mco run/2 music/a s2 a-run-2-bcdfj');
    const a = access();
    // A pid whose backend now carries another name is not the one the reading saw: left alone.
    expect(await a.endBackends('k', { url: as('plain') }, 'something else', [await pidOf(mine)])).toEqual({
      ended: 0,
      denied: false,
    });
    expect(
      await a.endBackends('k', { url: as('plain') }, 'mco run/2 music/a s1 a-run-1-bcdfh', [await pidOf(mine)]),
    ).toEqual({
      ended: 1,
      denied: false,
    });
    await waitUntil('the backend to end', async () => !(await names()).includes('mco run/2 music/a s1 a-run-1-bcdfh'));
    expect(
      await a.endBackends('k', { url: as('plain') }, 'mco run/2 music/a s2 a-run-2-bcdfj', [await pidOf(theirs)]),
    ).toEqual({
      ended: 0,
      denied: true,
    });
    expect(await names()).toContain('mco run/2 music/a s2 a-run-2-bcdfj');
  });
});

describe('Reconciler on a real server', () => {
  it('ends the backends of a pod that no longer exists, counting them until they are gone, and says which pod', async () => {
    const running = {
      phase: 'Running' as const,
      files: { total: 3000, processed: 0, failed: 0 },
      shards: { total: 3, succeeded: 0, failed: 0 },
    };
    const { world, pass, corpus, clock } = setupReconciler(
      {
        url,
        database: (w) =>
          new PostgresDatabaseAccess({
            readSecret: async (ns, name) => w.secrets.get(`${ns}/${name}`),
            ledgerTtlMs: 0,
          }),
      },
      [{ name: 'a', uid: 'uid-a', status: running }],
    );
    await pass('a');
    expect(world.writes).toEqual(['create a-run parallelism=3']);
    // A runner of shard 1 whose pod was force-deleted: its process is gone, its connections are not.
    const vanished = applicationNameFor({ role: 'run', corpus: 'music/a', shard: 1, pod: 'a-run-1-bcdfh', claim: 2 });
    const orphans = [await session(vanished), await session(vanished)];
    await pass('a'); // seen: the grace starts
    await pass('a'); // seen twice: counted
    expect(corpus('a').status?.budget?.foreignConnections).toBe(2);
    expect(condition(corpus('a'), 'ForeignConnectionsUncertain')?.reason).toBe('ForeignCountExact');
    expect(orphans.every((c) => c.ended === undefined)).toBe(true);
    clock.advance(15_000);
    await pass('a'); // the grace has passed: ended
    await waitUntil('the orphans to be told', async () => orphans.every((c) => c.ended !== undefined));
    expect(orphans.every((c) => c.ended instanceof Error)).toBe(true); // pg says 57P01, or just that it was closed
    await waitUntil('their backends to go', async () => !(await names()).includes(vanished));
    expect(world.events).toContainEqual(
      expect.objectContaining({
        reason: 'VanishedPodConnectionsEnded',
        message: expect.stringContaining('a-run-1-bcdfh'),
      }),
    );
    await pass('a');
    expect(corpus('a').status?.budget?.foreignConnections).toBe(0);
    expect(JSON.stringify([corpus('a').status, world.events])).not.toMatch(/postgres:\/\//);
  });
});
