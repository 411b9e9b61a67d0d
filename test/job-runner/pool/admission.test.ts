import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { applicationNameFor, waitingName } from '../../../contract/application-name.js';
import { PermanentError, TransientError } from '../../../contract/error-kinds.js';
import { connectionCap, DEFAULT_LEDGER_DATABASE, readLedger, readServerLimits } from '../../../contract/ledger.js';
import { Admission, type AdmissionOptions } from '../../../job-runner/pool/admission.js';
import { RunnerPool } from '../../../job-runner/pool/pool.js';
import { exitCodeFor } from '../../../job-runner/runner/errors.js';
import { startTestPostgres, type TestPostgres } from '../../support/postgres.js';
import { waitUntil } from '../../support/wait.js';

/**
 * The server ledger on a real server whose max_connections leaves no slack above the cap: an ordinary role can open
 * MAX_CONNECTIONS − RESERVED connections, the cap is HEADROOM below that, and anything that takes more than the cap
 * plus HEADROOM meets "remaining connection slots are reserved" (SQLSTATE 53300), which the server logs and which
 * afterEach looks for.
 */

const CAP = 16;
const HEADROOM = 2;
/** Postgres' default superuser_reserved_connections; reserved_connections (Postgres 16) stays 0. */
const RESERVED = 3;
const MAX_CONNECTIONS = CAP + RESERVED + HEADROOM;
/** Ten times faster than production's 250 ms doubling to 5 s: these holders hold for milliseconds, not minutes. */
const RETRY = { baseMs: 20, maxMs: 200 };

/** Ordinary roles (LOGIN, nothing else): the holders, a foreign application, a reader that looks at the ledger. */
const ROLES = ['holder', 'outsider', 'reader'] as const;
type Role = (typeof ROLES)[number];

/** What the sampler saw, client backends only. */
interface Watch {
  samples: number;
  /** Every client backend, the sampler's own connection included. */
  peakClients: number;
  /** The same less the admission probes (holders' sessions in the ledger database): what the claims hold. */
  peakHeld: number;
  /** Probes open at once: holders waiting for room or being admitted. */
  peakProbes: number;
}

describe('Admission against a real Postgres with no slack above the cap', () => {
  let db: TestPostgres;
  let corpusDb: string;
  /** The server's log, where every refused connection leaves a line with its SQLSTATE and database. */
  let serverLog = '';
  /** One superuser connection for the whole file: the sampler, and the hand that terminates backends. */
  let observer: pg.Client;
  const cleanups: Array<() => Promise<unknown>> = [];
  let names = 0;

  beforeAll(async () => {
    db = await startTestPostgres({
      maxConnections: MAX_CONNECTIONS,
      settings: { log_line_prefix: '%m [%p] %e db=%d ' },
      onLog: (line) => {
        serverLog += line;
      },
    });
    corpusDb = new URL(await db.createDatabase()).pathname.slice(1);
    for (const role of ROLES) await db.query(`CREATE ROLE ${role} LOGIN PASSWORD '${role}-password'`);
    observer = new pg.Client({ connectionString: db.url, application_name: 'observer' });
    await observer.connect();
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    // No connection of anyone's was refused, unless the test accounted for it and cleared the log.
    expect(refusals()).toEqual([]);
  });
  afterAll(async () => {
    await observer?.end();
    await db?.destroy();
  });

  function refusals(): string[] {
    return serverLog.split('\n').filter((line) => / 53300 /.test(line));
  }

  function urlAs(role: Role, database = corpusDb): string {
    const u = new URL(db.url);
    u.username = role;
    u.password = `${role}-password`;
    u.pathname = `/${database}`;
    return u.toString();
  }

  /** `n` plain connections of an application that knows nothing of the ledger. */
  async function foreignApp(n: number) {
    const clients: pg.Client[] = [];
    const app = {
      clients,
      async open(more: number) {
        for (let i = 0; i < more; i++) {
          const c = new pg.Client({ connectionString: urlAs('outsider'), application_name: 'foreign-app' });
          await c.connect();
          clients.push(c);
        }
      },
      async close(fewer: number) {
        await Promise.all(clients.splice(0, fewer).map((c) => c.end()));
      },
    };
    cleanups.push(() => app.close(clients.length));
    await app.open(n);
    return app;
  }

  /** A runner's pool with its admission, as run-shard builds them, connecting as the ordinary `holder` role. */
  function holder(claim: number, options: Partial<AdmissionOptions> = {}) {
    const applicationName = applicationNameFor({
      role: 'run',
      corpus: 'ledger',
      shard: ++names,
      pod: `holder-${names}-x7k2q`,
      claim,
    });
    const admission = new Admission({
      connectionString: urlAs('holder'),
      holder: applicationName,
      claim,
      cap: { headroom: HEADROOM },
      retry: RETRY,
      ...options,
    });
    const pool = new RunnerPool({
      connectionString: urlAs('holder'),
      size: { max: claim, warm: claim },
      applicationName,
      admission,
      statsIntervalMs: 0,
    });
    cleanups.push(() => pool.close());
    return { pool, admission, applicationName };
  }

  /** The backends carrying `applicationName`, by database: a holder's pool is in the corpus's, its probes in the ledger's. */
  async function sessionsOf(applicationName: string): Promise<{ pool: number; probes: number }> {
    const { rows } = await observer.query<{ pool: number; probes: number }>(
      `SELECT count(*) FILTER (WHERE application_name = $1 AND datname = $2)::int AS pool,
              count(*) FILTER (WHERE application_name = $4 AND datname = $3)::int AS probes
         FROM pg_stat_activity`,
      [applicationName, corpusDb, DEFAULT_LEDGER_DATABASE, waitingName(applicationName)],
    );
    return rows[0]!;
  }

  /** Samples the server's client backends every ~20 ms on the observer's connection until stopped. */
  function watch(): { stop: () => Promise<Watch> } {
    const seen: Watch = { samples: 0, peakClients: 0, peakHeld: 0, peakProbes: 0 };
    let running = true;
    const loop = (async () => {
      while (running) {
        const { rows } = await observer.query<{ clients: number; probes: number }>(
          `SELECT count(*) FILTER (WHERE backend_type = 'client backend')::int AS clients,
                  count(*) FILTER (WHERE backend_type = 'client backend' AND datname = $1
                                     AND application_name LIKE 'mco %')::int AS probes
             FROM pg_stat_activity`,
          [DEFAULT_LEDGER_DATABASE],
        );
        const { clients, probes } = rows[0]!;
        seen.samples++;
        seen.peakClients = Math.max(seen.peakClients, clients);
        seen.peakHeld = Math.max(seen.peakHeld, clients - probes);
        seen.peakProbes = Math.max(seen.peakProbes, probes);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    return {
      stop: async () => {
        running = false;
        await loop;
        return seen;
      },
    };
  }

  it('has the limits this file is written for', async () => {
    const limits = await readServerLimits(observer);
    expect(limits).toEqual({ maxConnections: MAX_CONNECTIONS, reserved: RESERVED });
    expect(
      connectionCap({
        serverMaxConnections: limits.maxConnections,
        serverReserved: limits.reserved,
        headroom: HEADROOM,
      }),
    ).toBe(CAP);
  });

  it('sees the refusal this file watches for when an ordinary role goes past the slots it may use', async () => {
    // The observer holds one of the MAX_CONNECTIONS − RESERVED slots open to ordinary roles.
    const app = await foreignApp(MAX_CONNECTIONS - RESERVED - 1);
    const err = await app.open(1).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: '53300' });
    await waitUntil('the refusal in the server log', () => Promise.resolve(refusals().length === 1));
    await app.close(app.clients.length);
    serverLog = '';
  });

  it("shows an ordinary role every claim but not other roles' backend_type, and pg_read_all_stats makes its count exact", async () => {
    await foreignApp(3);
    const claimer = new pg.Client({ connectionString: db.url, application_name: 'mco run/3 other s0 pod-x7k2q' });
    await claimer.connect();
    cleanups.push(() => claimer.end());
    const reader = new pg.Client({ connectionString: urlAs('reader', DEFAULT_LEDGER_DATABASE) });
    await reader.connect();
    cleanups.push(() => reader.end());

    // The premises of contract/ledger.ts, as the reader sees the other roles' sessions. Background processes with
    // neither a database nor a role (checkpointer, walwriter...) are left out here: which there are varies by version.
    const { rows } = await reader.query(
      `SELECT application_name, backend_type, datid IS NOT NULL AS has_database, usesysid IS NOT NULL AS has_role
         FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND (datid IS NOT NULL OR usesysid IS NOT NULL)
         ORDER BY application_name`,
    );
    expect(rows).toEqual([
      // The logical replication launcher: a role but no database, so pictureOf counts it as no client.
      { application_name: '', backend_type: null, has_database: false, has_role: true },
      ...Array.from({ length: 3 }, () => ({
        application_name: 'foreign-app',
        backend_type: null,
        has_database: true,
        has_role: true,
      })),
      { application_name: 'mco run/3 other s0 pod-x7k2q', backend_type: null, has_database: true, has_role: true },
      { application_name: 'observer', backend_type: null, has_database: true, has_role: true },
    ]);

    // Three foreign sessions and the observer claim nothing; the superuser's claim is read all the same.
    const hidden = await readLedger(reader);
    expect(hidden.exact).toBe(false);
    expect(hidden.unclaimed).toBe(4);
    expect(hidden.holders).toEqual(new Map([['mco run/3 other s0 pod-x7k2q', { claim: 3, live: 1 }]]));

    await observer.query('GRANT pg_read_all_stats TO reader');
    cleanups.push(() => observer.query('REVOKE pg_read_all_stats FROM reader'));
    const seen = await readLedger(reader);
    expect(seen.exact).toBe(true);
    expect(seen.unclaimed).toBe(4);
    expect(seen.holders).toEqual(hidden.holders);
  });

  /**
   * Eight holders that together want far more than the cap start at once, as the Jobs of a corpus do, beside a
   * foreign application: each opens, works a little with every connection, and closes. What the sampler saw, and how
   * each holder fared.
   */
  async function crowd(retry: AdmissionOptions['retry']) {
    const foreign = 4;
    await foreignApp(foreign);
    const claims = [2, 3, 2, 3, 2, 3, 2, 3];
    const rounds = 3;
    expect(claims.reduce((a, b) => a + b, 0) + foreign + 1).toBeGreaterThan(CAP + HEADROOM);
    const holders = claims.map((claim) => ({ claim, ...holder(claim, { retry }), done: 0 }));
    // The claims of the holders that are in, from open() returning (just after their admission) until close()
    // returns: what the sampler sees at intervals, the holders know at every moment. They hold long enough (three
    // rounds of 0.2 s) to overlap, so that the cap, not the time an admission takes, is what keeps them out.
    let claimedNow = 0;
    let peakClaimed = 0;
    const watching = watch();
    const outcomes = await Promise.allSettled(
      holders.map(async (h) => {
        await h.pool.open();
        claimedNow += h.claim;
        peakClaimed = Math.max(peakClaimed, claimedNow);
        for (let r = 0; r < rounds; r++)
          await Promise.all(
            Array.from({ length: h.claim }, () =>
              h.pool.use(async (c) => {
                await c.query('SELECT pg_sleep(0.2)');
                h.done++;
              }),
            ),
          );
        await h.pool.close();
        claimedNow -= h.claim;
      }),
    );
    const seen = await watching.stop();

    // Every holder queued rather than failed, was admitted once, and did all its work.
    expect(outcomes.filter((o) => o.status === 'rejected')).toEqual([]);
    expect(holders.map((h) => h.done)).toEqual(claims.map((c) => c * rounds));
    expect(holders.map((h) => h.admission.stats.admitted)).toEqual(claims.map(() => 1));
    // Some had to wait: there never was room for all of them at once.
    expect(holders.filter((h) => h.admission.stats.waits > 0).length).toBeGreaterThan(0);
    expect(seen.samples).toBeGreaterThan(10);
    // The cap covers everyone: the foreign application and the sampler are clients like the holders' connections.
    expect(peakClaimed + foreign + 1).toBeLessThanOrEqual(CAP);
    expect(seen.peakHeld).toBeLessThanOrEqual(CAP);
    // Waiting holders keep their probe, which every reader counts as the connection it is: everyone, probes
    // included, stays within the cap (and afterEach: no connection of anyone was refused).
    expect(seen.peakClients).toBeLessThanOrEqual(CAP);
    expect(seen.peakProbes).toBeGreaterThan(0);
    return seen;
  }

  it('admits holders that together want far more than the cap one after another, never past it', async () => {
    await crowd(undefined);
  });

  it('stays within the cap, probes included, when waiting holders retry ten times faster than production', async () => {
    // 20–200 ms between tries: with a probe opened for each try (the first design) several were open at once, none
    // of them counted, and in one run in six or so they filled the headroom and a connection was refused.
    await crowd(RETRY);
  });

  it('keeps a newcomer waiting while a foreign application grows into the room, and admits it once some is given back', async () => {
    const foreign = await foreignApp(4);
    const first = holder(3);
    await first.pool.open();
    await foreign.open(6);
    // In use now: 10 foreign, the observer, the first holder's 3 = 14; a claim of 3 does not fit a cap of 16.
    const late = holder(3);
    const opening = late.pool.open();
    await waitUntil('the newcomer to find no room three times', async () => late.admission.stats.waits >= 3);
    expect(late.admission.stats).toMatchObject({
      admitted: 0,
      last: { cap: CAP, claim: 3, others: 14, unclaimed: 11 },
    });
    expect((await sessionsOf(late.applicationName)).pool).toBe(0);

    // One fewer is enough: 13 + 3 fits the cap exactly.
    await foreign.close(1);
    await opening;
    expect(late.admission.stats).toMatchObject({ admitted: 1, last: { others: 13 } });
    expect(await sessionsOf(late.applicationName)).toEqual({ pool: 3, probes: 0 });
    expect(await sessionsOf(first.applicationName)).toEqual({ pool: 3, probes: 0 });
  });

  it('ends a wait for room with a TransientError when its signal fires, holding no connection', async () => {
    // 14 foreign and the observer leave 1 under the cap: a claim of 1 counts as 2 while it is being admitted.
    await foreignApp(CAP - 2);
    const stop = new AbortController();
    const waiting = holder(1, { signal: stop.signal });
    const opening = waiting.pool.open().catch((e: unknown) => e);
    await waitUntil('the holder to find no room twice', async () => waiting.admission.stats.waits >= 2);
    // It waits on one probe, kept between tries, and nothing of its claim.
    expect(await sessionsOf(waiting.applicationName)).toEqual({ pool: 0, probes: 1 });
    stop.abort();
    const err = await opening;
    expect(err).toBeInstanceOf(TransientError);
    expect((err as Error).message).toMatch(/stopped while waiting for room/);
    expect(waiting.admission.stats.admitted).toBe(0);
    expect(await sessionsOf(waiting.applicationName)).toEqual({ pool: 0, probes: 0 });
    expect(waiting.pool.stats().total).toBe(0);
  });

  it('refuses at once, permanently, a claim larger than the cap', async () => {
    const admission = new Admission({
      connectionString: urlAs('holder'),
      holder: applicationNameFor({ role: 'run', corpus: 'ledger', shard: 99, claim: CAP + 1 }),
      claim: CAP + 1,
      cap: { headroom: HEADROOM },
      retry: RETRY,
    });
    let published = 0;
    const err = await admission.admit(async () => published++).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as Error).message).toContain(`needs ${CAP + 1} connections, but the server's cap is ${CAP}`);
    expect({ published, waits: admission.stats.waits }).toEqual({ published: 0, waits: 0 });
  });

  it('refuses at once, permanently, a ledger database that does not exist, naming it', async () => {
    const admission = new Admission({
      connectionString: urlAs('holder'),
      ledgerDatabase: 'no_such_ledger',
      holder: applicationNameFor({ role: 'run', corpus: 'ledger', shard: 98, claim: 2 }),
      claim: 2,
      cap: { headroom: HEADROOM },
      retry: RETRY,
    });
    let published = 0;
    const err = await admission.admit(async () => published++).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as Error).message).toMatch(/server ledger's database "no_such_ledger" cannot be used/);
    expect({ published, waits: admission.stats.waits }).toEqual({ published: 0, waits: 0 });
  });

  it('makes a pool that lost every connection wait for room someone else took meanwhile, then takes it back', async () => {
    await foreignApp(4);
    const other = holder(3);
    const lost = holder(3);
    await other.pool.open();
    await lost.pool.open();
    await observer.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [
      lost.applicationName,
    ]);
    await waitUntil('the pool to notice it lost them all', async () => lost.pool.stats().total === 0);
    // Its room is free: 4 foreign, the observer and the other holder's 3 leave 8, and a newcomer takes 6 of them.
    const newcomer = holder(6);
    await newcomer.pool.open();
    expect(newcomer.admission.stats.last).toMatchObject({ others: 8 });

    const back = lost.pool.use(async (c) => (await c.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one);
    await waitUntil('the pool to find no room three times', async () => lost.admission.stats.waits >= 3);
    // 14 in use by others: its claim of 3 would make 17, past the cap; it must not just reconnect.
    expect(lost.admission.stats).toMatchObject({ admitted: 1, last: { others: 14 } });
    expect((await sessionsOf(lost.applicationName)).pool).toBe(0);

    await newcomer.pool.close();
    expect(await back).toBe(1);
    expect(lost.admission.stats).toMatchObject({ admitted: 2, last: { others: 8 } });
    expect((await sessionsOf(lost.applicationName)).pool).toBeGreaterThan(0);
  });

  it("passes on publish's own configuration errors as they are, not as the ledger database's", async () => {
    const applicationName = applicationNameFor({ role: 'run', corpus: 'ledger', shard: 97, claim: 2 });
    const missing = urlAs('holder', 'no_such_corpus');
    const pool = new RunnerPool({
      connectionString: missing,
      size: { max: 2, warm: 2 },
      applicationName,
      admission: new Admission({
        connectionString: missing,
        holder: applicationName,
        claim: 2,
        cap: { headroom: HEADROOM },
        retry: RETRY,
      }),
      statsIntervalMs: 0,
    });
    cleanups.push(() => pool.close());
    // The ledger's database is fine; the corpus's is missing, and the error says so.
    const err = await pool.open().catch((e: unknown) => e);
    expect(err).not.toBeInstanceOf(PermanentError);
    expect(err).toMatchObject({ code: '3D000', message: 'database "no_such_corpus" does not exist' });
    // Retrying cannot help, and the runner knows it from the SQLSTATE: it exits 64 as it would for a PermanentError.
    expect(exitCodeFor(err)).toBe(64);
  });
});
