import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANALYSIS_VERSION } from '../../../job-runner/analysis/version.js';
import { badInputs } from '../../../job-runner/synth/bad-inputs.js';
import {
  longLatin1Name,
  manyMalformedTempos,
  manyNotes,
  manyUnknownChunks,
} from '../../../job-runner/synth/hostile-inputs.js';
import { MAX_WARNINGS_PER_FILE } from '../../../job-runner/analysis/warnings.js';
import { memoryPlan } from '../../../job-runner/runner/memory.js';
import { generateCorpus } from '../../../job-runner/synth/corpus.js';
import { OUTSIDE_ROOT_REASON } from '../../../job-runner/runner/list.js';
import { startTestPostgres, type TestPostgres } from '../../support/postgres.js';
import { waitUntil } from '../../support/wait.js';
import { addOddities, lastJson, ODDITIES, runCli, startCli, writeCorpus } from './cli.js';

interface FileRow {
  path: string;
  raw_path: Buffer;
  status: string;
  reason: string | null;
  warnings: string[];
  sha256: Buffer | null;
  attempts: number;
}

/** The runner as Kubernetes runs it: `scan`, then `run-shard` per shard, each a real process on a real Postgres. */
describe('run-shard', () => {
  let db: TestPostgres;
  let tmp: string;

  beforeAll(async () => {
    db = await startTestPostgres();
    tmp = await mkdtemp(path.join(os.tmpdir(), 'mco-run-shard-'));
  });
  afterAll(async () => {
    await db?.destroy();
    await rm(tmp, { recursive: true, force: true });
  });

  async function files(url: string): Promise<FileRow[]> {
    const pg = (await import('pg')).default;
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      return (
        await client.query<FileRow>(
          'SELECT path, raw_path, status, reason, warnings, sha256, attempts FROM midi.files ORDER BY raw_path',
        )
      ).rows;
    } finally {
      await client.end();
    }
  }

  async function count(url: string, sql: string): Promise<number> {
    const pg = (await import('pg')).default;
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      return Number((await client.query<{ n: string }>(sql)).rows[0]!.n);
    } finally {
      await client.end();
    }
  }

  async function scan(url: string, root: string, shardArgs: string[]) {
    const exit = await runCli(['scan', '--corpus', 'c', '--root', root, ...shardArgs, '--json'], { DATABASE_URL: url });
    expect(exit.code, exit.stderr).toBe(0);
    return lastJson<{ files: number; shards: number; problems: number }>(exit);
  }

  async function runShard(
    url: string,
    root: string,
    shard: number,
    extra: string[] = [],
    env: Record<string, string> = {},
  ) {
    const exit = await runCli(
      ['run-shard', '--corpus', 'c', '--root', root, '--shard', String(shard), '--json', ...extra],
      { DATABASE_URL: url, ...env },
    );
    expect(exit.code, exit.stderr.slice(-3000)).toBe(0);
    return lastJson<{
      files: number;
      recorded: { ok: number; failed: number; skipped: number };
      unchanged: number;
      settled: number;
      workersReplaced: number;
    }>(exit);
  }

  describe('on a corpus with every kind of bad input', () => {
    let url: string;
    let root: string;
    let goodPaths: string[];

    beforeAll(async () => {
      url = await db.createDatabase('bad_inputs');
      root = path.join(tmp, 'bad-corpus');
      goodPaths = (await writeCorpus(root, { files: 12, bad: true })).filter((p) => !p.startsWith('bad/'));
      await addOddities(root, path.join(tmp, 'outside'), generateCorpus({ files: 1, seed: 99 })[0]!.bytes);
      const summary = await scan(url, root, ['--shards', '3']);
      expect(summary).toMatchObject({ files: goodPaths.length + badInputs().length + 4, shards: 3, problems: 3 });
      for (const shard of [0, 1, 2]) await runShard(url, root, shard);
    });

    it('records each bad MIDI file as the analysis judges it: a failure of its kind, or a success with its warning', async () => {
      const byPath = new Map((await files(url)).map((r) => [r.path, r]));
      for (const bad of badInputs()) {
        const row = byPath.get(`bad/${bad.name}`)!;
        if (bad.expect.ok) {
          expect({ name: bad.name, status: row.status }).toEqual({ name: bad.name, status: 'ok' });
          expect(
            row.warnings.some((w) => w.includes((bad.expect as { warning: string }).warning)),
            `${bad.name}: ${row.warnings.join('; ')}`,
          ).toBe(true);
        } else {
          expect({ name: bad.name, status: row.status, kind: row.reason?.split(':')[0] }).toEqual({
            name: bad.name,
            status: 'failed',
            kind: bad.expect.kind,
          });
        }
      }
    });

    it('records file-system oddities with precise reasons, never reading what a symlink outside the root points at', async () => {
      const byPath = new Map((await files(url)).map((r) => [r.path, r]));
      const pick = (p: string) => ({
        status: byPath.get(p)?.status,
        reason: byPath.get(p)?.reason,
        hashed: byPath.get(p)?.sha256 !== null,
      });
      expect({
        outside: pick(ODDITIES.outsideLink),
        dangling: pick(ODDITIES.dangling),
        fifo: pick(ODDITIES.fifo),
        latin1: pick(ODDITIES.latin1Display),
      }).toEqual({
        outside: { status: 'skipped', reason: OUTSIDE_ROOT_REASON, hashed: false },
        dangling: { status: 'failed', reason: 'symlink target does not exist (dangling symlink)', hashed: false },
        fifo: { status: 'failed', reason: 'not a regular file (a FIFO)', hashed: false },
        latin1: { status: 'ok', reason: null, hashed: true },
      });
      expect(byPath.get(ODDITIES.latin1Display)!.raw_path.equals(ODDITIES.latin1Name)).toBe(true);
    });

    it('records every good file with its content hash and one analysis row, and leaves nothing pending', async () => {
      const rows = await files(url);
      for (const p of goodPaths) {
        const row = rows.find((r) => r.path === p)!;
        expect(row.status).toBe('ok');
        expect(row.sha256!.toString('hex')).toBe(
          createHash('sha256')
            .update(await readFile(path.join(root, p)))
            .digest('hex'),
        );
      }
      expect(rows.filter((r) => r.status === 'pending')).toEqual([]);
      expect(await count(url, 'SELECT count(*) AS n FROM midi.file_analysis')).toBe(
        rows.filter((r) => r.status === 'ok').length,
      );
    });

    it('a rerun reads every file, writes nothing, and leaves the very same rows', async () => {
      const before = await files(url);
      const summaries = [];
      for (const shard of [0, 1, 2]) summaries.push(await runShard(url, root, shard));
      const after = await files(url);
      expect(after).toEqual(before);
      const recorded = summaries.reduce((n, s) => n + s.recorded.ok + s.recorded.failed + s.recorded.skipped, 0);
      const unchanged = summaries.reduce((n, s) => n + s.unchanged, 0);
      const settled = summaries.reduce((n, s) => n + s.settled, 0);
      // The scan's own problem entries (the oddities, never hashed) are parked past the last shard: no runner lists
      // them, so none is counted as settled; every other file was read and found unchanged.
      expect({ recorded, unchanged, settled }).toEqual({
        recorded: 0,
        unchanged: before.filter((r) => r.sha256 !== null).length,
        settled: 0,
      });
      expect(before.filter((r) => r.sha256 === null).length).toBe(3);
    });

    it('on a rerun, analyses again only the files whose results an older analysis version made', async () => {
      const pg = (await import('pg')).default;
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      let stale: string[];
      try {
        const { rows: versions } = await client.query<{ v: number | null; n: string }>(
          'SELECT analysis_version AS v, count(*) AS n FROM midi.files WHERE sha256 IS NOT NULL GROUP BY 1',
        );
        expect(versions).toEqual([{ v: ANALYSIS_VERSION, n: expect.any(String) }]);
        // Two results of version 1, one good file's and one failure's; one row of a release that wrote no version.
        const { rows } = await client.query<{ path: string }>(
          `UPDATE midi.files SET analysis_version = CASE WHEN path = $2 THEN NULL ELSE 1 END
            WHERE path = ANY($1) OR path = $2 RETURNING path`,
          [[goodPaths[0], 'bad/bit-flipped.mid'], goodPaths[1]],
        );
        stale = rows.map((r) => r.path).sort();
      } finally {
        await client.end();
      }
      expect(stale).toHaveLength(3);
      const before = new Map((await files(url)).map((r) => [r.path, r]));
      const summaries = [];
      for (const shard of [0, 1, 2]) summaries.push(await runShard(url, root, shard));
      const after = await files(url);
      const rewritten = after.filter((r) => r.attempts !== before.get(r.path)!.attempts).map((r) => r.path);
      expect(rewritten.sort()).toEqual(stale);
      expect(summaries.reduce((n, s) => n + s.recorded.ok + s.recorded.failed, 0)).toBe(3);
      expect(
        await count(
          url,
          `SELECT count(*) AS n FROM midi.files WHERE sha256 IS NOT NULL AND analysis_version IS DISTINCT FROM ${ANALYSIS_VERSION}`,
        ),
      ).toBe(0);
      for (const r of after) expect({ ...r, attempts: 0 }).toEqual({ ...before.get(r.path)!, attempts: 0 });
    });
  });

  it('bounds every file by the memory limit the pod gives: hostile files are recorded with their reasons, none kills the runner', async () => {
    const url = await db.createDatabase('memory_limit');
    const root = path.join(tmp, 'memory-corpus');
    const written = await writeCorpus(root, { files: 4, seed: 5 });
    const hostile = {
      'hostile/notes.mid': manyNotes(1_000_000), // 2 million events: more than a 512 MiB pod allows one file
      'hostile/tempos.mid': manyMalformedTempos(1_000_000),
      'hostile/chunks.mid': manyUnknownChunks(1_000_000),
      'hostile/name.mid': longLatin1Name(4 * 1024 * 1024),
    };
    await mkdir(path.join(root, 'hostile'));
    for (const [p, bytes] of Object.entries(hostile)) await writeFile(path.join(root, p), bytes);
    await scan(url, root, ['--shards', '1']);
    const plan = memoryPlan(512 * 1024 * 1024, 1, { maxEvents: 5_000_000, workerHeapMb: 1024, maxFileBytes: 64 << 20 });
    const summary = await runShard(url, root, 0, ['--cpu-millis', '1000'], {
      MEMORY_LIMIT_BYTES: String(512 * 1024 * 1024),
    });
    expect(summary.recorded).toEqual({ ok: written.length + 3, failed: 1, skipped: 0 });
    expect(summary.workersReplaced).toBe(0);
    const byPath = new Map((await files(url)).map((r) => [r.path, r]));
    expect(byPath.get('hostile/notes.mid')).toMatchObject({
      status: 'failed',
      reason: expect.stringMatching(
        new RegExp(
          `^too many events: more than ${plan.maxEvents} events .*; ${plan.maxEvents} events is the most this pod's memory limit allows per file$`,
        ),
      ),
    });
    for (const p of ['hostile/tempos.mid', 'hostile/chunks.mid']) {
      expect(byPath.get(p)?.status).toBe('ok');
      expect(byPath.get(p)?.warnings).toHaveLength(MAX_WARNINGS_PER_FILE + 1);
    }
    expect(byPath.get('hostile/name.mid')?.status).toBe('ok');
    // Without a limit, the same file is within the reader's own bound and is analysed.
    const free = await runShard(url, root, 0, ['--retry-failed']);
    expect(free.recorded.ok).toBeGreaterThanOrEqual(1);
    expect((await files(url)).find((r) => r.path === 'hostile/notes.mid')?.status).toBe('ok');
  });

  it('refuses a file over the size limit before reading it, with its size and the limit in the reason', async () => {
    const url = await db.createDatabase('size_limit');
    const root = path.join(tmp, 'size-corpus');
    const written = await writeCorpus(root, { files: 8, seed: 3 });
    const sizes = await Promise.all(written.map(async (p) => ({ p, size: (await stat(path.join(root, p))).size })));
    const limit = [...sizes].sort((a, b) => a.size - b.size)[3]!.size;
    await scan(url, root, ['--shards', '1']);
    await runShard(url, root, 0, ['--max-file-bytes', String(limit)]);
    const rows = await files(url);
    expect(rows.map((r) => ({ path: r.path, status: r.status, reason: r.reason }))).toEqual(
      [...sizes]
        .sort((a, b) => Buffer.compare(Buffer.from(a.p), Buffer.from(b.p)))
        .map(({ p, size }) => ({
          path: p,
          status: size > limit ? 'failed' : 'ok',
          reason: size > limit ? `file is ${size} bytes, over the limit of ${limit}` : null,
        })),
    );
  });

  it('stops an analysis past the time limit, records it as failed, and finishes the shard; --retry-failed analyses it again', async () => {
    const url = await db.createDatabase('time_limit');
    const root = path.join(tmp, 'time-corpus');
    await writeCorpus(root, { files: 1, seed: 5, size: 'large' });
    await scan(url, root, ['--shards', '1']);
    // 1 ms: no worker can even start in that time, so the worker is always stopped mid-task and replaced.
    const first = await runShard(url, root, 0, ['--file-timeout-ms', '1']);
    expect(first.workersReplaced).toBeGreaterThanOrEqual(1);
    const [row] = await files(url);
    expect({ status: row!.status, reason: row!.reason, hashed: row!.sha256 !== null }).toEqual({
      status: 'failed',
      reason: 'analysis took longer than 1 ms',
      hashed: true,
    });
    // The same bytes, the same verdict: a plain rerun does not try again...
    expect((await runShard(url, root, 0)).unchanged).toBe(1);
    // ...until asked to.
    expect((await runShard(url, root, 0, ['--retry-failed'])).recorded.ok).toBe(1);
  });

  it('writes each note-holding track of a multi-track file with --split-output, recorded with its hash', async () => {
    const url = await db.createDatabase('split');
    const root = path.join(tmp, 'split-corpus');
    const out = path.join(tmp, 'split-out');
    await writeCorpus(root, { files: 4, seed: 11, size: 'medium' });
    await scan(url, root, ['--shards', '1']);
    await runShard(url, root, 0, ['--split-output', out]);
    const pg = (await import('pg')).default;
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const { rows } = await client.query<{ output_path: string; size_bytes: string; sha256: Buffer }>(
      'SELECT output_path, size_bytes, sha256 FROM midi.split_tracks',
    );
    await client.end();
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) {
      const bytes = await readFile(r.output_path);
      expect({ size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') }).toEqual({
        size: Number(r.size_bytes),
        sha256: r.sha256.toString('hex'),
      });
      expect(r.output_path.startsWith(out)).toBe(true);
    }
  });

  describe('interrupted mid-shard', () => {
    const TOTAL = 900;
    let root: string;

    beforeAll(async () => {
      root = path.join(tmp, 'big-corpus');
      await writeCorpus(root, { files: TOTAL, seed: 21, size: 'small' });
    });

    /** Starts a runner and resolves once it has committed some but not all files. */
    async function startAndWaitForProgress(url: string, extra: string[]) {
      const proc = startCli(['run-shard', '--corpus', 'c', '--root', root, '--shard', '0', '--json', ...extra], {
        DATABASE_URL: url,
      });
      let done = 0;
      await waitUntil(
        'the runner to commit its first batch',
        async () => (done = await count(url, "SELECT count(*) AS n FROM midi.files WHERE status <> 'pending'")) > 0,
        60_000,
      );
      expect(done, 'the runner finished before it could be interrupted: use a bigger corpus').toBeLessThan(TOTAL);
      return proc;
    }

    it('SIGKILL, then a rerun: every file recorded exactly once', async () => {
      const url = await db.createDatabase('sigkill');
      await scan(url, root, ['--shards', '1']);
      const proc = await startAndWaitForProgress(url, ['--batch-files', '10']);
      proc.child.kill('SIGKILL');
      expect((await proc.done).signal).toBe('SIGKILL');
      const afterKill = await count(url, "SELECT count(*) AS n FROM midi.files WHERE status <> 'pending'");
      expect(afterKill).toBeLessThan(TOTAL);
      const rerun = await runShard(url, root, 0);
      expect(rerun.recorded.ok + rerun.unchanged).toBe(TOTAL);
      expect({
        files: await count(url, 'SELECT count(*) AS n FROM midi.files'),
        ok: await count(url, "SELECT count(*) AS n FROM midi.files WHERE status = 'ok'"),
        analyses: await count(url, 'SELECT count(*) AS n FROM midi.file_analysis'),
        distinctPaths: await count(url, 'SELECT count(DISTINCT raw_path) AS n FROM midi.files'),
        writtenTwice: await count(url, 'SELECT count(*) AS n FROM midi.files WHERE attempts > 1'),
      }).toEqual({ files: TOTAL, ok: TOTAL, analyses: TOTAL, distinctPaths: TOTAL, writtenTwice: 0 });
    });

    it('SIGTERM: exit 75, only whole batches committed, and a rerun finishes the shard', async () => {
      const url = await db.createDatabase('sigterm');
      await scan(url, root, ['--shards', '1']);
      // Batches go by size only (the delay is out of reach), so a partial batch would show as a count off the grid.
      const batch = 25;
      const proc = await startAndWaitForProgress(url, ['--batch-files', String(batch), '--batch-delay-ms', '600000']);
      proc.child.kill('SIGTERM');
      const exit = await proc.done;
      expect(exit.code, exit.stderr.slice(-2000)).toBe(75);
      const committed = await count(url, "SELECT count(*) AS n FROM midi.files WHERE status <> 'pending'");
      expect(committed % batch).toBe(0);
      expect(committed).toBeLessThan(TOTAL);
      expect(await count(url, 'SELECT count(*) AS n FROM midi.file_analysis')).toBe(committed);
      await runShard(url, root, 0);
      expect(await count(url, "SELECT count(*) AS n FROM midi.files WHERE status = 'ok'")).toBe(TOTAL);
    });
  });

  describe('exits 64 (retrying cannot help)', () => {
    // Against a scanned corpus and a real root, so that each case breaks one thing only: the check that must catch it,
    // as its message shows. (In an empty database every case would exit 64 for the unscanned corpus.)
    let url: string;
    let root: string;

    beforeAll(async () => {
      url = await db.createDatabase('usage');
      root = path.join(tmp, 'usage-corpus');
      await writeCorpus(root, { files: 2 });
      await scan(url, root, ['--shards', '1']);
    });

    it.each<[string, (root: string) => string[], number, RegExp]>([
      [
        'a corpus that was never scanned',
        (root) => ['--corpus', 'never-scanned', '--root', root, '--shard', '0'],
        64,
        /never-scanned.{0,2} has not been scanned/,
      ],
      [
        'a missing root',
        () => ['--corpus', 'c', '--root', '/nonexistent/corpus', '--shard', '0'],
        64,
        /--root must be a readable directory, got \/nonexistent\/corpus \(not found\)/,
      ],
      [
        'no shard number',
        (root) => ['--corpus', 'c', '--root', root],
        64,
        /no --shard: pass --shard N or set JOB_COMPLETION_INDEX/,
      ],
    ])('for %s', async (_name, args, code, message) => {
      const exit = await runCli(['run-shard', ...args(root)], { DATABASE_URL: url, JOB_COMPLETION_INDEX: undefined });
      expect(exit.code, exit.stderr.slice(-2000)).toBe(code);
      expect(exit.stderr).toMatch(message);
    });
  });
});
