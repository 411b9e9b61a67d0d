import { once } from 'node:events';
import net from 'node:net';
import {
  CoordinationV1Api,
  HttpMethod,
  KubeConfig,
  RequestContext,
  type ConfigurationOptions,
  type V1Lease,
} from '@kubernetes/client-node';
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

/**
 * The store as one candidate reaches it. While `cut`, its calls hang: no answer, no error, and the AbortSignal unheeded
 * (the elector must give up on the call by itself). Each call's signal is read the way client-node's HTTP library gets
 * it: from a RequestContext that the call's middleware has been through.
 */
class Link {
  cut = false;
  readonly signals: AbortSignal[] = [];
  constructor(private readonly store: LeaseStore) {}
  readNamespacedLease = (_: unknown, options?: ConfigurationOptions) =>
    this.send(options, () => this.store.readNamespacedLease());
  createNamespacedLease = (p: { namespace: string; body: V1Lease }, options?: ConfigurationOptions) =>
    this.send(options, () => this.store.createNamespacedLease(p));
  replaceNamespacedLease = (p: { name: string; namespace: string; body: V1Lease }, options?: ConfigurationOptions) =>
    this.send(options, () => this.store.replaceNamespacedLease(p));
  private async send<T>(options: ConfigurationOptions | undefined, call: () => Promise<T>): Promise<T> {
    let request = new RequestContext('https://kubernetes.test/apis/coordination.k8s.io/v1', HttpMethod.GET);
    for (const m of options?.middleware ?? []) request = await m.pre(request).toPromise();
    this.signals.push(request.getSignal()!);
    return this.cut ? new Promise<T>(() => {}) : call();
  }
}

const log = createLogger({ level: 'silent' });

/** A candidate whose callbacks say what happened in `events`, and when (by the clock) in `at`. */
function candidate(
  api: LeaseStore | Link,
  clock: ManualClock,
  identity: string,
  events: string[],
  at = new Map<string, number>(),
) {
  const say = (event: string) => {
    events.push(event);
    at.set(event, clock.now());
  };
  return new LeaderElector({
    api: api as never,
    namespace: 'ops',
    name: 'lease',
    identity,
    clock,
    log,
    onStartedLeading: () => say(`${identity} leads`),
    onStoppedLeading: () => say(`${identity} stops`),
  });
}

/** Lets the elector's awaited API calls settle, then moves the clock, and lets what its timers started settle. */
async function step(clock: ManualClock, ms: number): Promise<void> {
  await settled();
  clock.advance(ms);
  await settled();
}

/** Lets every pending call settle (a turn of the event loop). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Moves the clock to `until` in steps of 100 ms, letting the electors' calls settle at each: their timers run. */
async function runUntil(clock: ManualClock, until: number): Promise<void> {
  while (clock.now() < until) {
    clock.advance(Math.min(100, until - clock.now()));
    await settle();
  }
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

  it('stops leading at its renew deadline while its renewal hangs, strictly before the standby may take over', async () => {
    const store = new LeaseStore();
    const clock = new ManualClock();
    const events: string[] = [];
    const at = new Map<string, number>();
    const linkA = new Link(store);
    const a = candidate(linkA, clock, 'a', events, at);
    const b = candidate(new Link(store), clock, 'b', events, at);
    a.start();
    await settle();
    b.start();
    await settle();
    await runUntil(clock, 5_000); // a renewed at 2 s and 4 s
    expect(events).toEqual(['a leads']);
    const before = linkA.signals.length;
    linkA.cut = true; // from its attempt at 6 s on, every call of a hangs

    await runUntil(clock, 30_000);
    expect(events).toEqual(['a leads', 'a stops', 'b leads']);
    // a's last successful attempt began at 4 s: it gives up at 4 + 10 s, while its read of 12 s still hangs.
    expect(at.get('a stops')).toBe(14_000);
    // No standby can have seen that renewal before 4 s, and it waits 15 s from then: a stopped 5 s before the earliest.
    expect(at.get('b leads')).toBeGreaterThanOrEqual(4_000 + 15_000);
    // The calls that hung (the reads of 6 s and 12 s) were abandoned, their requests aborted.
    expect(linkA.signals.slice(before).map((s) => s.aborted)).toEqual([true, true]);
    await a.stop();
    await b.stop();
  });

  it('abandons a hanging Lease call at its timeout and, renewing within the deadline, leads on', async () => {
    const store = new LeaseStore();
    const clock = new ManualClock();
    const events: string[] = [];
    const link = new Link(store);
    const a = candidate(link, clock, 'a', events);
    a.start();
    await settle();
    await runUntil(clock, 1_000);
    link.cut = true;
    await runUntil(clock, 2_000); // the attempt of 2 s: its read hangs
    const hung = link.signals.at(-1)!;
    await runUntil(clock, 5_900);
    expect(hung.aborted).toBe(false);
    await runUntil(clock, 6_000); // 2 s + the call timeout of 4 s
    expect(hung.aborted).toBe(true);
    expect(String(hung.reason)).toMatch(/timed out after 4000 ms/);

    link.cut = false;
    await runUntil(clock, 30_000); // the attempt of 8 s (6 s + retryPeriod) renews, before the deadline of 10 s
    expect(events).toEqual(['a leads']);
    expect(new Date(store.lease!.spec!.renewTime!).getTime()).toBe(30_000);
    await a.stop();
    expect(store.lease!.spec!.holderIdentity).toBeUndefined();
  });

  it("aborts a timed-out call's HTTP request: an API server that never answers sees the connection closed", async () => {
    const requests: net.Socket[] = [];
    const server = net.createServer((socket) => socket.once('data', () => requests.push(socket)));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromOptions({
      clusters: [
        { name: 'c', server: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`, skipTLSVerify: true },
      ],
      users: [{ name: 'u' }],
      contexts: [{ name: 'c', cluster: 'c', user: 'u' }],
      currentContext: 'c',
    });
    const elector = new LeaderElector({
      api: kubeConfig.makeApiClient(CoordinationV1Api),
      namespace: 'ops',
      name: 'lease',
      identity: 'a',
      log,
      onStartedLeading: () => {},
      onStoppedLeading: () => {},
      callTimeoutMs: 2_000,
      renewDeadlineMs: 5_000,
      leaseDurationMs: 6_000,
      retryPeriodMs: 1_000,
    });
    const started = Date.now();
    await elector.tick(); // its read fails at the call timeout
    expect(Date.now() - started).toBeGreaterThanOrEqual(2_000);
    expect(requests).toHaveLength(1);
    const socket = requests[0]!;
    if (!socket.closed) await once(socket, 'close', { signal: AbortSignal.timeout(5_000) }); // the client's abort
    await elector.stop();
    server.close();
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

  it('refuses a call timeout that leaves an attempt (a read, then a write) no room within the renew deadline', () => {
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
          callTimeoutMs: 5_000,
        }),
    ).toThrow(/2 × callTimeout/);
  });
});
