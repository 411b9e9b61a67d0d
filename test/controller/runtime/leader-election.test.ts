import type { V1Lease } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../common/log.js';
import { LeaderElector } from '../../../controller/runtime/leader-election.js';
import { ManualClock } from '../../support/manual-clock.js';
import { settled } from '../../support/wait.js';

/** The Lease endpoints as the API server answers them: 404 when absent, 409 on a stale resourceVersion or a second create. */
class LeaseStore {
  lease?: V1Lease;
  /** The last body as it goes on the wire (JSON.stringify, as client-node sends it). */
  wire = '';
  private rv = 0;
  down = false;
  private check() {
    if (this.down) throw Object.assign(new Error('connection refused'), { code: 503 });
  }
  readNamespacedLease = async (): Promise<V1Lease> => {
    this.check();
    if (!this.lease) throw Object.assign(new Error('not found'), { code: 404 });
    return structuredClone(this.lease);
  };
  createNamespacedLease = async ({ body }: { namespace: string; body: V1Lease }): Promise<V1Lease> => {
    this.check();
    if (this.lease) throw Object.assign(new Error('exists'), { code: 409 });
    this.wire = JSON.stringify(body);
    this.lease = { ...structuredClone(body), metadata: { ...body.metadata, resourceVersion: String(++this.rv) } };
    return structuredClone(this.lease);
  };
  /** When set, the next replace waits for it before it is applied (a write in flight); later writes queue behind it. */
  holdNextReplace?: Promise<void>;
  private writes = Promise.resolve();
  replaceNamespacedLease = async ({ body }: { name: string; namespace: string; body: V1Lease }): Promise<V1Lease> => {
    const hold = this.holdNextReplace;
    this.holdNextReplace = undefined;
    const turn = this.writes.then(() => hold);
    this.writes = turn;
    await turn;
    this.check();
    if (body.metadata?.resourceVersion !== this.lease?.metadata?.resourceVersion)
      throw Object.assign(new Error('conflict'), { code: 409 });
    this.wire = JSON.stringify(body);
    this.lease = { ...structuredClone(body), metadata: { ...body.metadata, resourceVersion: String(++this.rv) } };
    return structuredClone(this.lease);
  };
}

const log = createLogger({ level: 'silent' });

function candidate(store: LeaseStore, clock: ManualClock, identity: string, events: string[]) {
  return new LeaderElector({
    api: store as never,
    namespace: 'ops',
    name: 'lease',
    identity,
    clock,
    log,
    onStartedLeading: () => events.push(`${identity} leads`),
    onStoppedLeading: () => events.push(`${identity} stops`),
  });
}

/** Lets the elector's awaited API calls settle, then moves the clock, and lets what its timers started settle. */
async function step(clock: ManualClock, ms: number): Promise<void> {
  await settled();
  clock.advance(ms);
  await settled();
}

describe('LeaderElector', () => {
  it('lets exactly one of two candidates lead, and the other take over only after the lease expires', async () => {
    const store = new LeaseStore();
    const clock = new ManualClock();
    const events: string[] = [];
    const a = candidate(store, clock, 'a', events);
    const b = candidate(store, clock, 'b', events);
    await a.tick();
    await b.tick();
    expect(events).toEqual(['a leads']);
    expect(store.lease!.spec!.holderIdentity).toBe('a');
    // The renew time is written with microseconds: the API server refuses a millisecond MicroTime.
    expect(JSON.parse(store.wire).spec.renewTime).toMatch(/\.\d{6}Z$/);

    // a stops renewing (its API calls fail): b waits a full lease duration on its own clock, then takes over.
    store.down = true;
    await step(clock, 11_000); // a's renew deadline (10 s) passes
    expect(events).toEqual(['a leads', 'a stops']);
    store.down = false;
    await b.tick();
    expect(store.lease!.spec!.holderIdentity).toBe('a'); // not yet: b saw the record change 11 s ago at most
    await step(clock, 15_000);
    await b.tick();
    expect(events).toEqual(['a leads', 'a stops', 'b leads']);
    expect(store.lease!.spec!.leaseTransitions).toBe(1);
    await a.stop();
    await b.stop();
  });

  it('releases the lease on shutdown so that the standby takes over at once', async () => {
    const store = new LeaseStore();
    const clock = new ManualClock();
    const events: string[] = [];
    const a = candidate(store, clock, 'a', events);
    const b = candidate(store, clock, 'b', events);
    await a.tick();
    await a.stop();
    expect(store.lease!.spec!.holderIdentity).toBeUndefined();
    await b.tick();
    expect(events).toEqual(['a leads', 'b leads']);
    await b.stop();
  });

  it('releases the lease on shutdown even while a renewal is in flight', async () => {
    const store = new LeaseStore();
    const clock = new ManualClock();
    const events: string[] = [];
    const a = candidate(store, clock, 'a', events);
    await a.tick();
    let land!: () => void;
    store.holdNextReplace = new Promise((resolve) => (land = resolve));
    const renewal = a.tick(); // reads the lease, then its write waits on the wire
    await step(clock, 0);
    const stopping = a.stop(); // SIGTERM now: the release must not lose to the renewal (409) and leave the lease held
    await step(clock, 0);
    land();
    await renewal;
    await stopping;
    expect(store.lease!.spec!.holderIdentity).toBeUndefined();
  });

  it('refuses timings that would let two leaders overlap', () => {
    expect(
      () =>
        new LeaderElector({
          api: new LeaseStore() as never,
          namespace: 'n',
          name: 'l',
          identity: 'x',
          log,
          onStartedLeading: () => {},
          onStoppedLeading: () => {},
          leaseDurationMs: 5000,
          renewDeadlineMs: 10_000,
        }),
    ).toThrow(RangeError);
  });
});
