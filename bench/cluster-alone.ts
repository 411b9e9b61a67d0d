/**
 * Bench (p) alone, for iterating on it: `npm run build && node dist/bench/cluster-alone.js` (add BENCH_CLUSTER=1 and
 * the BENCH_CLUSTER_* knobs of bench/cluster.ts for the cluster part). Prints the rows of `npm run bench`'s table and
 * the figures as JSON; writes nothing.
 */
import { benchCluster, benchPlan3M, clusterOptionsFromEnv, clusterRows } from './cluster.js';

const plan = await benchPlan3M();
const options = clusterOptionsFromEnv();
const cluster = options ? await benchCluster(options) : undefined;
process.stdout.write(
  `${clusterRows(plan, cluster)
    .map((row) => row.join('  |  '))
    .join('\n')}\n`,
);
process.stdout.write(`${JSON.stringify({ plan, cluster }, null, 2)}\n`);
