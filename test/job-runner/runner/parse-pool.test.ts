import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ParsePool, type ParseJob } from '../../../job-runner/runner/parse-pool.js';
import { generateCorpus } from '../../../job-runner/synth/corpus.js';
import { DEFAULT_READER_LIMITS } from '../../../job-runner/analysis/smf-reader.js';

/**
 * A worker that misbehaves on request, by file name: `crash` throws outside any handler, `oom` allocates until its
 * heap limit kills it, `hang` never answers, `slow` answers after 0.7 s of work. Anything else is answered as unchanged.
 * It says it is ready as the real worker does, after START_DELAY_MS of start-up work (a slow module load).
 */
const misbehavingWorker = (startDelayMs = 0) => `
import { parentPort } from 'node:worker_threads';
const started = Date.now() + ${startDelayMs};
while (Date.now() < started) {}
parentPort.postMessage({ ready: true });
parentPort.on('message', (task) => {
  const name = Buffer.from(task.path).toString();
  if (name.endsWith('crash')) setImmediate(() => { throw new Error('boom'); });
  else if (name.endsWith('oom')) { const keep = []; for (;;) keep.push(new Array(1e5).fill(name)); }
  else if (name.endsWith('hang')) { for (;;) {} }
  else if (name.endsWith('slow')) {
    const until = Date.now() + 700;
    while (Date.now() < until) {}
    parentPort.postMessage({ id: task.id, result: { kind: 'unchanged', sha256: 'cd', size: 2 } });
  }
  else parentPort.postMessage({ id: task.id, result: { kind: 'unchanged', sha256: 'ab', size: 1 } });
});
`;

function job(name: string): ParseJob {
  return {
    path: Buffer.from(name),
    root: Buffer.from('/'),
    knownSha256: null,
    maxFileBytes: 1 << 20,
    maxEvents: DEFAULT_READER_LIMITS.maxEvents,
    splitOutputDir: null,
  };
}

describe('ParsePool', () => {
  let tmp: string;
  let misbehaving: URL;
  let slowStarting: URL;

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'mco-parse-pool-'));
    await writeFile(path.join(tmp, 'worker.mjs'), misbehavingWorker());
    misbehaving = pathToFileURL(path.join(tmp, 'worker.mjs'));
    await writeFile(path.join(tmp, 'slow-start.mjs'), misbehavingWorker(800));
    slowStarting = pathToFileURL(path.join(tmp, 'slow-start.mjs'));
  });
  afterAll(async () => rm(tmp, { recursive: true, force: true }));

  it('analyses a real file with the compiled worker', async () => {
    const file = path.join(tmp, 'song.mid');
    const song = generateCorpus({ files: 1, seed: 2 })[0]!;
    await writeFile(file, song.bytes);
    const pool = new ParsePool({
      workers: 1,
      fileTimeoutMs: 30_000,
      workerUrl: pathToFileURL(path.resolve('dist/job-runner/runner/parse-worker.js')),
    });
    try {
      const result = await pool.parse({ ...job(file), root: Buffer.from(tmp) });
      expect(result).toMatchObject({ kind: 'analysed', size: song.bytes.length, outcome: { ok: true } });
    } finally {
      await pool.close();
    }
  });

  // The time limit is short only where it is the point: filling a 16 MB heap took more than 500 ms on a loaded machine.
  it.each<[string, string, RegExp, number]>([
    ['throws', 'crash', /^analysis crashed its worker: boom$/, 30_000],
    ['runs out of its heap', 'oom', /^analysis crashed its worker: it ran out of memory$/, 30_000],
    ['never answers', 'hang', /^analysis took longer than 500 ms$/, 500],
  ])('fails only the file whose worker %s, and carries on with a new worker', async (_name, file, reason, limitMs) => {
    const pool = new ParsePool({ workers: 1, fileTimeoutMs: limitMs, workerUrl: misbehaving, maxWorkerHeapMb: 16 });
    try {
      const [bad, good] = await Promise.all([pool.parse(job(file)), pool.parse(job('fine'))]);
      expect(bad).toMatchObject({ kind: 'aborted', sha256: null });
      expect((bad as { reason: string }).reason).toMatch(reason);
      expect(good).toEqual({ kind: 'unchanged', sha256: 'ab', size: 1 });
      expect(pool.replaced).toBe(1);
    } finally {
      await pool.close();
    }
  });

  it('sends a worker its next file early, yet gives each file the whole time limit from when the worker starts it', async () => {
    // Both files go to the one worker at once; the second is answered 1.4 s after it was sent, within its 1 s limit
    // only if that limit started when the worker took it up.
    const pool = new ParsePool({ workers: 1, fileTimeoutMs: 1000, workerUrl: misbehaving });
    try {
      const results = await Promise.all([pool.parse(job('a-slow')), pool.parse(job('b-slow'))]);
      expect(results).toEqual([
        { kind: 'unchanged', sha256: 'cd', size: 2 },
        { kind: 'unchanged', sha256: 'cd', size: 2 },
      ]);
      expect(pool.replaced).toBe(0);
    } finally {
      await pool.close();
    }
  });

  it("starts a file's time limit when its worker is ready, not while the worker is still starting", async () => {
    // The worker takes 0.8 s to start, longer than the 0.5 s limit: counting its start-up would fail a good file.
    const pool = new ParsePool({ workers: 1, fileTimeoutMs: 500, workerUrl: slowStarting });
    try {
      expect(await pool.parse(job('fine'))).toEqual({ kind: 'unchanged', sha256: 'ab', size: 1 });
      expect(await pool.parse(job('hang'))).toMatchObject({
        kind: 'aborted',
        reason: 'analysis took longer than 500 ms',
      });
      expect(pool.replaced).toBe(1);
    } finally {
      await pool.close();
    }
  });

  it('on close, files not yet analysed resolve as null: not analysed, not to be recorded', async () => {
    const pool = new ParsePool({ workers: 1, fileTimeoutMs: 60_000, workerUrl: misbehaving });
    const pending = [pool.parse(job('hang')), pool.parse(job('fine'))];
    await pool.close();
    expect(await Promise.all(pending)).toEqual([null, null]);
  });
});
