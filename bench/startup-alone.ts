/**
 * (h) alone, to iterate on a shard's fixed cost without the whole of `npm run bench`:
 * `npm run build && node dist/bench/startup-alone.js`. BENCH_STARTUP_ROUNDS as in bench/run.ts (default 7); prints the
 * raw figures as JSON on stdout. Nothing is saved.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startEmbeddedPostgres } from '../job-runner/db/embedded.js';
import { benchShardStart } from './startup.js';

const tmp = await mkdtemp(path.join(os.tmpdir(), 'mco-bench-startup-'));
// As root, the embedded server runs as user postgres, which must be able to enter the temporary directory.
await chmod(tmp, 0o711);
const db = await startEmbeddedPostgres({ dataDir: path.join(tmp, 'pg') });
try {
  const rounds = Number(process.env.BENCH_STARTUP_ROUNDS ?? 7);
  process.stdout.write(`${JSON.stringify(await benchShardStart(db.url, rounds), null, 2)}\n`);
} finally {
  await db.stop().catch(() => {});
  await rm(tmp, { recursive: true, force: true });
}
