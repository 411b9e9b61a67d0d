import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

/**
 * Runs the cluster side of bench (p) (cluster.run.ts) and nothing else: bench/cluster.ts spawns vitest with this
 * configuration because the real-node harness is test code, which the build (and so dist/bench) leaves out.
 */
export default defineConfig({
  test: {
    root: fileURLToPath(new URL('../..', import.meta.url)),
    include: ['test/bench/*.run.ts'],
    // Each wait of the run is bounded on its own (the harness' eventually); the run itself may take an hour.
    testTimeout: 0,
    hookTimeout: 0,
    pool: 'forks',
    fileParallelism: false,
  },
});
