/**
 * Leader election on a coordination.k8s.io/v1 Lease, after client-go's leaderelection (client-node has none).
 *
 * - A candidate takes the Lease when it is free, when it is its own, or when the holder has not renewed it for
 *   leaseDuration as measured on the candidate's own clock (from the moment its read showed the record changed: clocks
 *   of different nodes are never compared).
 * - Every write carries the resourceVersion it read, so two candidates cannot both win: the loser gets 409.
 * - Every Lease call is abandoned after callTimeout: a call that hangs (an API server that accepts the connection and
 *   never answers) fails its attempt instead of holding up the campaign.
 * - The leader renews every retryPeriod. If renewDeadline passes after the start of its last successful attempt
 *   without another success, it stops leading (onStoppedLeading: the process exits, so no half-leader keeps acting on
 *   stale state) — on a timer of its own, so a renewal still hanging then does not delay it. A standby saw that
 *   renewal no earlier than the attempt's start, so it waits until at least that start + leaseDuration;
 *   renewDeadline < leaseDuration guarantees the leader gave up before anyone else may take over, with
 *   leaseDuration − renewDeadline to spare for clocks that run at different rates.
 * - On graceful shutdown the leader releases the Lease, so the other replica takes over at once.
 */
import {
  Observable,
  V1MicroTime,
  type ConfigurationOptions,
  type CoordinationV1Api,
  type V1Lease,
} from '@kubernetes/client-node';
import type { Logger } from '../../common/log.js';
import { realClock, type Clock } from '../../common/clock.js';
import { describeApiError, isConflict, isNotFound } from './errors.js';

/** Reads and writes of the release, should the Lease keep changing under it (it should not: nobody else writes a held Lease). */
const RELEASE_ATTEMPTS = 3;

export interface LeaderElectionOptions {
  api: Pick<CoordinationV1Api, 'readNamespacedLease' | 'createNamespacedLease' | 'replaceNamespacedLease'>;
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  /** Each Lease call is abandoned after this long; an attempt (a read, then a write) must fit in renewDeadline. */
  callTimeoutMs?: number;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
  log: Logger;
  clock?: Clock;
}

/** A campaign for leadership, as the controller drives it. */
export interface Leadership {
  start(): void;
  /** Stops campaigning; a leader gives the leadership up. */
  stop(): Promise<void>;
}

/** What a campaign reports: the controller's two reactions. */
export type LeadershipCallbacks = Pick<LeaderElectionOptions, 'onStartedLeading' | 'onStoppedLeading'>;

export class LeaderElector implements Leadership {
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly callTimeoutMs: number;
  private readonly clock: Clock;
  private leading = false;
  private stopped = false;
  private timer: unknown;
  /** While leading: fires at the renew deadline, unless a renewal succeeds first and moves it. */
  private deadline: unknown;
  /** The last record seen and when (local clock) it last changed. */
  private observed?: { holder: string; renewTime: string; at: number };
  /** The acquire-or-renew attempt under way, if any: stop() waits for it before releasing. */
  private inflight?: Promise<void>;

  constructor(private readonly o: LeaderElectionOptions) {
    this.leaseDurationMs = o.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = o.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = o.retryPeriodMs ?? 2_000;
    this.callTimeoutMs = o.callTimeoutMs ?? 4_000;
    this.clock = o.clock ?? realClock;
    if (!(this.renewDeadlineMs < this.leaseDurationMs && this.retryPeriodMs < this.renewDeadlineMs)) {
      throw new RangeError('leader election needs retryPeriod < renewDeadline < leaseDuration');
    }
    if (!(2 * this.callTimeoutMs < this.renewDeadlineMs)) {
      throw new RangeError('leader election needs two Lease calls (2 × callTimeout) to fit in renewDeadline');
    }
  }

  start(): void {
    this.stopped = false;
    void this.tick();
  }

  /**
   * Stops campaigning; a leader releases the Lease. A renewal may be in flight when the stop comes (on the real API
   * server it often was: the release then lost to it with a 409, and the standby had to wait for the lease to
   * expire): the release waits for it, and reads the Lease afresh on a conflict.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    // The caller has stopped acting: the deadline has nothing left to stop, and a slow release must not exit 1.
    if (this.deadline !== undefined) this.clock.clearTimeout(this.deadline);
    await this.inflight;
    if (!this.leading) return;
    this.leading = false;
    for (let attempt = 1; ; attempt++) {
      try {
        const lease = await this.call((o) =>
          this.o.api.readNamespacedLease({ name: this.o.name, namespace: this.o.namespace }, o),
        );
        if (lease.spec?.holderIdentity !== this.o.identity) return;
        lease.spec.holderIdentity = undefined;
        lease.spec.leaseDurationSeconds = 1;
        await this.call((o) =>
          this.o.api.replaceNamespacedLease({ name: this.o.name, namespace: this.o.namespace, body: lease }, o),
        );
        this.o.log.info({ lease: this.o.name }, 'released leadership');
        return;
      } catch (err) {
        if (isConflict(err) && attempt < RELEASE_ATTEMPTS) continue;
        this.o.log.warn(
          { err: describeApiError(err) },
          'could not release the lease; the other replica takes over once it expires',
        );
        return;
      }
    }
  }

  /** One attempt to acquire or renew, then the next one scheduled. Exposed for tests. */
  tick(): Promise<void> {
    const run = this.runTick();
    this.inflight = run;
    return run;
  }

  private async runTick(): Promise<void> {
    if (this.stopped) return;
    const started = this.clock.now();
    let ok = false;
    try {
      ok = await this.tryAcquireOrRenew();
    } catch (err) {
      this.o.log.debug({ err: String(err) }, 'lease attempt failed');
    }
    if (this.stopped) return;
    if (ok) {
      // From the attempt's start, not its end: the write reached the API server after it, so no standby saw this
      // renewal earlier, and a slow answer cannot stretch the deadline past the standby's wait.
      this.armDeadline(started + this.renewDeadlineMs);
      if (!this.leading) {
        this.leading = true;
        this.o.log.info({ lease: this.o.name, identity: this.o.identity }, 'became leader');
        this.o.onStartedLeading();
      }
    }
    this.timer = this.clock.setTimeout(() => void this.tick(), this.retryPeriodMs);
  }

  private armDeadline(at: number): void {
    if (this.deadline !== undefined) this.clock.clearTimeout(this.deadline);
    this.deadline = this.clock.setTimeout(() => this.renewDeadlinePassed(), at - this.clock.now());
  }

  /** No renewal succeeded in time: stop leading now, whatever the attempt in flight is doing, and campaign no more. */
  private renewDeadlinePassed(): void {
    this.deadline = undefined;
    this.leading = false;
    this.stopped = true;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.o.log.error(
      { lease: this.o.name, renewDeadlineMs: this.renewDeadlineMs },
      'could not renew the lease in time; stopping',
    );
    this.o.onStoppedLeading();
  }

  /**
   * One Lease call, abandoned after callTimeout. The AbortSignal reaches the HTTP request itself: client-node 2.x's
   * generated APIs take per-call ConfigurationOptions as their second argument, whose middleware sets the signal on
   * the RequestContext, and its fetch aborts on it (the socket is freed). The race makes the call fail at its timeout
   * even where nothing heeds the signal (a credential plugin that hangs before the request is sent).
   */
  private async call<T>(request: (options: ConfigurationOptions) => Promise<T>): Promise<T> {
    const abort = new AbortController();
    const timer = this.clock.setTimeout(
      () => abort.abort(new Error(`Lease call timed out after ${this.callTimeoutMs} ms`)),
      this.callTimeoutMs,
    );
    const abandoned = new Promise<never>((_, reject) =>
      abort.signal.addEventListener('abort', () => reject(abort.signal.reason as Error), { once: true }),
    );
    try {
      return await Promise.race([request(abortOn(abort.signal)), abandoned]);
    } finally {
      this.clock.clearTimeout(timer);
    }
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { namespace, name, identity } = this.o;
    const now = this.clock.now();
    const spec = (transitions: number, acquired: V1MicroTime | undefined): V1Lease['spec'] => ({
      holderIdentity: identity,
      leaseDurationSeconds: Math.ceil(this.leaseDurationMs / 1000),
      // V1MicroTime, not Date: the API server wants microsecond precision, and a plain Date serialises to milliseconds.
      acquireTime: acquired ?? new V1MicroTime(now),
      renewTime: new V1MicroTime(now),
      leaseTransitions: transitions,
    });
    let lease: V1Lease;
    try {
      lease = await this.call((o) => this.o.api.readNamespacedLease({ name, namespace }, o));
    } catch (err) {
      if (!isNotFound(err)) throw err;
      try {
        await this.call((o) =>
          this.o.api.createNamespacedLease(
            {
              namespace,
              body: {
                apiVersion: 'coordination.k8s.io/v1',
                kind: 'Lease',
                metadata: { name, namespace },
                spec: spec(0, undefined),
              },
            },
            o,
          ),
        );
        return true;
      } catch (e) {
        if (isConflict(e) || (e as { code?: number }).code === 409) return false;
        throw e;
      }
    }
    // When the read answered, not when it was sent: the record it shows may have been written in between.
    const seen = this.clock.now();
    const holder = lease.spec?.holderIdentity ?? '';
    const renewTime = String(lease.spec?.renewTime ?? '');
    if (!this.observed || this.observed.holder !== holder || this.observed.renewTime !== renewTime) {
      this.observed = { holder, renewTime, at: seen };
    }
    const durationMs = (lease.spec?.leaseDurationSeconds ?? Math.ceil(this.leaseDurationMs / 1000)) * 1000;
    const mine = holder === identity;
    if (!mine && holder !== '' && seen < this.observed.at + durationMs) return false;
    const transitions = (lease.spec?.leaseTransitions ?? 0) + (mine ? 0 : 1);
    const acquired = mine && lease.spec?.acquireTime ? new V1MicroTime(lease.spec.acquireTime) : undefined;
    lease.spec = spec(transitions, acquired);
    try {
      await this.call((o) => this.o.api.replaceNamespacedLease({ name, namespace, body: lease }, o));
      return true;
    } catch (err) {
      if (isConflict(err)) return false;
      throw err;
    }
  }
}

/** Per-call client-node options that hand `signal` to the request (appended to the API's own middleware). */
function abortOn(signal: AbortSignal): ConfigurationOptions {
  return {
    middleware: [
      {
        pre: (request) => {
          request.setSignal(signal);
          return new Observable(Promise.resolve(request));
        },
        post: (response) => new Observable(Promise.resolve(response)),
      },
    ],
    middlewareMergeStrategy: 'append',
  };
}
