/**
 * Leader election on a coordination.k8s.io/v1 Lease, after client-go's leaderelection (client-node 1.4 has none).
 *
 * - A candidate takes the Lease when it is free, when it is its own, or when the holder has not renewed it for
 *   leaseDuration as measured on the candidate's own clock (from the moment it last saw the record change: clocks of
 *   different nodes are never compared).
 * - Every write carries the resourceVersion it read, so two candidates cannot both win: the loser gets 409.
 * - The leader renews every retryPeriod; if it has not renewed successfully for renewDeadline it stops leading
 *   (onStoppedLeading: the process exits, so no half-leader keeps acting on stale state). renewDeadline < leaseDuration
 *   guarantees it gives up before anyone else may take over.
 * - On graceful shutdown the leader releases the Lease, so the other replica takes over at once.
 */
import { V1MicroTime, type CoordinationV1Api, type V1Lease } from '@kubernetes/client-node';
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
  private readonly clock: Clock;
  private leading = false;
  private stopped = false;
  private timer: unknown;
  /** The last record seen and when (local clock) it last changed. */
  private observed?: { holder: string; renewTime: string; at: number };
  private lastRenewal = 0;
  /** The acquire-or-renew attempt under way, if any: stop() waits for it before releasing. */
  private inflight?: Promise<void>;

  constructor(private readonly o: LeaderElectionOptions) {
    this.leaseDurationMs = o.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = o.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = o.retryPeriodMs ?? 2_000;
    this.clock = o.clock ?? realClock;
    if (!(this.renewDeadlineMs < this.leaseDurationMs && this.retryPeriodMs < this.renewDeadlineMs)) {
      throw new RangeError('leader election needs retryPeriod < renewDeadline < leaseDuration');
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
    await this.inflight;
    if (!this.leading) return;
    this.leading = false;
    for (let attempt = 1; ; attempt++) {
      try {
        const lease = await this.o.api.readNamespacedLease({ name: this.o.name, namespace: this.o.namespace });
        if (lease.spec?.holderIdentity !== this.o.identity) return;
        lease.spec.holderIdentity = undefined;
        lease.spec.leaseDurationSeconds = 1;
        await this.o.api.replaceNamespacedLease({ name: this.o.name, namespace: this.o.namespace, body: lease });
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
    let ok = false;
    try {
      ok = await this.tryAcquireOrRenew();
    } catch (err) {
      this.o.log.debug({ err: String(err) }, 'lease attempt failed');
    }
    if (this.stopped) return;
    const now = this.clock.now();
    if (ok) {
      this.lastRenewal = now;
      if (!this.leading) {
        this.leading = true;
        this.o.log.info({ lease: this.o.name, identity: this.o.identity }, 'became leader');
        this.o.onStartedLeading();
      }
    } else if (this.leading && now - this.lastRenewal >= this.renewDeadlineMs) {
      this.leading = false;
      this.o.log.error({ lease: this.o.name }, 'could not renew the lease in time; stopping');
      this.o.onStoppedLeading();
      return;
    }
    this.timer = this.clock.setTimeout(() => void this.tick(), this.retryPeriodMs);
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
      lease = await this.o.api.readNamespacedLease({ name, namespace });
    } catch (err) {
      if (!isNotFound(err)) throw err;
      try {
        await this.o.api.createNamespacedLease({
          namespace,
          body: {
            apiVersion: 'coordination.k8s.io/v1',
            kind: 'Lease',
            metadata: { name, namespace },
            spec: spec(0, undefined),
          },
        });
        return true;
      } catch (e) {
        if (isConflict(e) || (e as { code?: number }).code === 409) return false;
        throw e;
      }
    }
    const holder = lease.spec?.holderIdentity ?? '';
    const renewTime = String(lease.spec?.renewTime ?? '');
    if (!this.observed || this.observed.holder !== holder || this.observed.renewTime !== renewTime) {
      this.observed = { holder, renewTime, at: now };
    }
    const durationMs = (lease.spec?.leaseDurationSeconds ?? Math.ceil(this.leaseDurationMs / 1000)) * 1000;
    const mine = holder === identity;
    if (!mine && holder !== '' && now < this.observed.at + durationMs) return false;
    const transitions = (lease.spec?.leaseTransitions ?? 0) + (mine ? 0 : 1);
    const acquired = mine && lease.spec?.acquireTime ? new V1MicroTime(lease.spec.acquireTime) : undefined;
    lease.spec = spec(transitions, acquired);
    try {
      await this.o.api.replaceNamespacedLease({ name, namespace, body: lease });
      return true;
    } catch (err) {
      if (isConflict(err)) return false;
      throw err;
    }
  }
}
