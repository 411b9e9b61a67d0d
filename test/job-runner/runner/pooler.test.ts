import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectionBudget, type DatabaseLimits } from '../../../controller/budget/connection-budget.js';
import { PostgresDatabaseAccess } from '../../../controller/reconcile/database.js';
import { runShardArgs } from '../../../contract/run-shard-command.js';
import { poolSizeFor } from '../../../contract/pool-sizing.js';
import { migrate } from '../../../job-runner/db/migrations.js';
import { ensureCorpus, writeBatch, type FileResult } from '../../../job-runner/db/store.js';
import { RunnerPool } from '../../../job-runner/pool/pool.js';
import { ConnectionSampler } from '../../e2e/support/database.js';
import { expectEveryFileRecordedOnce } from '../../e2e/support/scenario.js';
import { ensurePgBouncer, PoolerSampler, startPgBouncer, type TestPgBouncer } from '../../support/pgbouncer.js';
import { startTestPostgres, type TestPostgres } from '../../support/postgres.js';
import { lastJson, runCli, startCli, writeCorpus } from './cli.js';

/**
 * The runner behind Debian's PgBouncer 1.18 in transaction mode, in front of a real Postgres: what breaks in direct
 * mode, and a corpus ingested by several runner processes at once through it, with the pooler's clients and the
 * server's connections each sampled on their own and held to what the pooler was given.
 */
const unavailable = ensurePgBouncer();

/** What the spec would say: the pooler accepts 11 clients from the operator and opens 3 server connections. */
const MAX_CLIENT_CONNECTIONS = 11;
const POOL_SIZE = 3;
const HEADROOM = 2;

describe.skipIf(unavailable !== null)('behind PgBouncer in transaction mode', () => {
  let db: TestPostgres;
  let bouncer: TestPgBouncer;
  let tmp: string;

  /**
   * A pooler of its own for each part: the server connections it keeps open for one test's database would count in
   * the next test's server peak. Two clients more than the spec's: the sampler's admin console and one spare.
   */
  const freshPooler = async () => {
    await bouncer?.stop();
    bouncer = await startPgBouncer({
      serverUrl: db.url,
      maxClientConnections: MAX_CLIENT_CONNECTIONS + 2,
      poolSize: POOL_SIZE,
    });
  };

  beforeAll(async () => {
    db = await startTestPostgres();
    tmp = await mkdtemp(path.join(os.tmpdir(), 'mco-pooler-'));
  });
  afterAll(async () => {
    await bouncer?.stop();
    await db?.destroy();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  describe('what direct mode does there', () => {
    beforeAll(freshPooler);

    it("refuses a direct-mode pool's connections: PgBouncer does not take statement_timeout at startup", async () => {
      const url = bouncer.urlFor(await db.createDatabase());
      const pool = new RunnerPool({
        connectionString: url,
        size: { max: 1, warm: 1 },
        applicationName: 'mco test direct',
        openTimeoutMs: 1000,
        statsIntervalMs: 0,
      });
      await expect(pool.open()).rejects.toThrow(/unsupported startup parameter: statement_timeout/);
      await pool.close();
    });

    it('loses named statements between transactions; unnamed ones (namedStatements false) work', async () => {
      const url = bouncer.urlFor(await db.createDatabase());
      const pool = new RunnerPool({
        connectionString: url,
        size: { max: 2, warm: 1 },
        applicationName: 'mco test pooler',
        poolMode: 'transaction',
        statsIntervalMs: 0,
      });
      expect(pool.namedStatements).toBe(false);
      await pool.open();
      const corpus = await pool.use(async (c) => {
        await migrate(c);
        return ensureCorpus(c, 'named', {});
      });
      const writer = await pool.acquire();
      const other = await pool.acquire();
      try {
        // The writer's first batch prepares the named statements on the one server connection the pooler has open.
        await writeBatch(writer, corpus, [failed('a.mid')], { namedStatements: true });
        // Another client's transaction takes that server connection (PgBouncer hands out the last used one first)...
        await other.query('BEGIN');
        await other.query('SELECT 1');
        // ...so the writer's next transaction runs on a new one, where its statement was never prepared.
        await expect(writeBatch(writer, corpus, [failed('b.mid')], { namedStatements: true })).rejects.toMatchObject({
          code: '26000',
        });
        await expect(writeBatch(writer, corpus, [failed('c.mid')], { namedStatements: false })).resolves.toMatchObject({
          failed: 1,
        });
        await other.query('COMMIT');
      } finally {
        other.release();
        writer.release(true);
        await pool.close();
      }
    });

    it('migrates through it with migrate --pool-mode transaction, and not without', async () => {
      const url = bouncer.urlFor(await db.createDatabase());
      const direct = await runCli(['migrate', '--wait-seconds', '1'], { DATABASE_URL: url });
      expect(direct.code).not.toBe(0);
      expect(direct.stderr).toContain('unsupported startup parameter: statement_timeout');
      const pooled = await runCli(['migrate', '--pool-mode', 'transaction'], { DATABASE_URL: url });
      expect(pooled.code, pooled.stderr.slice(-2000)).toBe(0);
      expect(pooled.stderr).toContain('migrations applied');
    });

    it("leaves a direct-mode pool's session settings on the server connection for the pooler's next client", async () => {
      const url = bouncer.urlFor(await db.createDatabase());
      const keepaliveSeenByNextClient = async (poolMode: 'direct' | 'transaction') => {
        // Only the startup timeouts left out in direct mode (PgBouncer refuses them): what is left is session state.
        const pool = new RunnerPool({
          connectionString: url,
          size: { max: 1, warm: 1 },
          applicationName: `mco test ${poolMode}`,
          poolMode,
          statementTimeoutMs: 0,
          idleInTransactionTimeoutMs: 0,
          statsIntervalMs: 0,
        });
        await pool.open();
        await pool.use((c) => c.query('SELECT 1'));
        await pool.close();
        // The pooler hands the server connection the pool used last to whoever comes next.
        const next = new pg.Client({ connectionString: url });
        await next.connect();
        try {
          return (await next.query<{ v: string }>("SELECT current_setting('tcp_keepalives_idle') AS v")).rows[0]!.v;
        } finally {
          await next.end();
        }
      };
      // What a fresh TCP connection to the server has: what the pooler's next client must see when nothing leaked.
      const serverDefault = (await db.query<{ v: string }>("SELECT current_setting('tcp_keepalives_idle') AS v"))
        .rows[0]!.v;
      expect(serverDefault).not.toBe('10');
      expect(await keepaliveSeenByNextClient('direct')).toBe('10');
      // Fresh server connections for the next part: the one the direct-mode pool left its setting on is closed.
      await bouncer.admin('RECONNECT');
      expect(await keepaliveSeenByNextClient('transaction')).toBe(serverDefault);
    });
  });

  it('ingests a corpus with several runners at once, every file once, within the pooler and the pool size', async () => {
    await freshPooler();
    const serverUrl = await db.createDatabase('pooled');
    const url = bouncer.urlFor(serverUrl);
    const root = path.join(tmp, 'corpus');
    const files = (await writeCorpus(root, { files: 96, seed: 12 })).sort();
    const shards = 8;

    // The controller's budget behind this pooler: pods of 1 CPU (a pool of 2), as many as fit maxClientConnections.
    const perPod = poolSizeFor(1000).max;
    const limits: DatabaseLimits = {
      maxConnections: MAX_CLIENT_CONNECTIONS,
      reservedConnections: 0,
      headroom: HEADROOM,
      pooler: { poolSize: POOL_SIZE },
    };
    const plan = connectionBudget(limits, [
      {
        key: 'c',
        createdAt: 0,
        perPod,
        demand: shards,
        livePods: 0,
        potentialPods: 0,
        scanPods: 0,
        scanPending: false,
      },
    ]);
    const runners = plan.corpora.get('c')!.parallelism;
    expect(runners).toBe(4); // 11 − headroom 2 − the operator's 1 = 8 connections: 4 pods of 2

    const server = new ConnectionSampler(db.url, 50);
    const pooler = new PoolerSampler(bouncer.adminUrl, 50);
    await server.start();
    await pooler.start();
    try {
      const scan = await runCli(
        ['scan', '--corpus', 'c', '--root', root, '--shards', String(shards), '--pool-mode', 'transaction', '--json'],
        { DATABASE_URL: url },
      );
      expect(scan.code, scan.stderr.slice(-3000)).toBe(0);
      expect(lastJson(scan)).toMatchObject({ files: files.length, shards });

      // `runners` processes at once, each taking the next shard when its last one is done, as the Job's pods would.
      let next = 0;
      const worker = async () => {
        const summaries: Array<{ recorded: { ok: number } }> = [];
        while (next < shards) {
          const shard = next++;
          const args = runShardArgs({
            corpus: 'c',
            root,
            shard,
            cpuMillis: 1000,
            pool: {},
            cap: { poolMode: 'transaction', headroom: HEADROOM, ledgerDatabase: 'postgres' },
          });
          const exit = await startCli(args, { DATABASE_URL: url }).done;
          expect(exit.code, exit.stderr.slice(-3000)).toBe(0);
          summaries.push(lastJson(exit));
        }
        return summaries;
      };
      const done = (await Promise.all(Array.from({ length: runners }, worker))).flat();
      expect(done).toHaveLength(shards);
      expect(done.reduce((n, s) => n + s.recorded.ok, 0)).toBe(files.length);
    } finally {
      const serverPeaks = await server.stop();
      const poolerPeaks = await pooler.stop();
      console.log(
        `behind PgBouncer: pooler clients peak ${poolerPeaks.peak.clients} of maxClientConnections ` +
          `${MAX_CLIENT_CONNECTIONS} (runners' allowance ${plan.allowance}; ${poolerPeaks.samples} samples), ` +
          `pooler's server connections peak ${poolerPeaks.peak.servers} and the server's own count peak ` +
          `${serverPeaks.peak.total} of poolSize ${POOL_SIZE} (${serverPeaks.samples} samples)`,
      );
      // Every sample, not only the last: the peaks are each count's maximum over the whole run.
      expect(poolerPeaks.peak.clients).toBeLessThanOrEqual(plan.allowance);
      expect(poolerPeaks.peak.servers).toBeLessThanOrEqual(POOL_SIZE);
      expect(serverPeaks.peak.total).toBeLessThanOrEqual(POOL_SIZE);
      // The runners did share the pooler: more clients than server connections at some moment.
      expect(poolerPeaks.peak.clients).toBeGreaterThan(POOL_SIZE);
    }
    await expectEveryFileRecordedOnce(serverUrl, 'c', files, { allGood: true });

    // The controller's own progress count through the pooler: refused with the startup statement_timeout it sends to a
    // server, answered once it knows the corpus is behind a pooler.
    const access = new PostgresDatabaseAccess({ readSecret: async () => undefined, progressIntervalMs: 0 });
    await expect(access.progress('k', { url }, 'c', { force: true })).rejects.toThrow(/unsupported startup parameter/);
    await expect(access.progress('k', { url }, 'c', { force: true, behindPooler: true })).resolves.toEqual({
      processed: files.length,
      failed: 0,
    });
  });
});

function failed(file: string): FileResult {
  return { path: file, size: 1, shard: 0, sha256: null, outcome: { status: 'failed', reason: 'test', warnings: [] } };
}
