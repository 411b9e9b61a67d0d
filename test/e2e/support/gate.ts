import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe } from 'vitest';
import { describeWithCluster } from '../../cluster/vitest.js';
import { repoRoot } from './operator.js';

/**
 * The end-to-end suites run the project image on the test cluster's real nodes, so they need the offline image
 * build (image/build.sh, `npm run image`) that exports it as a docker-archive for the nodes' containerd. Where the
 * build is not in the tree yet they are skipped with a banner; under CI=true that is a failure, as for the cluster.
 */
const imageBuild = path.join(repoRoot, 'image', 'build.sh');
const ready = existsSync(imageBuild);
if (!ready) {
  const reason = `the project image build (${path.relative(repoRoot, imageBuild)}) is not in this tree: real nodes cannot run the operator`;
  if (process.env.CI === 'true') throw new Error(`end-to-end tests cannot run: ${reason}. CI must run them, so this is a failure.`);
  console.warn(`\n${'!'.repeat(78)}\n!! SKIPPING end-to-end tests: ${reason}\n${'!'.repeat(78)}\n`);
}

export const describeE2E = ready ? describeWithCluster : describe.skip;
