/**
 * How much of a pod's memory one file may take. A runner is its main thread (the CLI's modules, the pg pool, batches
 * in flight) plus one parse worker per CPU; each worker holds one file's bytes and what the analysis builds from
 * them: typed arrays (the note table, the note-off log), which live outside the V8 heap and which no heap limit
 * bounds, and ordinary objects on the heap. So the plan bounds both per worker: the heap by the worker's
 * resourceLimits, the arrays by a number of events per file, and the bytes by the per-file size limit, all derived
 * from the pod's memory limit so that the runner's peak stays within MEMORY_TARGET of it. A file beyond a bound fails
 * alone with its reason, instead of the pod being OOMKilled on every retry.
 *
 * Without a memory limit (local mode, or a pod without limits.memory) the fixed defaults apply.
 */

/** The share of the pod's memory limit a runner plans to use at its peak. */
export const MEMORY_TARGET = 0.75;
/** The main thread, measured: `midi-corpus --version` alone peaks at 136 MB (Node 24), the pool and batches on top. */
export const MAIN_THREAD_MB = 160;
/** A parse worker with its modules loaded and no file, measured at about 12 MB, with room for its young generation. */
export const WORKER_BASE_MB = 24;
/**
 * Typed-array bytes the reader and the analysis hold per event, with room: measured 37-41 (peak RSS over the
 * baseline) on files of 1 and 2.4 million notes, the note table doubling as it grows.
 */
export const BYTES_PER_EVENT = 48;
/** Of a worker's share, what its V8 heap may take; the rest is for the file's bytes and the typed arrays. */
export const HEAP_FRACTION = 0.4;
/** Below these, a pod is too small to analyse real files: the plan keeps them and says so. */
export const MIN_EVENTS = 100_000;
export const MIN_HEAP_MB = 32;
export const MIN_FILE_BYTES = 1024 * 1024;

export interface MemoryDefaults {
  /** The reader's own bound (DEFAULT_READER_LIMITS.maxEvents). */
  maxEvents: number;
  /** The worker heap limit without a memory limit. */
  workerHeapMb: number;
  /** The configured per-file size limit. */
  maxFileBytes: number;
}

export interface MemoryPlan {
  /** The pod's memory limit in bytes, or null when there is none. */
  limitBytes: number | null;
  workerHeapMb: number;
  maxEvents: number;
  maxFileBytes: number;
  /** Set when the limit is too small for the plan's floors: the runner logs it. */
  tooSmall: boolean;
}

export function memoryPlan(limitBytes: number | null, workers: number, defaults: MemoryDefaults): MemoryPlan {
  if (limitBytes === null) {
    return {
      limitBytes,
      workerHeapMb: defaults.workerHeapMb,
      maxEvents: defaults.maxEvents,
      maxFileBytes: defaults.maxFileBytes,
      tooSmall: false,
    };
  }
  const mb = 1024 * 1024;
  const shareMb = (MEMORY_TARGET * (limitBytes / mb) - MAIN_THREAD_MB) / workers - WORKER_BASE_MB;
  const heapMb = Math.floor(shareMb * HEAP_FRACTION);
  const arraysBytes = shareMb * (1 - HEAP_FRACTION) * mb;
  // Half of the arrays' room at most for the file's own bytes, the rest for what is built from them.
  const fileBytes = Math.floor(Math.min(defaults.maxFileBytes, arraysBytes / 2));
  const events = Math.floor((arraysBytes - fileBytes) / BYTES_PER_EVENT);
  return {
    limitBytes,
    workerHeapMb: Math.max(MIN_HEAP_MB, Math.min(defaults.workerHeapMb, heapMb)),
    maxEvents: Math.max(MIN_EVENTS, Math.min(defaults.maxEvents, round(events))),
    maxFileBytes: Math.max(MIN_FILE_BYTES, fileBytes),
    tooSmall: heapMb < MIN_HEAP_MB || events < MIN_EVENTS || fileBytes < MIN_FILE_BYTES,
  };
}

/** Events rounded down to two significant figures, so reasons and logs read "1 100 000", not "1 117 354". */
function round(n: number): number {
  if (n <= 0) return 0;
  const step = 10 ** Math.max(0, Math.floor(Math.log10(n)) - 1);
  return Math.floor(n / step) * step;
}

/**
 * The pod's memory limit: MEMORY_LIMIT_BYTES, which the Job sets from the Downward API (limits.memory; when the
 * container has no limit Kubernetes gives the node's allocatable memory, which is then the bound that matters), else
 * the cgroup limit Node reads (constrainedMemory) when it is below the machine's memory, else none.
 */
export function podMemoryLimit(env: NodeJS.ProcessEnv, constrained: number, totalMemory: number): number | null {
  const fromEnv = Number(env.MEMORY_LIMIT_BYTES);
  if (env.MEMORY_LIMIT_BYTES && Number.isSafeInteger(fromEnv) && fromEnv > 0) return fromEnv;
  return constrained > 0 && constrained < totalMemory ? constrained : null;
}
