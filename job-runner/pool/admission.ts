import pg from 'pg';
import { backoffDelay, equalJitter, type BackoffPolicy } from '../../common/backoff.js';
import { realClock, sleep, type Clock } from '../../common/clock.js';
import type { Logger } from '../../common/log.js';
import { describeError } from '../../contract/describe-error.js';
import { tlsRefusal, type TlsContext } from '../../contract/database-tls.js';
import { databaseConnection } from '../db/connection.js';
import { PermanentError, TransientError } from '../../contract/error-kinds.js';
import {
  connectionCap,
  DEFAULT_LEDGER_DATABASE,
  inUseBeside,
  LEDGER_LOCK,
  ledgerDatabaseUrl,
  readLedger,
  readServerLimits,
  type CapInput,
} from '../../contract/ledger.js';
import { waitingName } from '../../contract/application-name.js';
import { DEFAULT_SERVER_KEEPALIVE, sessionSettings } from './keepalive.js';
import { isConfigurationDatabaseError, isTransientDatabaseError } from './errors.js';

/**
 * Admission to the server's ledger (contract/ledger.ts): before a process opens its first connection, and again
 * whenever it has lost all of them, it waits until its claim fits the server's cap beside everyone else's.
 *
 * The holder connects one probe to the ledger database (`mco wait …`: no claim) and keeps it while it waits. Each try:
 * take the ledger's advisory lock if it is free, read the server's limits and sessions, and if `others + claim` fits
 * the cap, run `publish` (which opens the holder's first connection and so makes the claim visible), then end the
 * probe, which releases the lock. Otherwise unlock and wait, with jittered backoff, as long as it takes: a runner
 * waiting for room costs no retry of its Job. A shutdown signal ends the wait (TransientError: exit 75).
 *
 * A waiting holder's probe is a connection in use like any other, and every reader counts it as one: a probe opened
 * for each try instead would be a slot nobody counts, taken as often and as many at once as holders wait, which
 * measurably passed the cap. What no design can count is a probe's first connect, before it can read anything: a
 * holder that starts while the server is full takes one slot above the cap for an instant, which the headroom is for,
 * and the planners (the controller, local mode) start holders only when they see room. While the probe and the first
 * connection are both open the holder holds two, so a claim of one counts as two for that moment.
 */

export interface AdmissionOptions {
  /** The URL the holder connects to: the probe uses the same server, user and password, in the ledger database. */
  connectionString: string;
  /** Where the ledger's lock lives: the same for every consumer of the server. Default `postgres`. */
  ledgerDatabase?: string;
  /** The holder's application_name, which carries its claim (applicationNameFor with `claim`). */
  holder: string;
  /** Connections the holder may hold: its pool's maximum. */
  claim: number;
  /** What limits the cap beside the server's own figures. */
  cap: Omit<CapInput, 'serverMaxConnections' | 'serverReserved'>;
  /** Ends a wait for room (the runner's shutdown). */
  signal?: AbortSignal;
  /** Connect and statement timeout of one probe. Default 5 s. */
  probeTimeoutMs?: number;
  /**
   * Backoff between tries. Default RETRY (250 ms doubling to 5 s), made for holders that hold for minutes. Tests on a
   * real server set a shorter one: their holders hold for milliseconds, and every wait there is real time.
   */
  retry?: BackoffPolicy;
  log?: Logger;
  clock?: Clock;
  random?: () => number;
}

/** What the last try saw, for logs and summaries. */
export interface AdmissionPicture {
  cap: number;
  claim: number;
  /** Connections held by everyone else: other holders' claims and every client session that claims nothing. */
  others: number;
  /** Of `others`, the client sessions that carry no claim of the operator (other applications). */
  unclaimed: number;
  /** Every session's backend_type was visible (pg_read_all_stats): `unclaimed` is exact, not an upper bound. */
  exact: boolean;
}

export interface AdmissionStats {
  admitted: number;
  /** Tries that found no room, or the lock taken, or the server unreachable. */
  waits: number;
  waitedMs: number;
  last?: AdmissionPicture;
}

interface Probe {
  client: pg.Client;
  connected: boolean;
  /** What a refused handshake is explained with. */
  tls: TlsContext;
}

type Try<T> = { admitted: true; value: T } | { admitted: false; why: 'lock' | 'room' | 'unreachable'; err?: unknown };

/** Backoff between tries: the lock is held for milliseconds; room appears when another holder ends. */
const RETRY: BackoffPolicy = { baseMs: 250, maxMs: 5_000 };
/** A line about a wait at its first try, then at most this often. */
const WAIT_LOG_INTERVAL_MS = 30_000;

export class Admission {
  readonly claim: number;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly probeUrl: string;
  readonly stats: AdmissionStats = { admitted: 0, waits: 0, waitedMs: 0 };

  constructor(private readonly o: AdmissionOptions) {
    if (!Number.isInteger(o.claim) || o.claim < 1)
      throw new RangeError(`claim must be a whole number ≥ 1, got ${o.claim}`);
    this.claim = o.claim;
    this.clock = o.clock ?? realClock;
    this.random = o.random ?? Math.random;
    this.probeUrl = ledgerDatabaseUrl(o.connectionString, o.ledgerDatabase ?? DEFAULT_LEDGER_DATABASE);
  }

  /** Waits for room, then runs `publish` under the ledger's lock. Throws what `publish` throws, unless transient. */
  async admit<T>(publish: () => Promise<T>): Promise<T> {
    const started = this.clock.now();
    let loggedAt = Number.NEGATIVE_INFINITY;
    // One probe for the whole wait: a waiting holder's connection is in use, and everyone counts it as such, where a
    // probe opened for each try would take a slot that nobody counts, once per try, as many at once as holders wait.
    let probe: Probe | undefined;
    try {
      for (let attempt = 0; ; attempt++) {
        if (this.o.signal?.aborted) throw new TransientError('stopped while waiting for room on the database server');
        probe ??= this.newProbe();
        const outcome = await this.tryOnce(probe, publish);
        if (outcome.admitted) {
          this.stats.admitted++;
          this.stats.waitedMs += this.clock.now() - started;
          if (attempt > 0)
            this.o.log?.info(
              { waitedMs: this.clock.now() - started, ...this.stats.last },
              'admitted by the server ledger',
            );
          return outcome.value;
        }
        if (outcome.why === 'unreachable') {
          await probe.client.end().catch(() => {});
          probe = undefined;
        }
        this.stats.waits++;
        if (this.clock.now() - loggedAt >= WAIT_LOG_INTERVAL_MS) {
          loggedAt = this.clock.now();
          this.o.log?.info(
            {
              why: outcome.why,
              ...(outcome.err !== undefined ? { err: describeError(outcome.err) } : {}),
              ...this.stats.last,
              waitedMs: this.clock.now() - started,
            },
            outcome.why === 'room'
              ? 'waiting for room on the database server: its other connections leave too few for this claim'
              : outcome.why === 'lock'
                ? 'waiting for the server ledger: another process is being admitted'
                : 'waiting for the server ledger: the database server is not reachable',
          );
        }
        await sleep(this.clock, backoffDelay(attempt, this.o.retry ?? RETRY, equalJitter(this.random)), this.o.signal);
      }
    } finally {
      // Ending the session releases the lock if it is still held: no unlock statement to forget on an error path.
      await probe?.client.end().catch(() => {});
    }
  }

  /**
   * The probe is named for its holder without the claim (`mco wait run/2 …` carries none): others count it as the
   * one connection it is, not as the holder's whole claim, which it does not hold yet.
   */
  private newProbe(): Probe {
    const timeout = this.o.probeTimeoutMs ?? 5_000;
    // Built for each probe, not once: a rotated Secret's files are read again.
    const connection = databaseConnection(this.probeUrl);
    const probe = new pg.Client({
      connectionString: connection.connectionString,
      ssl: connection.ssl,
      application_name: waitingName(this.o.holder),
      connectionTimeoutMillis: timeout,
      statement_timeout: timeout,
      keepAlive: true,
    });
    probe.on('error', () => {}); // a dying probe fails its next query instead
    return { client: probe, connected: false, tls: connection.tls };
  }

  private async tryOnce<T>(p: Probe, publish: () => Promise<T>): Promise<Try<T>> {
    const probe = p.client;
    let locked = false;
    let publishing = false;
    try {
      if (!p.connected) {
        await probe.connect().catch((err: unknown) => {
          throw tlsRefusal(err, p.tls) ?? err;
        });
        p.connected = true;
        // A waiting holder whose node vanishes must not hold its probe's slot for the OS's two hours either.
        const keepalive = sessionSettings(DEFAULT_SERVER_KEEPALIVE, 0)!;
        await probe.query(keepalive.text, keepalive.values);
      }
      const lock = await probe.query<{ got: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS got', [...LEDGER_LOCK]);
      if (!lock.rows[0]?.got) return { admitted: false, why: 'lock' };
      locked = true;
      const limits = await readServerLimits(probe);
      const picture = await readLedger(probe);
      const cap = connectionCap({
        ...this.o.cap,
        serverMaxConnections: limits.maxConnections,
        serverReserved: limits.reserved,
      });
      // Sessions under the holder's own name are not its own (it holds none while it is admitted; inUseBeside):
      // leaving them out would let an earlier incarnation's backends and the new pool together pass the claim.
      const others = inUseBeside(picture, this.o.holder);
      this.stats.last = { cap, claim: this.claim, others, unclaimed: picture.unclaimed, exact: picture.exact };
      if (Math.max(this.claim, 2) > cap)
        throw new PermanentError(
          `this process needs ${this.claim} connections${this.claim < 2 ? ' (2 while it is admitted)' : ''}, ` +
            `but the server's cap is ${cap} ` +
            `(max_connections ${limits.maxConnections} less reserved and headroom)`,
        );
      // The probe is in `others`' complement: with the first connection it makes the holder's 2 while it publishes.
      if (others + Math.max(this.claim, 2) > cap) return { admitted: false, why: 'room' };
      publishing = true;
      const value = await publish();
      // The claim is on the server now: the probe goes, and the lock with it.
      await probe.end().catch(() => {});
      locked = false;
      return { admitted: true, value };
    } catch (err) {
      if (err instanceof PermanentError) throw err;
      // publish connects to the holder's own database: its configuration errors (that database missing, no CONNECT
      // on it) are about that database, and are passed on as they are, not blamed on the ledger's.
      if (isConfigurationDatabaseError(err) && !publishing)
        throw new PermanentError(
          `the server ledger's database "${this.o.ledgerDatabase ?? DEFAULT_LEDGER_DATABASE}" cannot be used: ` +
            `${describeError(err)}. Every consumer of a server takes its ledger lock in one database that all of ` +
            'them may connect to (ledgerDatabase; "postgres" by default).',
        );
      if (isTransientDatabaseError(err)) return { admitted: false, why: 'unreachable', err };
      throw err;
    } finally {
      // Not admitted: the lock goes back at once, the probe stays for the next try.
      if (locked) await probe.query('SELECT pg_advisory_unlock($1, $2)', [...LEDGER_LOCK]).catch(() => {});
    }
  }
}
