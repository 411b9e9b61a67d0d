import { readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readServerLimits } from '../../../contract/ledger.js';
import type { LocalRunReport } from '../../../job-runner/local/report.js';
import { startTestPostgres, type TestPostgres } from '../../support/postgres.js';
import { waitUntil } from '../../support/wait.js';
import { lastJson, runCli, startCli, writeCorpus, type CliExit } from '../runner/cli.js';

/**
 * Local mode on a server it shares: with another application that holds connections the whole time, and with another
 * local run started at the same moment. The runs connect as an ordinary role (no superuser, so no reserved slot to
 * dip into), to a server whose max_connections is exactly cap + superuser_reserved_connections + headroom: a
 * connection past what the role may have is refused by the server ("too many clients"), which no run may ever see.
 * An independent sampler counts every client backend on the server, itself included, every ~50 ms.
 */

const CAP = 10;
const HEADROOM = 2;
/** superuser_reserved_connections' default; checked against the server below, the arithmetic depends on it. */
const SUPERUSER_RESERVED = 3;
const MAX_CONNECTIONS = CAP + SUPERUSER_RESERVED + HEADROOM;
const RUNNER = { role: 'ingest', password: 'ingest-pw' };
const OTHER_APP = { role: 'other_app', password: 'other-pw' };

/** The server's URL with another role and database. */
function urlAs(serverUrl: string, who: { role: string; password: string }, database: string): string {
  const u = new URL(serverUrl);
  u.username = who.role;
  u.password = who.password;
  u.pathname = `/${database}`;
  return u.toString();
}

/** Another application: `k` idle sessions of its own role in its own database, held until released. */
async function holdConnections(url: string, k: number): Promise<{ release: () => Promise<void> }> {
  const clients = Array.from(
    { length: k },
    () => new pg.Client({ connectionString: url, application_name: 'other-app' }),
  );
  await Promise.all(clients.map((c) => c.connect()));
  return { release: async () => void (await Promise.all(clients.map((c) => c.end()))) };
}

interface Sampled {
  samples: number;
  /** Most client backends at once on the whole server, the sampler's own included. */
  peak: number;
  /**
   * Most at once without the probes of processes not yet admitted: a probe (in the ledger's database, `postgres`,
   * under its holder's `mco …` name) whose holder has no connection in its own database yet. Once the holder's first
   * connection is up, its probe is counted: the two overlap inside its claim until the probe ends.
   */
  peakHeld: number;
  /** Most such probes open at once (one that is about to be admitted among them). */
  peakWaitingProbes: number;
  /** The client backends of the sample with the most, by application_name@database: what to look at if it is high. */
  atPeak: string[];
}

/** Counts client backends on its own (superuser) connection every ~50 ms until stopped. */
async function startSampler(url: string): Promise<{ stop: () => Promise<Sampled> }> {
  const c = new pg.Client({ connectionString: url, application_name: 'test-sampler' });
  await c.connect();
  const s: Sampled = { samples: 0, peak: 0, peakHeld: 0, peakWaitingProbes: 0, atPeak: [] };
  let sampling = true;
  const loop = (async () => {
    while (sampling) {
      const { rows } = await c.query<{ name: string }>(
        `SELECT coalesce(application_name, '') || '@' || coalesce(datname, '') AS name
           FROM pg_stat_activity WHERE backend_type = 'client backend'`,
      );
      const names = rows.map((r) => r.name);
      const holdersInOwnDatabase = new Set(names.filter((n) => !n.endsWith('@postgres')).map(holderOf));
      const waiting = names.filter(
        (n) => n.startsWith('mco ') && n.endsWith('@postgres') && !holdersInOwnDatabase.has(holderOf(n)),
      ).length;
      s.samples++;
      if (names.length > s.peak) s.atPeak = names.sort();
      s.peak = Math.max(s.peak, names.length);
      s.peakHeld = Math.max(s.peakHeld, names.length - waiting);
      s.peakWaitingProbes = Math.max(s.peakWaitingProbes, waiting);
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return {
    stop: async () => {
      sampling = false;
      await loop;
      await c.end();
      return s;
    },
  };
}

function holderOf(nameAtDatabase: string): string {
  return nameAtDatabase.slice(0, nameAtDatabase.lastIndexOf('@'));
}

/** Every runner log line of the runs under `dataDir` (one file per shard attempt). */
function runnerLogs(dataDir: string): string {
  const logs = path.join(dataDir, 'logs');
  return readdirSync(logs)
    .flatMap((run) => readdirSync(path.join(logs, run)).map((f) => readFileSync(path.join(logs, run, f), 'utf8')))
    .join('\n');
}

function localArgs(root: string, url: string, dataDir: string, more: string[] = []): string[] {
  return [
    'local',
    root,
    '--database-url',
    url,
    '--data-dir',
    dataDir,
    '--headroom',
    String(HEADROOM),
    '--json',
    ...more,
  ];
}

/** Files of the database at `url` no longer pending (0 before the schema exists). */
async function settledFiles(url: string): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const { rows } = await c.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM midi.files WHERE status <> 'pending'",
    );
    return rows[0]!.n;
  } catch {
    return 0;
  } finally {
    await c.end();
  }
}

function reportOf(exit: CliExit): LocalRunReport {
  expect(exit.code, exit.stderr.slice(-3000)).toBe(0);
  return lastJson<LocalRunReport>(exit);
}

describe('midi-corpus local on a server it shares', () => {
  let tmp: string;
  let db: TestPostgres;

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'mco-shared-'));
    await chmod(tmp, 0o711);
    db = await startTestPostgres({ maxConnections: MAX_CONNECTIONS });
    const limits = await readServerLimits({ query: (sql: string) => db.query(sql) });
    expect(limits).toEqual({ maxConnections: MAX_CONNECTIONS, reserved: SUPERUSER_RESERVED });
    await db.query(`CREATE ROLE ${RUNNER.role} LOGIN PASSWORD '${RUNNER.password}'`);
    await db.query(`CREATE ROLE ${OTHER_APP.role} LOGIN PASSWORD '${OTHER_APP.password}'`);
    for (const name of ['run_a', 'run_b', 'shrink', 'grow'])
      await db.query(`CREATE DATABASE ${name} OWNER ${RUNNER.role}`);
    await db.query(`CREATE DATABASE other_app OWNER ${OTHER_APP.role}`);
    // The ledger's lock is taken in `postgres`, which every role may connect to by default: nothing to grant.
  });
  afterAll(async () => {
    await db?.destroy();
    await rm(tmp, { recursive: true, force: true });
  });

  it('two runs started at once beside another application never pass the cap together, and both complete', async () => {
    const K = 3;
    const FILES = 40;
    const runs = ['a', 'b'].map((name) => ({
      name,
      root: path.join(tmp, `corpus-${name}`),
      dataDir: path.join(tmp, `data-${name}`),
      url: urlAs(db.url, RUNNER, `run_${name}`),
    }));
    for (const [i, run] of runs.entries()) await writeCorpus(run.root, { files: FILES, seed: 20 + i, size: 'small' });
    const other = await holdConnections(urlAs(db.url, OTHER_APP, 'other_app'), K);
    const sampler = await startSampler(db.url);
    let sampled: Sampled;
    let exits: CliExit[];
    try {
      // The cap alone would fit 4 runners of 2 beside a run's own connection; --max-runners 3 lets each run want more
      // than the two runs together can have: 10 − K − the sampler − 2 control connections leaves 4, 2 runners.
      exits = await Promise.all(
        runs.map(
          (run) =>
            startCli(localArgs(run.root, run.url, run.dataDir, ['--files-per-shard', '8', '--max-runners', '3'])).done,
        ),
      );
    } finally {
      sampled = await sampler.stop();
      await other.release();
    }
    const reports = exits.map(reportOf);
    const figures = reports.map((r) => ({
      runners: r.thisRun.runners,
      peakRunners: r.thisRun.peakRunners,
      peak: r.connections.peak,
      foreign: r.connections.foreign,
      others: r.connections.others,
      waits: r.thisRun.admission.waits,
    }));
    console.log(
      `two runs beside ${K} foreign connections: max_connections ${MAX_CONNECTIONS}, cap ${CAP}, ` +
        `sampler peak ${sampled.peak}, held ${sampled.peakHeld}, waiting probes at most ${sampled.peakWaitingProbes} ` +
        `over ${sampled.samples} samples; ` +
        `runs ${JSON.stringify(figures)}; at the peak ${JSON.stringify(sampled.atPeak)}`,
    );

    for (const [i, r] of reports.entries()) {
      expect({ outcome: r.outcome, ok: r.files.ok, pending: r.files.pending }, runs[i]!.name).toEqual({
        outcome: 'complete',
        ok: FILES,
        pending: 0,
      });
      expect(r.connections.budget).toBe(CAP);
      // The other application's sessions and the sampler's, as every look counted them (an upper bound: no
      // pg_read_all_stats for this role, so the odd autovacuum worker may count too).
      expect(r.connections.foreign.atStart).toBeGreaterThanOrEqual(K + 1);
      expect(r.connections.foreign.peak).toBeGreaterThanOrEqual(K + 1);
      expect(r.connections.foreign.exact).toBe(false);
      expect(r.connections.peak).toBeLessThanOrEqual(CAP);
    }
    for (const [i, exit] of exits.entries()) {
      expect(exit.stdout + exit.stderr).not.toContain('too many clients');
      expect(runnerLogs(runs[i]!.dataDir)).not.toContain('too many clients');
    }
    expect(sampled.samples).toBeGreaterThan(10);
    // Everything that holds connections (claims, the other application, the sampler, the runs' own) stays within the
    // cap. What does not: a runner waiting for room looks at the ledger over a probe connection of its own, for a
    // few round trips, which no admission has counted. Those probes are what the headroom is for (ledger.ts,
    // admission.ts); a run keeps at most one runner that is not yet admitted (supervisor.ts), so two runs have at
    // most two such probes open, the headroom's 2. The whole server's peak may pass the cap by those, never the
    // limit of this role (cap + headroom, where the server would refuse a connection: "too many clients").
    expect(sampled.peakHeld).toBeLessThanOrEqual(CAP);
    expect(sampled.peakWaitingProbes).toBeLessThanOrEqual(runs.length);
    expect(sampled.peak).toBeLessThanOrEqual(CAP + HEADROOM);
  });

  it('plans fewer runners beside another application, and counts it exactly once the role may see every session', async () => {
    const K = 4;
    const root = path.join(tmp, 'corpus-shrink');
    await writeCorpus(root, { files: 32, seed: 30, size: 'small' });
    const url = urlAs(db.url, RUNNER, 'shrink');
    const run = (corpus: string) =>
      runCli(
        localArgs(root, url, path.join(tmp, `data-${corpus}`), [
          '--corpus',
          corpus,
          '--files-per-shard',
          '8',
          '--max-runners',
          '4',
        ]),
      );

    const alone = await run('alone');
    const other = await holdConnections(urlAs(db.url, OTHER_APP, 'other_app'), K);
    let beside: CliExit;
    let monitored: CliExit;
    try {
      beside = await run('beside');
      await db.query(`GRANT pg_monitor TO ${RUNNER.role}`);
      monitored = await run('monitored');
    } finally {
      await other.release();
      await db.query(`REVOKE pg_monitor FROM ${RUNNER.role}`); // the other tests' role has no such grant
    }
    const [a, b, m] = [reportOf(alone), reportOf(beside), reportOf(monitored)];
    console.log(
      `budget shrinks beside ${K} foreign connections: max_connections ${MAX_CONNECTIONS}, cap ${CAP}; ` +
        JSON.stringify(
          [a, b, m].map((r) => ({
            corpus: r.corpus,
            runners: r.thisRun.runners,
            peak: r.connections.peak,
            foreign: r.connections.foreign,
          })),
        ),
    );
    // Alone, 10 − 1 = 9 leaves 4 runners of 2; beside K = 4 others, 9 − 4 = 5 leaves 2.
    expect(a.thisRun.runners).toBeGreaterThan(b.thisRun.runners);
    expect(b.thisRun.runners).toBeLessThanOrEqual(2);
    expect(b.connections.foreign.atStart).toBeGreaterThanOrEqual(K);
    expect({ runners: m.thisRun.runners, foreign: m.connections.foreign.atStart }).toEqual({ runners: 2, foreign: K });
    expect([a, b, m].map((r) => r.connections.foreign.exact)).toEqual([false, false, true]);
    expect(alone.stderr).toContain('upper bound: grant pg_monitor for an exact count');
    expect(beside.stderr).toContain('upper bound: grant pg_monitor for an exact count');
    expect(monitored.stderr).not.toContain('grant pg_monitor');
    for (const r of [a, b, m]) expect({ outcome: r.outcome, ok: r.files.ok }).toEqual({ outcome: 'complete', ok: 32 });
  });

  it('shrinks to one runner while another application holds most of the cap, and grows back when it leaves', async () => {
    const K = 7;
    const FILES = 240;
    const root = path.join(tmp, 'corpus-grow');
    await writeCorpus(root, { files: FILES, seed: 40, size: 'small' });
    const url = urlAs(db.url, RUNNER, 'grow');
    const other = await holdConnections(urlAs(db.url, OTHER_APP, 'other_app'), K);
    const run = startCli(
      localArgs(root, url, path.join(tmp, 'data-grow'), ['--files-per-shard', '40', '--max-runners', '4']),
    );
    try {
      await waitUntil('a first file settled', async () => (await settledFiles(url)) > 0, 60_000);
    } finally {
      await other.release();
    }
    const report = reportOf(await run.done);
    console.log(
      `grows back when ${K} foreign connections leave: max_connections ${MAX_CONNECTIONS}, cap ${CAP}; ` +
        JSON.stringify({
          runners: report.thisRun.runners,
          peakRunners: report.thisRun.peakRunners,
          peak: report.connections.peak,
          others: report.connections.others,
          foreign: report.connections.foreign,
          waits: report.thisRun.admission.waits,
        }),
    );
    // 10 − 1 for the run itself − 7 leaves 2: one runner of 2 at the start, of the 4 slots the cap alone allows.
    expect(report.thisRun.runners).toBe(1);
    expect(report.connections.others.atStart).toBeGreaterThanOrEqual(K);
    expect(report.connections.others.last).toBeLessThan(K);
    expect(report.thisRun.peakRunners).toBeGreaterThanOrEqual(2);
    expect(report.connections.peak).toBeLessThanOrEqual(CAP);
    expect({ outcome: report.outcome, ok: report.files.ok }).toEqual({ outcome: 'complete', ok: FILES });
  });
});
