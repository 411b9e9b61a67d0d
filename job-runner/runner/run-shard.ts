import { createHash } from 'node:crypto';
import { readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { migrate } from '../db/migrations.js';
import { DEFAULT_READER_LIMITS } from '../analysis/smf-reader.js';
import { ANALYSIS_VERSION } from '../analysis/version.js';
import { memoryPlan, type MemoryPlan } from './memory.js';
import { findCorpus, shardFiles, writeBatch, type FileResult, type ShardFile } from '../db/store.js';
import type { Logger } from '../../common/log.js';
import { describeError } from '../../contract/describe-error.js';
import { applicationNameFor, processName } from '../../contract/application-name.js';
import type { CapSettings } from '../../contract/cap-options.js';
import { Admission } from '../pool/admission.js';
import { RunnerPool, type PoolStats } from '../pool/pool.js';
import { poolSizeFor, type PoolSize, type PoolTuning } from '../../contract/pool-sizing.js';
import { BatchWriter } from './batch-writer.js';
import { ShutdownRequestedError, UsageError } from './errors.js';
import { DEFAULT_WORKER_HEAP_MB, ParsePool } from './parse-pool.js';
import type { ParseResult } from './protocol.js';
import { withRetry } from './retry.js';

/**
 * run-shard: analyse one shard of a scanned corpus and record every file, through a pool sized by poolSizeFor.
 *
 * 1. Open the pool (its warm connections before the first file), migrate, load the shard's files.
 * 2. Parse on worker threads, one per CPU of the request; a file whose bytes hash to the recorded sha256 is skipped.
 * 3. Write results in batches, one transaction each, as many at once as the pool has connections (the control queries
 *    all come before the first file and after the last batch, so the pool's extra connection writes too while files
 *    are parsed), retrying through a database outage up to a deadline.
 * 4. On shutdown (the signal aborts): take no new file, drop what is parsed but unsent, let the batches being written
 *    commit or roll back, close the pool, and report ShutdownRequestedError (exit 75).
 */

export interface RunShardConfig {
  corpus: string;
  root: string;
  shard: number;
  /** A secret: never logged. */
  databaseUrl: string;
  /** The CPU request in millicores: parse workers and the pool's size follow from it. */
  cpuMillis: number;
  tuning: PoolTuning;
  /** The cap the server ledger admits this runner against (its pool waits for room before it opens). */
  cap: CapSettings;
  /** Larger files are recorded as failed without being read. */
  maxFileBytes: number;
  /** A file whose analysis runs longer is recorded as failed; its worker is replaced. */
  fileTimeoutMs: number;
  /** Write each track of multi-track files under this directory (recorded with its hash). */
  splitOutput: string | null;
  pod?: string;
  /** A batch is written when it holds this many results... */
  batchFiles: number;
  /** ...or when its oldest result has waited this long. */
  batchDelayMs: number;
  /** How long a batch write keeps retrying through an outage before the runner exits 75. */
  writeDeadlineMs: number;
  /** A progress log line this often. */
  progressIntervalMs: number;
  /**
   * Analyse failed files again even when their bytes are unchanged: after raising --max-file-bytes or
   * --file-timeout-ms, or after a fix in the analysis.
   */
  retryFailed: boolean;
  /** Called once the pool is open, that is once the server ledger admitted this runner (local mode's cue). */
  onAdmitted?: () => void;
  /** The pod's memory limit in bytes (memory.ts podMemoryLimit), from which the per-file bounds derive; null: none. */
  memoryLimitBytes?: number | null;
}

/** Files handed to the parse pool per worker before waiting for one to finish (the benchmark feeds the same way). */
export const FILES_QUEUED_PER_WORKER = 8;

export interface ShardSummary {
  corpus: string;
  shard: number;
  /** Files in the shard. */
  files: number;
  /** Recorded by this run, by status. */
  recorded: { ok: number; failed: number; skipped: number };
  /** Read and found identical (same sha256) to what an earlier run recorded. */
  unchanged: number;
  /** Settled before this run and not touched: skipped by the scan, or failed before their bytes could be hashed. */
  settled: number;
  workers: number;
  workersReplaced: number;
  pool: PoolStats;
  /** Tries of the server ledger that found no room (or the lock taken), and the time spent waiting for room. */
  admission: { waits: number; waitedMs: number };
  durationSeconds: number;
}

export async function runShard(config: RunShardConfig, log: Logger, signal: AbortSignal): Promise<ShardSummary> {
  const started = process.hrtime.bigint();
  const size = poolSizeOrUsageError(config.cpuMillis, config.tuning);
  const root = await realRoot(config.root);
  const applicationName = applicationNameFor({
    role: 'run',
    corpus: config.corpus,
    shard: config.shard,
    pod: config.pod ?? processName(),
    claim: size.max,
  });
  const admission = new Admission({
    connectionString: config.databaseUrl,
    ledgerDatabase: config.cap.ledgerDatabase,
    holder: applicationName,
    claim: size.max,
    cap: config.cap,
    signal,
    log,
  });
  const pool = new RunnerPool({ connectionString: config.databaseUrl, size, applicationName, admission, log });
  const memory = memoryPlan(config.memoryLimitBytes ?? null, size.workers, {
    maxEvents: DEFAULT_READER_LIMITS.maxEvents,
    workerHeapMb: DEFAULT_WORKER_HEAP_MB,
    maxFileBytes: config.maxFileBytes,
  });
  // Started before the pool opens: each worker loads the analysis while the connections are set up, which is mostly
  // waiting on the server, instead of after (bench/startup.ts (h)). Workers are idle threads until the first file.
  const parse = new ParsePool({
    workers: size.workers,
    fileTimeoutMs: config.fileTimeoutMs,
    maxWorkerHeapMb: memory.workerHeapMb,
  });
  log.info({ workers: size.workers, poolMax: size.max, poolWarm: size.warm }, 'opening the pool');
  try {
    await pool.open();
    config.onAdmitted?.();
    await pool.use((c) => migrate(c));
    const corpusId = await pool.use((c) => findCorpus(c, config.corpus));
    if (corpusId === null)
      throw new UsageError(
        `corpus ${JSON.stringify(config.corpus)} has not been scanned: run \`midi-corpus scan\` first`,
      );
    const files = await pool.use((c) => shardFiles(c, corpusId, config.shard));
    const run = new ShardRun(config, size, root, pool, corpusId, log, signal, parse, memory);
    const counts = await run.process(files);
    const summary: ShardSummary = {
      corpus: config.corpus,
      shard: config.shard,
      files: files.length,
      ...counts,
      workers: size.workers,
      pool: pool.stats(),
      admission: { waits: admission.stats.waits, waitedMs: admission.stats.waitedMs },
      durationSeconds: Number(process.hrtime.bigint() - started) / 1e9,
    };
    if (signal.aborted) throw new ShutdownRequestedError(String(signal.reason ?? 'a signal'));
    return summary;
  } finally {
    await parse.close();
    await pool.close();
  }
}

function poolSizeOrUsageError(cpuMillis: number, tuning: PoolTuning): PoolSize {
  try {
    return poolSizeFor(cpuMillis, tuning);
  } catch (e) {
    throw new UsageError(`pool settings: ${describeError(e)}`);
  }
}

async function realRoot(root: string): Promise<Buffer> {
  try {
    return await realpath(path.resolve(root), { encoding: 'buffer' });
  } catch (e) {
    throw new UsageError(`corpus root ${root} cannot be opened: ${describeError(e)}`);
  }
}

/**
 * Does a file need the parse workers? Pending ones do. Recorded ones with a hash are read and hashed again, to spot a
 * change of content (same bytes: skipped). Failed ones without a hash (unreadable, not a regular file, over the size
 * limit) stay as they are until a scan sees them change, or `retryFailed`. Skipped ones (outside the root) never.
 */
export function needsParsing(f: Pick<ShardFile, 'status' | 'sha256'>, retryFailed = false): boolean {
  switch (f.status) {
    case 'pending':
      return true;
    case 'ok':
      return f.sha256 !== null;
    case 'failed':
      return retryFailed || f.sha256 !== null;
    case 'skipped':
    case 'missing':
      return false;
  }
}

/**
 * May a file whose bytes hash as recorded be skipped? Only when its result was made by this analysis version (an older
 * one's is made again) and it is not a failure that `retryFailed` asks to try again.
 */
export function isCurrent(f: Pick<ShardFile, 'status' | 'sha256' | 'analysisVersion'>, retryFailed = false): boolean {
  return f.sha256 !== null && f.analysisVersion === ANALYSIS_VERSION && !(retryFailed && f.status === 'failed');
}

/** The store's record for a parse result; null when there is nothing to write (the file is unchanged). */
export function toRecord(file: ShardFile, shard: number, result: ParseResult): FileResult | null {
  const base = { path: file.path, shard };
  switch (result.kind) {
    case 'unchanged':
      return null;
    case 'analysed': {
      const sha256 = Buffer.from(result.sha256, 'hex');
      const o = result.outcome;
      return {
        ...base,
        size: result.size,
        sha256,
        analysisVersion: ANALYSIS_VERSION,
        outcome: o.ok
          ? {
              status: 'ok',
              analysis: o.analysis,
              warnings: o.warnings,
              splitTracks: result.splitTracks.map((t) => ({ ...t, sha256: Buffer.from(t.sha256, 'hex') })),
            }
          : { status: 'failed', reason: o.reason, warnings: o.warnings },
      };
    }
    case 'refused':
      return {
        ...base,
        size: result.size ?? file.size,
        sha256: null,
        outcome: { status: result.status, reason: result.reason, warnings: [] },
      };
    case 'aborted':
      return {
        ...base,
        size: result.size ?? file.size,
        sha256: result.sha256 ? Buffer.from(result.sha256, 'hex') : null,
        ...(result.sha256 ? { analysisVersion: ANALYSIS_VERSION } : {}),
        outcome: { status: 'failed', reason: result.reason, warnings: [] },
      };
  }
}

/**
 * An analysis cut off before its worker reported the hash gets one from the main thread, so that the failure is tied
 * to these bytes: the next run skips the file unless it changed (or --retry-failed), instead of stalling on it again.
 */
async function withHash(
  result: Extract<ParseResult, { kind: 'aborted' }>,
  path: Buffer,
  maxFileBytes: number,
): Promise<ParseResult> {
  try {
    // The worker may have been stopped before its own size check: never read more than the limit here either.
    if ((await stat(path)).size > maxFileBytes) return result;
    const bytes = await readFile(path);
    if (bytes.length > maxFileBytes) return result;
    return { ...result, size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
  } catch {
    return result;
  }
}

/** One shard's processing: the feed loop, the parse pool and the batch writer, and their counters. */
class ShardRun {
  private readonly counts = {
    recorded: { ok: 0, failed: 0, skipped: 0 },
    unchanged: 0,
    settled: 0,
    workersReplaced: 0,
  };
  private done = 0;

  constructor(
    private readonly config: RunShardConfig,
    private readonly size: PoolSize,
    private readonly root: Buffer,
    private readonly pool: RunnerPool,
    private readonly corpusId: number,
    private readonly log: Logger,
    private readonly signal: AbortSignal,
    private readonly parse: ParsePool,
    private readonly memory: MemoryPlan,
  ) {}

  async process(
    files: ShardFile[],
  ): Promise<Omit<ShardSummary, 'corpus' | 'shard' | 'files' | 'workers' | 'pool' | 'admission' | 'durationSeconds'>> {
    const todo = files.filter((f) => needsParsing(f, this.config.retryFailed));
    this.counts.settled = files.length - todo.length;
    this.log.info({ files: files.length, toRead: todo.length, settled: this.counts.settled }, 'shard loaded');
    if (todo.length === 0) return this.counts;

    const { memory, parse } = this;
    this.log.info(
      {
        memoryLimitMb: memory.limitBytes === null ? null : Math.round(memory.limitBytes / 1048576),
        workerHeapMb: memory.workerHeapMb,
        maxEvents: memory.maxEvents,
        maxFileBytes: memory.maxFileBytes,
      },
      memory.tooSmall
        ? "per-file bounds at their floor: the pod's memory limit is too small for a runner with this many workers"
        : 'per-file bounds from the memory limit',
    );
    const writer = new BatchWriter<FileResult>({
      maxFiles: this.config.batchFiles,
      maxDelayMs: this.config.batchDelayMs,
      maxInFlight: this.size.max,
      write: (batch) => this.write(batch),
      onCommitted: (batch) => {
        for (const r of batch) this.counts.recorded[r.outcome.status]++;
      },
    });
    const progress = setInterval(() => this.logProgress(todo.length, parse, writer), this.config.progressIntervalMs);
    // Stop at once: queued and running analyses are dropped, and a producer waiting for the writer is let go.
    const onAbort = () => {
      void parse.close();
      void writer.abandon();
    };
    this.signal.addEventListener('abort', onAbort, { once: true });
    try {
      await this.feed(todo, parse, writer, memory);
      if (this.signal.aborted) {
        this.log.warn(
          { batchesInFlight: writer.batchesInFlight },
          'shutting down: letting the batches being written finish',
        );
        await writer.abandon();
      } else {
        await writer.drain();
      }
    } finally {
      clearInterval(progress);
      this.signal.removeEventListener('abort', onAbort);
      this.counts.workersReplaced = parse.replaced;
      await parse.close();
    }
    this.logProgress(todo.length, parse, writer);
    return this.counts;
  }

  /** Hands files to the workers, FILES_QUEUED_PER_WORKER each, pausing while the writer is backed up. */
  private async feed(
    todo: ShardFile[],
    parse: ParsePool,
    writer: BatchWriter<FileResult>,
    memory: MemoryPlan,
  ): Promise<void> {
    const inFlight = new Set<Promise<void>>();
    const queueDepth = this.size.workers * FILES_QUEUED_PER_WORKER;
    for (const file of todo) {
      if (this.signal.aborted || writer.failure) break;
      await writer.waitForRoom();
      while (inFlight.size >= queueDepth) await Promise.race(inFlight);
      if (this.signal.aborted || writer.failure) break;
      const path = Buffer.concat([this.root, Buffer.from('/'), file.path]);
      const job = parse
        .parse({
          path,
          root: this.root,
          knownSha256: isCurrent(file, this.config.retryFailed) ? file.sha256!.toString('hex') : null,
          maxFileBytes: memory.maxFileBytes,
          maxEvents: memory.maxEvents,
          splitOutputDir: this.config.splitOutput,
        })
        .then(async (parsed) => {
          if (parsed === null) return; // shutting down: not analysed, not recorded
          const result =
            parsed.kind === 'aborted' && parsed.sha256 === null
              ? await withHash(parsed, path, memory.maxFileBytes)
              : parsed;
          this.done++;
          const record = toRecord(file, this.config.shard, result);
          if (record) writer.add(record);
          else this.counts.unchanged++;
        })
        .finally(() => inFlight.delete(job));
      inFlight.add(job);
    }
    await Promise.all(inFlight);
  }

  private write(batch: FileResult[]): Promise<void> {
    const started = performance.now();
    return withRetry(
      async () => {
        await this.pool.use((c) => writeBatch(c, this.corpusId, batch));
        this.log.debug({ files: batch.length, ms: Math.round(performance.now() - started) }, 'batch committed');
      },
      {
        deadlineMs: this.config.writeDeadlineMs,
        stopped: () => this.signal.aborted,
        onRetry: (attempt, delayMs, err) =>
          this.log.warn(
            { attempt, retryInMs: delayMs, err: describeError(err), files: batch.length },
            'batch write failed; retrying',
          ),
      },
    );
  }

  private logProgress(total: number, parse: ParsePool, writer: BatchWriter<FileResult>): void {
    this.log.info(
      {
        parsed: this.done,
        of: total,
        recorded: this.counts.recorded,
        unchanged: this.counts.unchanged,
        backlog: writer.backlog,
        batchesInFlight: writer.batchesInFlight,
        workersReplaced: parse.replaced,
        pool: this.pool.stats(),
      },
      'progress',
    );
  }
}
