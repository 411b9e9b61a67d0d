/**
 * A DatabaseAccess with no database behind it, for tests of the reconcile's decisions: Secrets resolve exactly as in
 * production (resolveFromSecret); there is no server to ask for max_connections, so a test gives
 * spec.database.maxConnections (or sees the corpus's budget unknown); there are no progress counts, so the stored
 * ones carry forward, as before the runners have created their schema.
 */
import type { MidiCorpus } from '../../../controller/api/v1alpha1/midicorpus.js';
import {
  resolveFromSecret,
  type DatabaseAccess,
  type Progress,
  type Resolution,
} from '../../../controller/reconcile/database.js';

export class FakeDatabase implements DatabaseAccess {
  /** `secrets`: Secret data by `namespace/name`, read at each resolve (a test may change it between passes). */
  constructor(private readonly secrets: ReadonlyMap<string, Record<string, string>>) {}

  async resolve(corpus: MidiCorpus): Promise<Resolution> {
    const data = this.secrets.get(`${corpus.metadata.namespace}/${corpus.spec.database.secretRef.name}`);
    return resolveFromSecret(corpus, data);
  }

  async maxConnections(): Promise<number> {
    throw new Error('a FakeDatabase has no server to read max_connections from');
  }

  async progress(): Promise<Progress | undefined> {
    return undefined;
  }
}
