import { afterAll, beforeAll } from 'vitest';
import type { TestCluster } from '../../cluster/cluster.js';
import { projectImage } from '../../cluster/project-image.js';
import { CLUSTER_START_TIMEOUT_MS, useCluster } from '../../cluster/vitest.js';
import { E2E_CLUSTER } from './operator.js';
import { formatReport, startScenario, type BudgetReport, type Scenario } from './scenario.js';

/**
 * A scenario's whole time. Each of its waits is bounded on its own (eventually's timeout names the step that hung), so
 * this only has to be above the sum of legitimate waits on a loaded two-core machine: the two-corpora scenario took
 * 138 s alone and more than 300 s in CI beside another suite, with no step hung.
 */
export const SCENARIO_TIMEOUT_MS = 600_000;

/**
 * For one describe block: its own cluster of real nodes, with the project image the chart and the manifests name
 * (ghcr.io/…:<version>, imagePullPolicy IfNotPresent), as `npm run image` builds it, imported into every node as if
 * pulled, before anything else of the block runs.
 */
export function useE2ECluster(): () => TestCluster {
  const cluster = useCluster(E2E_CLUSTER);
  beforeAll(async () => {
    await cluster().importImage((await projectImage()).archive);
  }, CLUSTER_START_TIMEOUT_MS);
  return cluster;
}

/**
 * For one describe block: its own cluster (useE2ECluster) with the operator installed by `install` (Helm,
 * kustomize), scenarios (a namespace and a Postgres each) cleaned up afterwards, and each scenario's connection
 * report printed at the end.
 */
export function useOperatorSuite(install: (cluster: TestCluster) => Promise<unknown>) {
  const cluster = useE2ECluster();
  const scenarios: Scenario[] = [];
  const reports: BudgetReport[] = [];

  beforeAll(async () => {
    await install(cluster());
  }, SCENARIO_TIMEOUT_MS);

  afterAll(async () => {
    for (const s of scenarios) await s.cleanup().catch(() => {});
    for (const r of reports) console.log(`[e2e connections] ${formatReport(r)}`);
  });

  return {
    cluster,
    scenario: async (namespace: string, maxConnections: number): Promise<Scenario> => {
      const s = await startScenario(cluster(), namespace, maxConnections);
      scenarios.push(s);
      return s;
    },
    keepReport: (report: BudgetReport) => {
      reports.push(report);
    },
  };
}
