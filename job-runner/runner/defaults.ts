/**
 * The runner's defaults, apart from the runner itself: run-shard's and local's flags show them in their help, and
 * reading them must not load the pool, pg and the analysis for a command that only parses its flags.
 */
export const RUN_SHARD_DEFAULTS = {
  cpuMillis: 1000,
  maxFileBytes: 64 * 1024 * 1024,
  fileTimeoutMs: 30_000,
  batchFiles: 50,
  batchDelayMs: 200,
  writeDeadlineMs: 120_000,
  progressIntervalMs: 5_000,
} as const;
