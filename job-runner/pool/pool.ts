import pg from 'pg';
import { realClock, sleep, type Clock } from '../../common/clock.js';
import type { Logger } from '../../common/log.js';
import { describeError } from '../../contract/describe-error.js';
import { tlsRefusal, type TlsContext } from '../../contract/database-tls.js';
import { databaseConnection } from '../db/connection.js';
import type { Admission } from './admission.js';
import { DEFAULT_SERVER_KEEPALIVE, sessionSettings, type ServerKeepalive } from './keepalive.js';
import { DatabaseUnavailableError, isTransientDatabaseError, PoolAcquireTimeoutError } from './errors.js';
import type { PoolSize } from '../../contract/pool-sizing.js';
import { databaseRetryDelay, needsPing, retirementTime, type ValidationMode } from './timing.js';

export type { ValidationMode } from './timing.js';

/**
 * The runner's connection pool: a pg.Pool that never holds more than `size.max` connections, plus what pg-pool does
 * not do by itself (see node_modules/pg-pool/index.js):
 * - warm start: `open()` connects `size.warm` clients before the first file (pg-pool's `min` only stops idle clients
 *   from being closed; it never opens any), retrying with backoff while the database is starting or restarting;
 * - validation on checkout with a bypass window: a client released within the last `bypassWindowMs` is handed out
 *   as is; one idle for longer gets an empty-query ping first, and a broken one is discarded and replaced;
 * - a finite maximum lifetime with jitter, enforced when a client is released or checked out (pg-pool's own
 *   maxLifetimeSeconds retires every client opened together at the same moment);
 * - an acquire timeout with its own error class, retries of connection attempts inside that timeout (a Postgres
 *   restart costs retries, not a failed batch), and statistics in the logs.
 */

export interface RunnerPoolOptions {
  /** A secret: never logged. Its TLS parameters are libpq's (job-runner/db/connection.ts). */
  connectionString: string;
  /** From poolSizeFor(): the hard maximum and how many to open before the first file. */
  size: Pick<PoolSize, 'max' | 'warm'>;
  /** From applicationNameFor(): shown in pg_stat_activity. */
  applicationName: string;
  /** Server-side statement_timeout for every connection, sent at connect time. 0 = none. Default 10 min. */
  statementTimeoutMs?: number;
  /**
   * Server-side idle_in_transaction_session_timeout. A runner that freezes mid-batch (SIGSTOP, a partitioned node)
   * would otherwise hold its rows locked until TCP keepalive gives up, blocking the retry of its shard. A batch never
   * pauses between its statements, so a minute is generous. 0 = none. Default 60 s.
   */
  idleInTransactionTimeoutMs?: number;
  /**
   * Server-side client_connection_check_interval (PostgreSQL 14 and newer; older servers skip it). A runner killed
   * outright (SIGKILL, OOM) in the middle of a statement leaves its backend running until the statement ends, still
   * holding a connection slot, while the budget has stopped counting the dead pod and its replacement connects: the
   * server then notices the vanished client within this interval and ends the backend. 0 = off. Default 1 s.
   */
  connectionCheckIntervalMs?: number;
  /**
   * How soon the server gives up on a runner that vanished without closing its sockets (a lost node, a partition):
   * server-side TCP keepalives (idle, then `count` probes `interval` apart) and tcp_user_timeout for data it sent that
   * was never acknowledged. The OS defaults take two hours, during which the dead runner's backends hold slots that
   * the budget has already handed out again. Default: idle 10 s, 5 s apart, 3 probes, 25 s (all ends within 30 s).
   * On a Unix socket the server ignores them. `false`: the server's settings.
   */
  serverKeepalive?: ServerKeepalive | false;
  /**
   * How long acquire() waits for a free connection, retrying refused connects meanwhile. Also bounds one connection
   * attempt: pg-pool has a single setting for both. Default 30 s.
   */
  acquireTimeoutMs?: number;
  /** How long open() keeps retrying an unreachable database before it gives up. Default 60 s. */
  openTimeoutMs?: number;
  /** Default 'bypass-window'. */
  validation?: ValidationMode;
  /** A client used this recently is not pinged. Default 1000 ms. */
  bypassWindowMs?: number;
  /** A ping that takes longer than this counts as a broken connection. Default 5 s. */
  pingTimeoutMs?: number;
  /** Retire connections after this long (± jitter). 0 = never. Default 30 min. */
  maxLifetimeMs?: number;
  /** Fraction of the lifetime to spread retirements over, each side. Default 0.1 (27–33 min). */
  lifetimeJitter?: number;
  /** Idle connections above `warm` close after this long. Default 60 s. */
  idleTimeoutMs?: number;
  /** A `pool stats` log line this often. 0 = none. Default 30 s. */
  statsIntervalMs?: number;
  /**
   * The server ledger's admission (admission.ts): the pool's first connection, and the first after it has lost all of
   * them, waits for room under the ledger's lock. `applicationName` must carry the admission's claim, and `size.max`
   * must not exceed it.
   */
  admission?: Admission;
  log?: Logger;
  /** Injected for tests: the jitter and backoff source, and the clock (lifetimes, bypass window, retry waits). */
  random?: () => number;
  clock?: Clock;
}

export interface PoolStats {
  /** Connections open or opening: never above `max`. */
  total: number;
  idle: number;
  active: number;
  /** Callers queued for a connection. */
  waiting: number;
  max: number;
  warm: number;
  /** Highest `total` seen. */
  peak: number;
  /** Connections opened, retired at end of lifetime, discarded after a failed ping, lost while idle. */
  opened: number;
  retired: number;
  discarded: number;
  idleErrors: number;
  /** Checkout pings sent, and checkouts that skipped the ping thanks to the bypass window. */
  pings: number;
  bypassed: number;
  acquires: number;
}

interface ClientState {
  retireAt: number;
  /** Released (or connected) at: the start of the bypass window. */
  lastUsedAt: number;
}

/** pg-pool's messages (pg-pool 3.x) for "waited in the queue too long". */
const QUEUE_TIMEOUT_MESSAGE = 'timeout exceeded when trying to connect';

export class RunnerPool {
  readonly max: number;
  readonly warm: number;
  private readonly pool: pg.Pool;
  private readonly state = new WeakMap<pg.ClientBase, ClientState>();
  private readonly opts: Required<
    Omit<
      RunnerPoolOptions,
      'log' | 'connectionString' | 'size' | 'applicationName' | 'clock' | 'admission' | 'serverKeepalive'
    >
  >;
  private readonly log: Logger | undefined;
  private readonly clock: Clock;
  private readonly counters = {
    peak: 0,
    opened: 0,
    retired: 0,
    discarded: 0,
    idleErrors: 0,
    pings: 0,
    bypassed: 0,
    acquires: 0,
  };
  private statsTimer: unknown;
  private closed = false;
  private readonly admission: Admission | undefined;
  private readonly keepalive: ServerKeepalive | false;
  /** What a refused handshake is explained with. */
  private readonly tls: TlsContext;
  /** The admission under way: callers that find the pool empty at once share it. */
  private admitting: Promise<void> | undefined;

  constructor(options: RunnerPoolOptions) {
    const { max, warm } = options.size;
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`pool max must be a whole number ≥ 1, got ${max}`);
    if (!Number.isInteger(warm) || warm < 0 || warm > max)
      throw new RangeError(`pool warm must be in 0..${max}, got ${warm}`);
    this.max = max;
    this.warm = warm;
    this.log = options.log;
    this.clock = options.clock ?? realClock;
    this.admission = options.admission;
    this.keepalive = options.serverKeepalive ?? DEFAULT_SERVER_KEEPALIVE;
    if (this.admission && this.admission.claim < max)
      throw new RangeError(`the pool's max ${max} exceeds its claim in the server ledger (${this.admission.claim})`);
    this.opts = {
      statementTimeoutMs: options.statementTimeoutMs ?? 600_000,
      idleInTransactionTimeoutMs: options.idleInTransactionTimeoutMs ?? 60_000,
      connectionCheckIntervalMs: options.connectionCheckIntervalMs ?? 1_000,
      acquireTimeoutMs: options.acquireTimeoutMs ?? 30_000,
      openTimeoutMs: options.openTimeoutMs ?? 60_000,
      validation: options.validation ?? 'bypass-window',
      bypassWindowMs: options.bypassWindowMs ?? 1_000,
      pingTimeoutMs: options.pingTimeoutMs ?? 5_000,
      maxLifetimeMs: options.maxLifetimeMs ?? 30 * 60_000,
      lifetimeJitter: options.lifetimeJitter ?? 0.1,
      idleTimeoutMs: options.idleTimeoutMs ?? 60_000,
      statsIntervalMs: options.statsIntervalMs ?? 30_000,
      random: options.random ?? Math.random,
    };
    if (!(this.opts.lifetimeJitter >= 0 && this.opts.lifetimeJitter < 1))
      throw new RangeError('lifetimeJitter must be in [0, 1)');
    const connection = databaseConnection(options.connectionString);
    this.tls = connection.tls;
    this.pool = new pg.Pool({
      connectionString: connection.connectionString,
      ssl: connection.ssl,
      max,
      // Keeps the warm clients from being closed when idle; opening them is open()'s job.
      min: warm,
      idleTimeoutMillis: this.opts.idleTimeoutMs,
      // pg-pool applies this both to waiting in its queue and to opening a socket; acquire() tells the two apart.
      connectionTimeoutMillis: this.opts.acquireTimeoutMs,
      application_name: options.applicationName,
      ...(this.opts.statementTimeoutMs > 0 ? { statement_timeout: this.opts.statementTimeoutMs } : {}),
      ...(this.opts.idleInTransactionTimeoutMs > 0
        ? { idle_in_transaction_session_timeout: this.opts.idleInTransactionTimeoutMs }
        : {}),
      // A peer that vanished without a FIN (node failure, network partition) is noticed by the kernel.
      keepAlive: true,
    });
    this.pool.on('connect', (client) => {
      const now = this.clock.now();
      this.state.set(client, {
        retireAt: retirementTime(now, this.opts.maxLifetimeMs, this.opts.lifetimeJitter, this.opts.random),
        lastUsedAt: now,
      });
      this.counters.opened++;
      this.counters.peak = Math.max(this.counters.peak, this.pool.totalCount);
      // A checked-out client has no pg-pool listener; without ours, a socket error while it is busy (server
      // restart mid-query) would be an unhandled 'error' event and kill the process. The query itself fails anyway.
      client.on('error', (err) => this.log?.debug({ err: describeError(err) }, 'database connection error'));
      // Not startup options like the timeouts above: a server older than 14 would refuse the connection for an
      // unknown parameter. One statement, queued before any query of the client's user, so it holds from their first
      // one (and pg does not warn about a second query queued behind the first).
      const settings = sessionSettings(this.keepalive, this.opts.connectionCheckIntervalMs);
      if (settings) {
        client
          .query(settings.text, settings.values)
          .catch((err: unknown) => this.log?.debug({ err: describeError(err) }, 'could not set session settings'));
      }
    });
    // pg-pool already removed the client; this only records it. Without a listener, Node would crash the process.
    this.pool.on('error', (err) => {
      this.counters.idleErrors++;
      this.log?.warn({ err: describeError(err) }, 'idle database connection lost; it will be replaced on demand');
    });
  }

  /**
   * Opens `warm` connections and keeps them idle, retrying with backoff while the database refuses connections
   * (starting, restarting, too many clients) until `openTimeoutMs`. Throws DatabaseUnavailableError after that,
   * or the first error at once when it is not transient (a wrong password will not get better).
   */
  async open(): Promise<void> {
    const started = this.clock.now();
    for (let attempt = 0; ; attempt++) {
      if (this.closed) throw new Error('pool closed while opening');
      await this.admitIfEmpty();
      // Each connection goes back to the pool the moment it is up, so a caller that acquires while open() is still
      // under way (the runner's migration, say) starts on the first one instead of waiting for the slowest.
      const results = await Promise.allSettled(
        Array.from({ length: this.warm }, () => this.connect().then((c) => c.release())),
      );
      const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (!failure) break;
      const waited = this.clock.now() - started;
      if (!isTransientDatabaseError(failure.reason)) throw failure.reason;
      if (waited >= this.opts.openTimeoutMs) throw new DatabaseUnavailableError(attempt + 1, waited, failure.reason);
      const delay = Math.min(databaseRetryDelay(attempt, this.opts.random), this.opts.openTimeoutMs - waited);
      this.log?.warn(
        { err: describeError(failure.reason), attempt: attempt + 1, retryInMs: delay },
        'database not reachable yet; retrying',
      );
      await sleep(this.clock, delay);
    }
    if (this.opts.statsIntervalMs > 0 && this.log && this.statsTimer === undefined) {
      this.statsTimer = this.clock.setInterval(
        () => this.log?.info({ pool: this.stats() }, 'pool stats'),
        this.opts.statsIntervalMs,
        { unref: true },
      );
    }
    this.log?.info({ pool: this.stats() }, 'pool open');
  }

  /**
   * A validated connection. Release it with `client.release()` when done, or `client.release(err)` to discard it
   * (always after an error inside a transaction you did not roll back). Throws PoolAcquireTimeoutError when none
   * becomes free in time, DatabaseUnavailableError when new connections keep failing until then.
   */
  async acquire(): Promise<pg.PoolClient> {
    if (this.closed) throw new Error('pool is closed');
    const started = this.clock.now();
    const deadline = started + this.opts.acquireTimeoutMs;
    let connectFailures = 0;
    for (;;) {
      let client: pg.PoolClient;
      try {
        await this.admitIfEmpty();
        client = await this.connect();
      } catch (err) {
        if (err instanceof Error && err.message === QUEUE_TIMEOUT_MESSAGE) {
          throw new PoolAcquireTimeoutError(this.clock.now() - started, this.picture());
        }
        const now = this.clock.now();
        if (!isTransientDatabaseError(err)) throw err;
        if (now >= deadline) throw new DatabaseUnavailableError(connectFailures + 1, now - started, err);
        await sleep(this.clock, Math.min(databaseRetryDelay(connectFailures++, this.opts.random), deadline - now));
        continue;
      }
      const state = this.stateOf(client);
      const now = this.clock.now();
      if (now >= state.retireAt) {
        this.retire(client);
        continue;
      }
      if (!needsPing(this.opts.validation, state.lastUsedAt, now, this.opts.bypassWindowMs)) {
        this.counters.bypassed++;
        return this.handOut(client);
      }
      this.counters.pings++;
      try {
        // The empty query: one round trip, nothing to parse or plan.
        await client.query({ text: ';', query_timeout: this.opts.pingTimeoutMs } as pg.QueryConfig);
        return this.handOut(client);
      } catch (err) {
        this.counters.discarded++;
        this.log?.info({ err: describeError(err) }, 'discarding a connection that failed its checkout ping');
        client.release(err instanceof Error ? err : true);
        if (this.clock.now() >= deadline)
          throw new DatabaseUnavailableError(connectFailures + 1, this.clock.now() - started, err);
      }
    }
  }

  /** Runs `fn` with a connection; the connection is discarded rather than reused if `fn` throws. */
  async use<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.acquire();
    let result: T;
    try {
      result = await fn(client);
    } catch (err) {
      client.release(err instanceof Error ? err : true);
      throw err;
    }
    client.release();
    return result;
  }

  stats(): PoolStats {
    const total = this.pool.totalCount;
    const idle = this.pool.idleCount;
    return {
      total,
      idle,
      active: total - idle,
      waiting: this.pool.waitingCount,
      max: this.max,
      warm: this.warm,
      ...this.counters,
    };
  }

  /** Closes every connection. Waits for checked-out clients to be released first. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.statsTimer !== undefined) this.clock.clearInterval(this.statsTimer);
    this.log?.info({ pool: this.stats() }, 'pool closing');
    await this.pool.end();
  }

  /**
   * With no connection open, the claim is gone from the server: the next connection is opened through the ledger's
   * admission, so the holder never takes back slots that someone else was given meanwhile.
   */
  private admitIfEmpty(): Promise<void> {
    if (!this.admission || this.pool.totalCount > 0) return Promise.resolve();
    this.admitting ??= this.admission
      .admit(async () => {
        const first = await this.connect();
        first.release();
      })
      .finally(() => {
        this.admitting = undefined;
      });
    return this.admitting;
  }

  /** A pooled client; a refused TLS handshake comes out as the TlsRefusedError that names its cause. */
  private async connect(): Promise<pg.PoolClient> {
    try {
      return await this.pool.connect();
    } catch (err) {
      throw tlsRefusal(err, this.tls) ?? err;
    }
  }

  /** Wraps release so it records the end of use and retires a client past its lifetime. */
  private handOut(client: pg.PoolClient): pg.PoolClient {
    this.counters.acquires++;
    const poolRelease = client.release;
    client.release = (err?: Error | boolean) => {
      client.release = poolRelease;
      const state = this.stateOf(client);
      state.lastUsedAt = this.clock.now();
      if (!err && state.lastUsedAt >= state.retireAt) return this.retire(client);
      poolRelease(err);
    };
    return client;
  }

  private retire(client: pg.PoolClient): void {
    this.counters.retired++;
    this.log?.debug('retiring a connection at the end of its lifetime');
    client.release(true);
  }

  private stateOf(client: pg.ClientBase): ClientState {
    let state = this.state.get(client);
    if (!state) {
      // Every client passes the 'connect' handler first; this only guards against a pg-pool change.
      state = { retireAt: Number.POSITIVE_INFINITY, lastUsedAt: this.clock.now() };
      this.state.set(client, state);
    }
    return state;
  }

  private picture() {
    const s = this.stats();
    return { max: s.max, active: s.active, waiting: s.waiting };
  }
}
