/**
 * Pool sizing: the single source of truth for how many Postgres connections one runner process may hold.
 *
 * The runner uses it to size its pool; the controller and local mode use the very same function to compute how many
 * runners fit in a database's connection budget. Pure: no I/O, no clock.
 */

/** Knobs a MidiCorpus (spec.runner.pool) or the CLI may set. Every field is optional; defaults below. */
export interface PoolTuning {
  /** Batch-writer connections per parse worker. Default 1: one batch in flight per worker keeps Postgres busy. */
  connectionsPerWorker?: number;
  /** Connections beyond the writers: the control connection (claims, heartbeats, migrations). Default 1. */
  extraConnections?: number;
  /** Hard cap on one process's pool, whatever its CPU request. Default 16. */
  maxPerPod?: number;
  /** Connections opened before the first file, as a fraction of max (rounded up, at least 1). Default 1: all warm. */
  warmFraction?: number;
}

export const DEFAULT_POOL_TUNING: Required<PoolTuning> = {
  connectionsPerWorker: 1,
  extraConnections: 1,
  maxPerPod: 16,
  warmFraction: 1,
};

export interface PoolSize {
  /** Parse worker threads: one per whole CPU of the request, at least one. */
  workers: number;
  /** The pool's hard maximum: this process never holds more connections than this. */
  max: number;
  /** Connections the pool opens before it takes the first file. */
  warm: number;
}

/** Parse workers for a CPU request: one per whole core requested, never fewer than one (a 500m pod still parses). */
export function workersFor(cpuMillis: number): number {
  if (!Number.isFinite(cpuMillis) || cpuMillis <= 0)
    throw new RangeError(`cpu request must be a positive number of millicores, got ${cpuMillis}`);
  return Math.max(1, Math.floor(cpuMillis / 1000));
}

/** Maps a CPU request in millicores to the runner's pool. The controller's budget is built on `max`. */
export function poolSizeFor(cpuMillis: number, tuning: PoolTuning = {}): PoolSize {
  const t = { ...DEFAULT_POOL_TUNING, ...definedOnly(tuning) };
  if (t.connectionsPerWorker <= 0) throw new RangeError('connectionsPerWorker must be positive');
  if (t.extraConnections < 0 || !Number.isInteger(t.extraConnections))
    throw new RangeError('extraConnections must be a whole number ≥ 0');
  if (t.maxPerPod < 1 || !Number.isInteger(t.maxPerPod)) throw new RangeError('maxPerPod must be a whole number ≥ 1');
  if (!(t.warmFraction > 0 && t.warmFraction <= 1)) throw new RangeError('warmFraction must be in (0, 1]');
  const workers = workersFor(cpuMillis);
  const wanted = Math.ceil(workers * t.connectionsPerWorker) + t.extraConnections;
  const max = Math.max(1, Math.min(t.maxPerPod, wanted));
  const warm = Math.min(max, Math.max(1, Math.ceil(max * t.warmFraction)));
  return { workers, max, warm };
}

/**
 * Connections a scan pod holds, and so the connections the controller budgets for it: the scan (like migrate) runs
 * over a pool of exactly this many (cli/one-connection.ts).
 */
export const SCAN_CONNECTIONS = 1;

/** What a database can give to runners, before it is divided among corpora and pods. */
export interface AllowanceInput {
  /** The server's max_connections. */
  maxConnections: number;
  /** Slots nobody may take: superuser_reserved_connections, reserved_connections, other applications. */
  reservedConnections: number;
  /** A safety margin left free on top of the reserved slots. */
  headroom: number;
  /** Connections the operator itself holds on this database (scan pods, local mode's own control connection). */
  otherConnections?: number;
}

/** limit − reserved − headroom − other, never negative. */
export function connectionAllowance(input: AllowanceInput): number {
  for (const [name, v] of Object.entries(input)) {
    if (v !== undefined && (!Number.isInteger(v) || v < 0))
      throw new RangeError(`${name} must be a whole number ≥ 0, got ${v}`);
  }
  return Math.max(0, input.maxConnections - input.reservedConnections - input.headroom - (input.otherConnections ?? 0));
}

/** How many runner processes fit in `allowance` connections, each holding at most `perRunner`. */
export function runnersThatFit(
  allowance: number,
  perRunner: number,
  maxParallelism = Number.POSITIVE_INFINITY,
): number {
  if (perRunner < 1) throw new RangeError('perRunner must be ≥ 1');
  return Math.max(0, Math.min(maxParallelism, Math.floor(allowance / perRunner)));
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
