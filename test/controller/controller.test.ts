import { describe, expect, it } from 'vitest';
import { createLogger } from '../../common/log.js';
import type { MidiCorpus } from '../../controller/api/v1alpha1/midicorpus.js';
import { Controller, type ControllerOptions } from '../../controller/controller.js';
import type { InformerEvent, Informer } from '../../controller/runtime/informer.js';
import { LeaderElector } from '../../controller/runtime/leader-election.js';
import { makeCorpus } from './fixtures.js';
import { ManualClock } from '../support/manual-clock.js';
import { FakeDatabase } from './reconcile/fake-database.js';
import { World } from './reconcile/world.js';

// The work loop's policy: a conflict (409) means "look again now", up to five in a row; any other error means
// "look again after a backoff" (500 ms, doubling), and a success resets both.

const log = createLogger({ level: 'silent' });

/** An informer over objects the test owns: listed at once; events only when the test sends them. */
class FakeInformer<T extends { metadata?: { name?: string; namespace?: string } }> implements Informer<T> {
  readonly synced = true;
  constructor(private readonly objects: () => readonly T[]) {}
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  list(): readonly T[] {
    return this.objects();
  }
  get(name: string, namespace?: string): T | undefined {
    return this.objects().find((o) => o.metadata?.name === name && o.metadata?.namespace === namespace);
  }
}

/** The World, whose status writes first throw the errors queued in `failures`, one per write. */
class FlakyWorld extends World {
  readonly failures: Error[] = [];
  statusWrites = 0;
  override async replaceStatus(corpus: MidiCorpus): Promise<MidiCorpus> {
    this.statusWrites++;
    const failure = this.failures.shift();
    if (failure) throw failure;
    return super.replaceStatus(corpus);
  }
}

const apiError = (code: number) => Object.assign(new Error(`HTTP ${code}`), { code });
/** Lets the worker run until it waits: for the queue, or for a timer of the ManualClock. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** `leadership`: a campaign and a lost-leadership path on the test's clock; by default the replica leads at once. */
function setup(
  leadership: (clock: ManualClock) => Partial<Pick<ControllerOptions, 'campaign' | 'onLostLeadership'>> = () => ({}),
) {
  const world = new FlakyWorld();
  // Its Secret is missing: each pass writes an Invalid status (once) and asks to be looked at again in 60 s.
  world.addCorpus(makeCorpus({ name: 'a', uid: 'uid-a', spec: { database: { secretRef: { name: 'missing' } } } }));
  const clock = new ManualClock();
  let corpusEvent: (event: InformerEvent, corpus: MidiCorpus) => void = () => {};
  const controller = new Controller({
    informers: {
      corpora: (handlers) => {
        corpusEvent = handlers.onEvent;
        return new FakeInformer(() => world.corpora());
      },
      jobs: () => new FakeInformer(() => world.jobs()),
      pods: () => new FakeInformer(() => world.pods()),
    },
    writer: world,
    reader: world,
    database: new FakeDatabase(world.secrets),
    serve: async () => ({ ports: { health: 0, metrics: 0 }, close: async () => {} }),
    runnerImage: 'example/midi-corpus:test',
    clock,
    log,
    onLostLeadership: () => {},
    ...leadership(clock),
  });
  /** The corpus gets a new generation (so its status must be written again), and its informer says so. */
  const change = () => {
    const c = world.corpus('music', 'a')!;
    const next = { ...c, metadata: { ...c.metadata, generation: (c.metadata.generation ?? 1) + 1 } };
    world.addCorpus(next);
    corpusEvent('update', next);
  };
  const errorsCounted = async () => (await controller.metrics.errors.get()).values[0]?.value ?? 0;
  return { world, clock, controller, change, errorsCounted };
}

describe('Controller work loop', () => {
  it('looks again at once after a conflict, five times in a row; the sixth waits with backoff; a success resets the count', async () => {
    const { world, clock, controller, change, errorsCounted } = setup();
    world.failures.push(...Array.from({ length: 6 }, () => apiError(409)));
    await controller.start();
    await settle();
    expect(world.statusWrites).toBe(6); // the first pass and five at once
    expect(clock.delays).toEqual([500]);

    clock.advance(499);
    await settle();
    expect(world.statusWrites).toBe(6);
    clock.advance(1);
    await settle();
    expect(world.statusWrites).toBe(7);
    expect(world.writes).toEqual(['status music/a Invalid']);
    expect(clock.delays).toEqual([500, 60_000]); // then the Invalid corpus's own requeue

    world.failures.push(...Array.from({ length: 5 }, () => apiError(409)));
    change();
    await settle();
    expect(world.statusWrites).toBe(13); // five conflicts at once again, then the write
    expect(clock.delays).toEqual([500, 60_000]); // no backoff: the success before reset the count
    expect(await errorsCounted()).toBe(0); // a conflict is not an error
    await controller.stop();
  });

  it('looks again after a doubling backoff after any other error; a success resets it', async () => {
    const { world, clock, controller, change, errorsCounted } = setup();
    world.failures.push(apiError(500), apiError(503), new Error('socket hang up'));
    await controller.start();
    await settle();
    expect(world.statusWrites).toBe(1);
    expect(clock.delays).toEqual([500]);

    clock.advance(500);
    await settle();
    expect(world.statusWrites).toBe(2);
    expect(clock.delays).toEqual([500, 1000]);
    clock.advance(1000);
    await settle();
    expect(world.statusWrites).toBe(3);
    expect(clock.delays).toEqual([500, 1000, 2000]);
    clock.advance(1999);
    await settle();
    expect(world.statusWrites).toBe(3);
    clock.advance(1);
    await settle();
    expect(world.statusWrites).toBe(4);
    expect(world.writes).toEqual(['status music/a Invalid']);
    expect(clock.delays).toEqual([500, 1000, 2000, 60_000]);

    world.failures.push(apiError(500));
    change();
    await settle();
    expect(world.statusWrites).toBe(5);
    expect(clock.delays).toEqual([500, 1000, 2000, 60_000, 500]); // from the start again
    expect(await errorsCounted()).toBe(4);
    await controller.stop();
  });

  it('stops working at the renew deadline while its Lease renewal hangs, and runs its lost-leadership path', async () => {
    const notFound = Object.assign(new Error('not found'), { code: 404 });
    let hang = false;
    const never = new Promise<never>(() => {});
    // A Lease API that answers until `hang`, then never again: each attempt reads (absent), then creates the Lease.
    const api = {
      readNamespacedLease: () => (hang ? never : Promise.reject(notFound)),
      createNamespacedLease: async () => ({}),
      replaceNamespacedLease: () => never,
    };
    const lost: number[] = [];
    const { world, clock, controller, change } = setup((clock) => ({
      campaign: (callbacks) =>
        new LeaderElector({
          api: api as never,
          namespace: 'ops',
          name: 'lease',
          identity: 'a',
          clock,
          log,
          ...callbacks,
        }),
      onLostLeadership: () => lost.push(clock.now()),
    }));
    await controller.start();
    await settle();
    expect(world.statusWrites).toBe(1); // leading: the corpus was reconciled
    hang = true;
    for (let t = 0; t < 12_000; t += 100) {
      clock.advance(100);
      await settle();
    }
    // The attempt of 0 s was the last to succeed; its renew deadline, 10 s on, stopped the work though calls hang.
    expect(lost).toEqual([10_000]);
    expect((await controller.metrics.leader.get()).values[0]?.value).toBe(0);
    change();
    await settle();
    expect(world.statusWrites).toBe(1);
    await controller.stop();
  });
});
