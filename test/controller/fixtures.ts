/** Builders for MidiCorpus objects as the API server returns them (defaults applied), for the controller's tests. */
import type { V1Job, V1Pod } from '@kubernetes/client-node';
import { applyDefaults } from '../../controller/api/openapi.js';
import {
  API_VERSION,
  KIND,
  midiCorpusSpecSchema,
  type MidiCorpus,
  type MidiCorpusSpec,
  type MidiCorpusStatus,
} from '../../controller/api/v1alpha1/midicorpus.js';

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

export interface CorpusOptions {
  name?: string;
  namespace?: string;
  uid?: string;
  generation?: number;
  createdAt?: string;
  spec?: DeepPartial<MidiCorpusSpec>;
  status?: MidiCorpusStatus;
}

export function makeCorpus(o: CorpusOptions = {}): MidiCorpus {
  const base = {
    source: { volume: { persistentVolumeClaim: { claimName: 'midi' } } },
    database: { secretRef: { name: 'db' } },
  };
  const spec = applyDefaults(midiCorpusSpecSchema.openapi, merge(base, o.spec ?? {})) as MidiCorpusSpec;
  const corpus: MidiCorpus = {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: {
      name: o.name ?? 'bach',
      namespace: o.namespace ?? 'music',
      uid: o.uid ?? '1b4e28ba-2fa1-11d2-883f-0016d3cca427',
      generation: o.generation ?? 1,
      creationTimestamp: new Date(o.createdAt ?? '2025-01-01T00:00:00Z'),
    },
    spec,
  };
  if (o.status) corpus.status = o.status;
  return corpus;
}

/** Deep merge of plain objects; `over` wins; arrays and volume sources are replaced whole. */
function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    const plain = (x: unknown): x is Record<string, unknown> =>
      typeof x === 'object' && x !== null && !Array.isArray(x);
    out[k] = plain(v) && plain(b) && k !== 'volume' ? merge(b, v) : v;
  }
  return out;
}

export function jobWith(name: string, status: V1Job['status'], spec: Partial<NonNullable<V1Job['spec']>> = {}): V1Job {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, namespace: 'music', generation: 1 },
    spec: { template: {}, ...spec },
    status,
  };
}

export function podWith(name: string, phase: string, extra: Partial<V1Pod> = {}): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'music', ...extra.metadata },
    status: { phase, ...extra.status },
  };
}
