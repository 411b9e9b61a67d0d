/** A Reconciler over a World, with the database access a test file chooses: a fake, or the real one on a test Postgres. */
import { createLogger } from '../../../common/log.js';
import type { MidiCorpus } from '../../../controller/api/v1alpha1/midicorpus.js';
import type { DatabaseAccess } from '../../../controller/reconcile/database.js';
import { Reconciler } from '../../../controller/reconcile/reconciler.js';
import { makeCorpus, type CorpusOptions } from '../fixtures.js';
import { ManualClock } from '../../support/manual-clock.js';
import { World } from './world.js';

const log = createLogger({ level: 'silent' });

export interface ReconcilerSetup<D extends DatabaseAccess> {
  /** The URL in Secret music/db, which every corpus names. */
  url: string;
  database: (world: World) => D;
  /** The vanished pods' grace (the reconciler's default otherwise). */
  vanishedGraceMs?: number;
}

export function setupReconciler<D extends DatabaseAccess>(o: ReconcilerSetup<D>, corpora: readonly CorpusOptions[]) {
  const world = new World();
  world.setSecret('music/db', { url: o.url });
  for (const c of corpora) world.addCorpus(makeCorpus(c));
  const queued: string[] = [];
  const database = o.database(world);
  const clock = new ManualClock(Date.parse('2025-03-01T12:00:00Z'));
  const reconciler = new Reconciler({
    caches: world,
    writer: world,
    reader: world,
    database,
    defaultImage: 'example/midi-corpus:test',
    enqueue: (key) => queued.push(key),
    clock,
    log,
    ...(o.vanishedGraceMs !== undefined ? { vanishedGraceMs: o.vanishedGraceMs } : {}),
  });
  const pass = (name: string) => reconciler.reconcile(`music/${name}`);
  const corpus = (name: string) => world.corpus('music', name)!;
  return { world, reconciler, pass, corpus, queued, database, clock };
}

export const condition = (c: MidiCorpus, type: string) => c.status?.conditions?.find((x) => x.type === type);
export const scanAnswer = (name: string, files: number, shards: number) =>
  JSON.stringify({ corpus: `music/${name}`, files, bytes: files * 1000, shards });
