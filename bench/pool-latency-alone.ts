/**
 * (o) alone, to iterate on it without the whole of `npm run bench`: `npm run build && node dist/bench/pool-latency-alone.js`.
 * The same knobs as in bench/run.ts (BENCH_LATENCIES, BENCH_LATENCY_FILES, BENCH_LATENCY_WORKERS,
 * BENCH_LATENCY_ROUNDS); prints the table's lines of (o) on stderr and the raw figures as JSON on stdout. Nothing is saved.
 */
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startEmbeddedPostgres } from '../job-runner/db/embedded.js';
import { generateCorpus } from '../job-runner/synth/corpus.js';
import { benchPoolLatency, poolLatencyOptionsFromEnv, poolLatencyRatios, poolLatencyRows } from './pool-latency.js';

const tmp = await mkdtemp(path.join(os.tmpdir(), 'mco-bench-latency-'));
// As root, the embedded server runs as user postgres, which must be able to enter the temporary directory.
await chmod(tmp, 0o711);
const db = await startEmbeddedPostgres({ dataDir: path.join(tmp, 'pg') });
try {
  const env = poolLatencyOptionsFromEnv();
  const root = path.join(tmp, 'corpus');
  for (const f of generateCorpus({ files: env.files, seed: 42 })) {
    await mkdir(path.dirname(path.join(root, f.path)), { recursive: true });
    await writeFile(path.join(root, f.path), f.bytes);
  }
  const result = await benchPoolLatency({
    ...env,
    databaseUrl: db.url,
    root,
    step: (line) => process.stderr.write(`bench:   ${line}\n`),
  });
  for (const row of poolLatencyRows(result)) process.stderr.write(`${row.join('  ')}\n`);
  process.stdout.write(`${JSON.stringify({ ratios: poolLatencyRatios(result), raw: result }, null, 2)}\n`);
} finally {
  await db.stop().catch(() => {});
  await rm(tmp, { recursive: true, force: true });
}
