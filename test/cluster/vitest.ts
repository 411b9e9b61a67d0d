import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { clusterSupport } from './binaries.js';
import { startCluster, type ClusterOptions, type TestCluster } from './cluster.js';

/**
 * A cold build of the control plane takes many minutes on two cores; the first test file that needs a cluster
 * builds it (others wait on the build lock), so its beforeAll gets a budget far above vitest's hook timeout.
 */
export const CLUSTER_START_TIMEOUT_MS = 80 * 60_000;

const support = clusterSupport();
if (!support.ok) {
  if (process.env.CI === 'true') {
    throw new Error(`Kubernetes tests cannot run: ${support.reason}. CI must run them, so this is a failure.`);
  }
  console.warn(`\n${'!'.repeat(78)}\n!! SKIPPING Kubernetes tests: ${support.reason}\n${'!'.repeat(78)}\n`);
}

/** `describe` where the test control plane can run, `describe.skip` (with a loud warning above) where it cannot. */
export const describeWithCluster = support.ok ? describe : describe.skip;

/**
 * Starts one cluster for the enclosing describe block (beforeAll) and stops it afterwards; returns its getter.
 * One cluster per test file: isolation between files, at 16–27 s of start-up each (control plane, two real nodes).
 */
export function useCluster(options?: ClusterOptions): () => TestCluster {
  let cluster: TestCluster | undefined;
  beforeAll(async () => {
    cluster = await startCluster(options);
  }, CLUSTER_START_TIMEOUT_MS);
  afterAll(async () => {
    await cluster?.stop();
  }, 60_000);
  return () => {
    if (!cluster) throw new Error('the test cluster did not start');
    return cluster;
  };
}

/** A wait longer than this is printed with its length, so a slow or timed-out test's output says where its time went. */
const SLOW_WAIT_MS = 10_000;

/**
 * Polls until `probe` returns a value other than undefined/false, or fails with `what` after the timeout. Waits that
 * take longer than SLOW_WAIT_MS print `[slow wait] <test> › <what>: <seconds>` when they end, either way.
 */
export async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 60_000,
): Promise<T> {
  const started = Date.now();
  const deadline = started + timeoutMs;
  let lastError: unknown;
  const slow = (outcome: string) => {
    const ms = Date.now() - started;
    if (ms < SLOW_WAIT_MS) return;
    console.log(
      `[slow wait] ${expect.getState().currentTestName ?? '(no test)'} › ${what}: ${outcome} after ${(ms / 1000).toFixed(1)} s`,
    );
  };
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) {
        slow('done');
        return value;
      }
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      slow('timed out');
      throw new Error(`timed out waiting for ${what}${lastError ? ` (last error: ${String(lastError)})` : ''}`);
    }
    await sleep(250);
  }
}
