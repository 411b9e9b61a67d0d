/**
 * The database Secret of an e2e corpus, as a user would create it: labelled for MidiCorpora, or the operator refuses
 * it (SecretNotLabelled). Apart from operator.ts so that a test that starts no cluster can check it is accepted.
 */
import type { V1Secret } from '@kubernetes/client-node';
import { DATABASE_SECRET_LABEL, DATABASE_SECRET_LABEL_VALUE } from '../../../controller/api/v1alpha1/midicorpus.js';

export function databaseSecret(name: string, url: string, o: { labelled?: boolean } = {}): V1Secret {
  return {
    metadata: {
      name,
      ...(o.labelled === false ? {} : { labels: { [DATABASE_SECRET_LABEL]: DATABASE_SECRET_LABEL_VALUE } }),
    },
    stringData: { url },
  };
}
