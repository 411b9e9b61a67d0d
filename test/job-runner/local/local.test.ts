import { readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, unlink, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalRunReport } from '../../../job-runner/local/report.js';
import { OUTSIDE_ROOT_REASON } from '../../../job-runner/runner/list.js';
import { badInputs } from '../../../job-runner/synth/bad-inputs.js';
import { generateCorpus } from '../../../job-runner/synth/corpus.js';
import { startTestPostgres, type TestPostgres } from '../../support/postgres.js';
import { waitUntil } from '../../support/wait.js';
import { addOddities, lastJson, ODDITIES, runCli, startCli, writeCorpus } from '../runner/cli.js';

/** Files no longer pending (0 before the schema exists). */
async function settled(url: string): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return Number(
      (await c.query<{ n: string }>("SELECT count(*) AS n FROM midi.files WHERE status <> 'pending'")).rows[0]!.n,
    );
  } catch {
    return 0;
  } finally {
    await c.end();
  }
}

/** Pids of the `run-shard` processes whose parent is `parent` (from /proc). */
function runnerChildren(parent: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === parent && readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('run-shard'))
        pids.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return pids;
}

/** Whether process `pid` has ended: gone, or a zombie that its new parent has not reaped yet. */
function ended(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

/** Polls `check` until it holds, failing after `withinMs`. */
async function waitFor(what: string, withinMs: number, check: () => boolean | Promise<boolean>): Promise<void> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > withinMs) throw new Error(`${what}: not within ${withinMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Connections on the database that carry one of our application names (contract/application-name.ts). */
async function ourConnections(url: string): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const { rows } = await c.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'mco %'",
    );
    return rows[0]!.n;
  } finally {
    await c.end();
  }
}

/** The JSON log lines of the last attempt at `shard` under local mode's data directory (one run there). */
function runnerLog(dataDir: string, shard: number): Array<Record<string, unknown>> {
  const logs = path.join(dataDir, 'logs');
  const [run] = readdirSync(logs);
  const attempts = readdirSync(path.join(logs, run!)).filter((f) => f.startsWith(`shard-${shard}-attempt-`));
  const last = attempts.sort((a, b) => Number(/(\d+)\.log$/.exec(a)![1]) - Number(/(\d+)\.log$/.exec(b)![1])).pop()!;
  return readFileSync(path.join(logs, run!, last), 'utf8')
    .trim()
    .split('\n')
    .filter((line) => line.startsWith('{')) // Node's own words on a crash are not JSON
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** `midi-corpus local`, run as a user runs it: a real process that starts real runner processes. */
describe('midi-corpus local', () => {
  let tmp: string;

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'mco-local-'));
    // The tests run as root, where the embedded server runs as user postgres: it must be able to enter the data dir's parents.
    await chmod(tmp, 0o711);
  });
  afterAll(async () => rm(tmp, { recursive: true, force: true }));

  describe('on the embedded Postgres, over a corpus with bad files', () => {
    const GOOD = 40;
    const badFailing = badInputs().filter((b) => !b.expect.ok);
    const badPassing = badInputs().filter((b) => b.expect.ok);
    let root: string;
    let dataDir: string;
    let first: LocalRunReport;

    beforeAll(async () => {
      root = path.join(tmp, 'corpus');
      dataDir = path.join(tmp, 'data');
      await writeCorpus(root, { files: GOOD, bad: true });
      await addOddities(root, path.join(tmp, 'outside'), generateCorpus({ files: 1, seed: 99 })[0]!.bytes);
      const exit = await runCli(['local', root, '--data-dir', dataDir, '--json'], { DATABASE_URL: undefined });
      expect(exit.code, exit.stderr.slice(-3000)).toBe(0);
      first = lastJson<LocalRunReport>(exit);
    });

    it('completes, with the counts the corpus implies', () => {
      expect({ outcome: first.outcome, files: first.files }).toEqual({
        outcome: 'complete',
        files: {
          total: GOOD + badInputs().length + 4,
          ok: GOOD + badPassing.length + 1, // + the non-UTF-8 name
          failed: badFailing.length + 2, // + the dangling symlink and the FIFO
          skipped: 1, // the symlink out of the root
          pending: 0,
          missing: 0,
        },
      });
    });

    it('lists every failure and skip with its precise reason', () => {
      const reasons = new Map(first.failures.map((f) => [f.path, f.reason]));
      for (const bad of badFailing)
        expect(reasons.get(`bad/${bad.name}`)?.split(':')[0], bad.name).toBe((bad.expect as { kind: string }).kind);
      expect(reasons.get(ODDITIES.dangling)).toBe('symlink target does not exist (dangling symlink)');
      expect(reasons.get(ODDITIES.fifo)).toBe('not a regular file (a FIFO)');
      expect(reasons.get(ODDITIES.outsideLink)).toBe(OUTSIDE_ROOT_REASON);
    });

    it('stays within its connection budget, by pg_stat_activity', () => {
      expect(first.connections.samples).toBeGreaterThan(0);
      expect(first.connections.peak).toBeGreaterThanOrEqual(1);
      expect(first.connections.peak).toBeLessThanOrEqual(first.connections.budget);
    });

    it('a second run over the same data directory finds the results and skips every file', async () => {
      const exit = await runCli(['local', root, '--data-dir', dataDir, '--json'], { DATABASE_URL: undefined });
      expect(exit.code, exit.stderr.slice(-3000)).toBe(0);
      const second = lastJson<LocalRunReport>(exit);
      expect(second.files).toEqual(first.files);
      expect(second.failures).toEqual(first.failures);
      expect(second.thisRun.recorded).toEqual({ ok: 0, failed: 0, skipped: 0 });
      // Only the failures with a recorded hash were given to a runner (failed files are work), read again and found
      // unchanged; the analysed files, unchanged since the last scan, were not even read.
      expect(second.thisRun.unchanged).toBe(badFailing.length);
    });

    it('tells how to look at the results without printing the password', async () => {
      const exit = await runCli(['local', root, '--data-dir', dataDir], { DATABASE_URL: undefined });
      expect(exit.stderr).toContain(
        `npx midi-corpus query --data-dir ${path.relative(process.cwd(), dataDir)} "SELECT`,
      );
      expect(exit.stderr).not.toMatch(/psql|midi-corpus db/);
      const password = readFileSync(path.join(dataDir, 'password'), 'utf8').trim();
      expect(exit.stderr).not.toContain(password);
      expect(exit.stdout).not.toContain(password);
    });
  });

  describe('against a server with few connections', () => {
    let db: TestPostgres;
    let root: string;

    beforeAll(async () => {
      db = await startTestPostgres({ maxConnections: 20 });
      root = path.join(tmp, 'budget-corpus');
      await writeCorpus(root, { files: 400, seed: 4, size: 'small' });
    });
    afterAll(async () => db?.destroy());

    it('never holds more connections than its budget, as an independent observer counts them', async () => {
      const url = await db.createDatabase('budget');
      const observer = new pg.Client({ connectionString: url });
      await observer.connect();
      let observedPeak = 0;
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          const { rows } = await observer.query<{ n: number }>(
            "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'mco %'",
          );
          observedPeak = Math.max(observedPeak, rows[0]!.n);
          await new Promise((r) => setTimeout(r, 10));
        }
      })();
      // 12 − 3 reserved (superuser_reserved_connections) − 2 headroom = 7: local mode's 1, the observer's 1 (another
      // application as far as the run can tell) and 2 runners of 2.
      const exit = await runCli([
        'local',
        root,
        '--database-url',
        url,
        '--max-connections',
        '12',
        '--max-runners',
        '10',
        '--files-per-shard',
        '40',
        '--json',
      ]);
      sampling = false;
      await sampler;
      await observer.end();
      expect(exit.code, exit.stderr.slice(-3000)).toBe(0);
      const report = lastJson<LocalRunReport>(exit);
      expect({
        budget: report.connections.budget,
        runners: report.thisRun.runners,
        peakRunners: report.thisRun.peakRunners,
        foreign: report.connections.foreign,
        ok: report.files.ok,
      }).toEqual({
        budget: 7,
        runners: 2,
        peakRunners: 2,
        // A superuser sees every session's type: the count is exact.
        foreign: { atStart: 1, peak: 1, last: 1, exact: true },
        ok: 400,
      });
      expect(observedPeak).toBeGreaterThan(1);
      expect(observedPeak).toBeLessThanOrEqual(7);
      expect(report.connections.peak).toBeLessThanOrEqual(7);
    });

    it('refuses to start when not even one runner fits, saying what to change (exit 64)', async () => {
      const url = await db.createDatabase('too_small');
      const exit = await runCli(['local', root, '--database-url', url, '--max-connections', '7']);
      expect(exit.code).toBe(64);
      expect(exit.stderr).toMatch(/no runner fits the connection budget.*Raise --max-connections/);
    });

    it('runs a shard again when its runner is killed, and ends with every file recorded exactly once', async () => {
      const url = await db.createDatabase('runner_killed');
      const big = path.join(tmp, 'kill-corpus');
      await writeCorpus(big, { files: 1200, seed: 9, size: 'small' });
      const run = startCli([
        'local',
        big,
        '--database-url',
        url,
        '--files-per-shard',
        '300',
        '--max-runners',
        '2',
        '--json',
      ]);
      await waitUntil('a first batch to be committed', async () => (await settled(url)) > 0, 60_000);
      const [victim] = runnerChildren(run.child.pid!);
      expect(victim, 'no runner process found').toBeDefined();
      process.kill(victim!, 'SIGKILL');
      const exit = await run.done;
      expect(exit.code, exit.stderr.slice(-3000)).toBe(0);
      const report = lastJson<LocalRunReport>(exit);
      expect(report.thisRun.retries).toBeGreaterThanOrEqual(1);
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      const { rows } = await c.query<{ files: number; ok: number; analyses: number; paths: number }>(
        `SELECT (SELECT count(*)::int FROM midi.files) AS files, (SELECT count(*)::int FROM midi.files WHERE status = 'ok') AS ok,
                (SELECT count(*)::int FROM midi.file_analysis) AS analyses, (SELECT count(DISTINCT raw_path)::int FROM midi.files) AS paths`,
      );
      await c.end();
      expect(rows[0]).toEqual({ files: 1200, ok: 1200, analyses: 1200, paths: 1200 });
    });

    it('takes its runners with it when SIGKILLed: they stop as on SIGTERM, and the run holds no connection', async () => {
      const url = await db.createDatabase('local_killed');
      const big = path.join(tmp, 'orphan-corpus');
      const dataDir = path.join(tmp, 'orphan-data');
      await writeCorpus(big, { files: 2000, seed: 10, size: 'small' });
      const run = startCli([
        'local',
        big,
        '--database-url',
        url,
        '--data-dir',
        dataDir,
        '--files-per-shard',
        '1000',
        '--max-runners',
        '2',
      ]);
      let runners: number[] = [];
      let shards: number[] = [];
      try {
        await waitFor('a first file settled', 60_000, async () => (await settled(url)) > 0);
        runners = runnerChildren(run.child.pid!);
        expect(runners.length, 'no runner process found').toBeGreaterThan(0);
        shards = runners.map((pid) => {
          const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
          return Number(cmdline[cmdline.indexOf('--shard') + 1]);
        });
        run.child.kill('SIGKILL');
        expect((await run.done).signal).toBe('SIGKILL');
        await waitFor('every runner ended', 5_000, () => runners.every(ended));
        await waitFor("the run's connections closed", 5_000, async () => (await ourConnections(url)) === 0);
      } catch (err) {
        for (const pid of runners) if (!ended(pid)) process.kill(pid, 'SIGKILL'); // leave none behind a failure
        throw err;
      }
      // Each stopped because its parent was gone, as on SIGTERM (exit 75), with its shard unfinished. (This is what shows
      // the cause: a shard this small could also end by itself within the deadline.)
      for (const shard of shards) {
        const lines = runnerLog(dataDir, shard);
        expect(lines.find((l) => l.msg === 'shutdown requested: finishing the batches in flight')?.reason).toBe(
          'the end of local mode, its parent',
        );
        expect(lines.find((l) => l.msg === 'shard not finished')?.exitCode).toBe(75);
      }
      expect(await settled(url)).toBeLessThan(2000);
    });

    it('run again after files were added, changed and deleted, analyses exactly those, on the same rows', async () => {
      const url = await db.createDatabase('again');
      const dir = path.join(tmp, 'again-corpus');
      const songs = await writeCorpus(dir, { files: 30, seed: 11, size: 'small' });
      const first = await runCli(['local', dir, '--database-url', url, '--files-per-shard', '7', '--json']);
      expect(first.code, first.stderr.slice(-3000)).toBe(0);
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        const files = async () =>
          new Map(
            (
              await c.query<{ path: string; status: string; attempts: number; analysed_at: Date | null; id: string }>(
                'SELECT id, path, status, attempts, analysed_at FROM midi.files',
              )
            ).rows.map((r) => [r.path, r]),
          );
        const before = await files();
        expect([...before.values()].every((f) => f.status === 'ok' && f.attempts === 1)).toBe(true);

        const [changed, touched, deleted] = [songs[3]!, songs[10]!, songs[20]!];
        const extra = generateCorpus({ files: 2, seed: 12, song: { size: 'small' } });
        for (const f of extra) {
          await mkdir(path.dirname(path.join(dir, 'added', f.path)), { recursive: true });
          await writeFile(path.join(dir, 'added', f.path), f.bytes);
        }
        // Changed content and size; the same bytes under a new modification time; a file gone.
        await writeFile(
          path.join(dir, changed),
          Buffer.concat([await readFile(path.join(dir, changed)), Buffer.alloc(1)]),
        );
        await utimes(path.join(dir, touched), new Date(), new Date(Date.now() - 3_600_000));
        await unlink(path.join(dir, deleted));

        const again = await runCli(['local', dir, '--database-url', url, '--files-per-shard', '7', '--json']);
        expect(again.code, again.stderr.slice(-3000)).toBe(0);
        const report = lastJson<LocalRunReport>(again);
        // added 2 + changed 1 + touched 1 = 4 files of work: one shard of 7.
        expect(report.thisRun.shards).toBe(1);
        // No runner read a file only to find it unchanged: the unchanged ones were never given to one.
        expect(report.thisRun.unchanged).toBe(0);
        expect(report.files).toMatchObject({ total: 31, pending: 0, missing: 1 });
        const after = await files();
        const analysedAgain = [...after.values()]
          .filter((f) => f.attempts > 1)
          .map((f) => f.path)
          .sort();
        expect(analysedAgain).toEqual([changed, touched].sort());
        for (const f of extra) expect(after.get(`added/${f.path}`)).toMatchObject({ status: 'ok', attempts: 1 });
        expect(after.get(deleted)).toMatchObject({ status: 'missing', attempts: 1, id: before.get(deleted)!.id });
        for (const [p, old] of before) {
          if (p === changed || p === touched) continue;
          // Same row, never written again: neither its attempts nor its analysis time moved.
          expect(after.get(p)).toMatchObject({ id: old.id, attempts: 1, analysed_at: old.analysed_at });
        }
      } finally {
        await c.end();
      }
    });

    it('rides out a Postgres restart in mid-run and ends with every file recorded', async () => {
      const url = await db.createDatabase('restart');
      const big = path.join(tmp, 'restart-corpus');
      await writeCorpus(big, { files: 1500, seed: 8, size: 'small' });
      const run = startCli(['local', big, '--database-url', url, '--files-per-shard', '300', '--json']);
      let before = 0;
      await waitUntil('a first batch to be committed', async () => (before = await settled(url)) > 0, 60_000);
      expect(before).toBeLessThan(1500);
      await db.stop();
      await new Promise((r) => setTimeout(r, 1500));
      await db.start();
      const exit = await run.done;
      expect(exit.code, exit.stderr.slice(-3000)).toBe(0);
      const report = lastJson<LocalRunReport>(exit);
      expect({ outcome: report.outcome, ok: report.files.ok, pending: report.files.pending }).toEqual({
        outcome: 'complete',
        ok: 1500,
        pending: 0,
      });
    });
  });
});
