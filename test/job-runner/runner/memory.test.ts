import { describe, expect, it } from 'vitest';
import {
  BYTES_PER_EVENT,
  MAIN_THREAD_MB,
  MEMORY_TARGET,
  memoryPlan,
  podMemoryLimit,
  WORKER_BASE_MB,
} from '../../../job-runner/runner/memory.js';

const MiB = 1024 * 1024;
const DEFAULTS = { maxEvents: 5_000_000, workerHeapMb: 1024, maxFileBytes: 64 * MiB };

describe('memoryPlan', () => {
  it('keeps the fixed defaults without a memory limit', () => {
    expect(memoryPlan(null, 4, DEFAULTS)).toEqual({
      limitBytes: null,
      workerHeapMb: 1024,
      maxEvents: 5_000_000,
      maxFileBytes: 64 * MiB,
      tooSmall: false,
    });
  });

  it('gives one worker of the default 1 GiB pod every default bound but a heap below the pod limit', () => {
    const plan = memoryPlan(1024 * MiB, 1, DEFAULTS);
    expect(plan).toMatchObject({ maxEvents: 5_000_000, maxFileBytes: 64 * MiB, tooSmall: false });
    expect(plan.workerHeapMb).toBeLessThan(1024 * MEMORY_TARGET);
  });

  it('shares the memory among workers: four workers of a 1 GiB pod get smaller bounds each', () => {
    const one = memoryPlan(1024 * MiB, 1, DEFAULTS);
    const four = memoryPlan(1024 * MiB, 4, DEFAULTS);
    expect(four.maxEvents).toBeLessThan(one.maxEvents);
    expect(four.workerHeapMb).toBeLessThan(one.workerHeapMb);
    expect(four.maxFileBytes).toBeLessThan(one.maxFileBytes);
  });

  it('plans a peak within the target for every limit from 384 MiB to 16 GiB and 1 to 16 workers', () => {
    for (let limitMb = 384; limitMb <= 16 * 1024; limitMb *= 1.5) {
      for (const workers of [1, 2, 3, 4, 8, 16]) {
        const plan = memoryPlan(Math.round(limitMb * MiB), workers, DEFAULTS);
        if (plan.tooSmall) continue;
        const perWorker =
          WORKER_BASE_MB * MiB + plan.workerHeapMb * MiB + plan.maxFileBytes + plan.maxEvents * BYTES_PER_EVENT;
        const peak = MAIN_THREAD_MB * MiB + workers * perWorker;
        expect(peak, `${Math.round(limitMb)} MiB, ${workers} workers`).toBeLessThanOrEqual(
          MEMORY_TARGET * limitMb * MiB,
        );
      }
    }
  });

  it('says a pod is too small when even one worker cannot get the floors, and keeps the floors', () => {
    const plan = memoryPlan(160 * MiB, 1, DEFAULTS);
    expect(plan.tooSmall).toBe(true);
    expect(plan.maxEvents).toBe(100_000);
    expect(plan.workerHeapMb).toBe(32);
  });

  it('rounds the event bound to two significant figures', () => {
    expect(String(memoryPlan(1024 * MiB, 4, DEFAULTS).maxEvents)).toMatch(/^\d{2}0+$/);
  });
});

describe('podMemoryLimit', () => {
  const total = 8 * 1024 * MiB;
  it('takes the Downward API variable first', () => {
    expect(podMemoryLimit({ MEMORY_LIMIT_BYTES: String(512 * MiB) }, 2 ** 64, total)).toBe(512 * MiB);
  });
  it('takes the cgroup limit Node reads when it is below the machine', () => {
    expect(podMemoryLimit({}, 1024 * MiB, total)).toBe(1024 * MiB);
  });
  it('has none when the cgroup has no limit (Node reports 2^64 or more than the machine) or the variable is junk', () => {
    expect(podMemoryLimit({}, 2 ** 64, total)).toBeNull();
    expect(podMemoryLimit({ MEMORY_LIMIT_BYTES: 'lots' }, 0, total)).toBeNull();
  });
});
