/**
 * Benchmarks (m) and (n) alone, to iterate on the write path: `npm run build && node dist/bench/write-path-main.js
 * [m] [n]` (both by default), each on a corpus like `npm run bench` gives it: (m) BENCH_REAL_WORLD_FILES real-world-like
 * files (default 2000), BENCH_WRITE_ROUNDS (default 5); (n) BENCH_FILES generated files (default 1500), BENCH_ROUNDS
 * (default 5).
 */
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startEmbeddedPostgres } from '../job-runner/db/embedded.js';
import { generateCorpus } from '../job-runner/synth/corpus.js';
import { benchPinned } from './pinned.js';
import { benchWritePath } from './write-path.js';

const which = process.argv.slice(2);
const run = (letter: string) => which.length === 0 || which.includes(letter);
const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const tmp = await mkdtemp(path.join(os.tmpdir(), 'mco-bench-write-'));
await chmod(tmp, 0o711);
try {
  if (run('m')) {
    const db = await startEmbeddedPostgres({ dataDir: path.join(tmp, 'pg') });
    try {
      const files = generateCorpus({ files: env('BENCH_REAL_WORLD_FILES', 2000), seed: 43, profile: 'real-world' });
      const result = await benchWritePath(db.url, { dataDir: db.dataDir, files, rounds: env('BENCH_WRITE_ROUNDS', 5) });
      process.stdout.write(`(m) ${JSON.stringify(result, null, 2)}\n`);
    } finally {
      await db.stop().catch(() => {});
    }
  }
  if (run('n')) {
    const corpus = generateCorpus({ files: env('BENCH_FILES', 1500), seed: 42 });
    const root = path.join(tmp, 'corpus');
    for (const f of corpus) {
      await mkdir(path.dirname(path.join(root, f.path)), { recursive: true });
      await writeFile(path.join(root, f.path), f.bytes);
    }
    const result = await benchPinned({
      root,
      paths: corpus.map((f) => f.path),
      bytes: corpus.reduce((n, f) => n + f.bytes.length, 0),
      rounds: env('BENCH_ROUNDS', 5),
      scratch: tmp,
    });
    process.stdout.write(`(n) ${JSON.stringify(result, null, 2)}\n`);
  }
} finally {
  await rm(tmp, { recursive: true, force: true });
}
