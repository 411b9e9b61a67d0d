import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { midiCorpusCRD, midiCorpusCRDYaml } from '../../../controller/api/crd.js';
import { applyDefaults, type OpenAPISchema } from '../../../controller/api/openapi.js';
import { midiCorpusSpecSchema, type MidiCorpusSpec } from '../../../controller/api/v1alpha1/midicorpus.js';
import { DEFAULT_POOL_TUNING } from '../../../contract/pool-sizing.js';

const root = midiCorpusCRD().spec.versions[0]!.schema.openAPIV3Schema;

/** Every schema node with its JSON path, and whether it sits under x-kubernetes-preserve-unknown-fields or anyOf. */
function* walk(
  s: OpenAPISchema,
  path = '',
  inJunctor = false,
): Generator<{ s: OpenAPISchema; path: string; inJunctor: boolean }> {
  yield { s, path, inJunctor };
  for (const [k, p] of Object.entries(s.properties ?? {})) yield* walk(p, `${path}.${k}`, inJunctor);
  if (s.items) yield* walk(s.items, `${path}[]`, inJunctor);
  if (s.additionalProperties) yield* walk(s.additionalProperties, `${path}{}`, inJunctor);
  for (const [i, a] of (s.anyOf ?? []).entries()) yield* walk(a, `${path}|anyOf${i}`, true);
}

/** A small validator for the keywords this schema uses, to check that every default is itself valid (the API server refuses the CRD otherwise). */
function violations(s: OpenAPISchema, v: unknown, path = ''): string[] {
  if (s['x-kubernetes-int-or-string']) {
    const ok =
      (typeof v === 'number' && Number.isInteger(v) && (s.minimum === undefined || v >= s.minimum)) ||
      (typeof v === 'string' && (s.pattern === undefined || new RegExp(s.pattern).test(v)));
    return ok ? [] : [`${path}: not a valid int-or-string`];
  }
  const out: string[] = [];
  switch (s.type) {
    case 'object': {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return [`${path}: not an object`];
      const o = v as Record<string, unknown>;
      for (const r of s.required ?? []) if (!(r in o)) out.push(`${path}.${r}: required`);
      for (const [k, val] of Object.entries(o)) {
        const p = s.properties?.[k] ?? s.additionalProperties;
        if (p) out.push(...violations(p, val, `${path}.${k}`));
        else if (!s['x-kubernetes-preserve-unknown-fields']) out.push(`${path}.${k}: unknown field (would be pruned)`);
      }
      return out;
    }
    case 'array':
      if (!Array.isArray(v)) return [`${path}: not an array`];
      return v.flatMap((x, i) => violations(s.items!, x, `${path}[${i}]`));
    case 'integer':
    case 'number':
      if (typeof v !== 'number' || (s.type === 'integer' && !Number.isInteger(v))) return [`${path}: not a ${s.type}`];
      if (s.minimum !== undefined && (s.exclusiveMinimum ? v <= s.minimum : v < s.minimum))
        out.push(`${path}: below minimum`);
      if (s.maximum !== undefined && (s.exclusiveMaximum ? v >= s.maximum : v > s.maximum))
        out.push(`${path}: above maximum`);
      return out;
    case 'string':
      if (typeof v !== 'string') return [`${path}: not a string`];
      if (s.enum && !s.enum.includes(v)) out.push(`${path}: not in enum`);
      if (s.pattern && !new RegExp(s.pattern).test(v)) out.push(`${path}: does not match pattern`);
      return out;
    case 'boolean':
      return typeof v === 'boolean' ? [] : [`${path}: not a boolean`];
    default:
      return [`${path}: no type`];
  }
}

describe('the MidiCorpus CRD', () => {
  it('names the API as docs/operator.md says', () => {
    const crd = midiCorpusCRD();
    expect(crd.metadata.name).toBe('midicorpora.midi.corpus.dev');
    expect(crd.spec.names).toMatchObject({
      kind: 'MidiCorpus',
      plural: 'midicorpora',
      singular: 'midicorpus',
      shortNames: ['mco'],
    });
    expect(crd.spec.scope).toBe('Namespaced');
    expect(crd.spec.versions.map((v) => [v.name, v.served, v.storage])).toEqual([['v1alpha1', true, true]]);
    expect(crd.spec.versions[0]!.subresources).toEqual({ status: {} });
  });

  it('is a structural schema: every node has a type, except int-or-string and preserve-unknown roots', () => {
    const untyped = [...walk(root)]
      .filter(({ s, inJunctor }) => !inJunctor && !s.type && !s['x-kubernetes-int-or-string'])
      .map(({ path }) => path);
    expect(untyped).toEqual([]);
  });

  it('uses anyOf only in the int-or-string form the API server accepts', () => {
    for (const { s, path } of walk(root)) {
      if (!s.anyOf) continue;
      expect(s['x-kubernetes-int-or-string'], path).toBe(true);
      expect(s.anyOf, path).toEqual([{ type: 'integer' }, { type: 'string' }]);
      expect(s.type, path).toBeUndefined();
    }
  });

  it('never mixes properties with additionalProperties, and gives arrays their items', () => {
    for (const { s, path } of walk(root)) {
      expect(s.properties !== undefined && s.additionalProperties !== undefined, path).toBe(false);
      if (s.type === 'array') expect(s.items, path).toBeDefined();
    }
  });

  it('has only defaults that are valid against their own schema (the API server refuses the CRD otherwise)', () => {
    const bad = [...walk(root)]
      .filter(({ s }) => s.default !== undefined)
      .flatMap(({ s, path }) => violations(s, s.default, path));
    expect(bad).toEqual([]);
  });

  it('bounds every list and map that a CEL rule walks, so the rules stay under the cost limit', () => {
    for (const { s, path } of walk(root)) {
      if (!s['x-kubernetes-validations']) continue;
      if (s.type === 'string') expect(s.maxLength ?? s.enum, path).toBeDefined();
      if (s.additionalProperties) expect(s.maxProperties, path).toBeDefined();
      if (s.type === 'array') expect(s.maxItems, path).toBeDefined();
    }
  });

  it('gives every condition the fields of metav1.Condition, keyed by type', () => {
    const conditions = root.properties!.status!.properties!.conditions!;
    expect(conditions['x-kubernetes-list-type']).toBe('map');
    expect(conditions['x-kubernetes-list-map-keys']).toEqual(['type']);
    expect(conditions.items!.required).toEqual(['type', 'status', 'reason', 'message', 'lastTransitionTime']);
  });

  it('round-trips through YAML unchanged', () => {
    expect(parse(midiCorpusCRDYaml())).toEqual(midiCorpusCRD());
  });
});

describe('defaults', () => {
  const minimal = {
    source: { volume: { persistentVolumeClaim: { claimName: 'midi' } } },
    database: { secretRef: { name: 'db' } },
  };

  it('turn a minimal spec into a complete one, as the API server would store it', () => {
    const spec = applyDefaults(midiCorpusSpecSchema.openapi, minimal) as MidiCorpusSpec;
    expect(spec).toEqual({
      source: { volume: { persistentVolumeClaim: { claimName: 'midi' } }, path: '' },
      database: {
        secretRef: { name: 'db', key: 'url' },
        reservedConnections: 3,
        headroom: 2,
        ledgerDatabase: 'postgres',
      },
      sharding: { filesPerShard: 1000 },
      runner: {
        resources: { requests: { cpu: '1', memory: '512Mi' }, limits: { memory: '1Gi' } },
        pool: DEFAULT_POOL_TUNING,
        maxParallelism: 50,
        backoffLimitPerIndex: 6,
      },
      suspend: false,
      rerun: 0,
      deletionPolicy: 'Keep',
      retention: { ttlSecondsAfterFinished: 86_400 },
    });
    expect(violations(midiCorpusSpecSchema.openapi, spec)).toEqual([]);
  });

  it('leave given values alone, and do not add filesPerShard next to targetShards', () => {
    const spec = applyDefaults(midiCorpusSpecSchema.openapi, {
      ...minimal,
      sharding: { targetShards: 7 },
      runner: { pool: { maxPerPod: 4 } },
    }) as MidiCorpusSpec;
    expect(spec.sharding).toEqual({ targetShards: 7 });
    expect(spec.runner.pool).toEqual({ ...DEFAULT_POOL_TUNING, maxPerPod: 4 });
  });

  it('do not reach inside a volume source the API server preserves as given', () => {
    const spec = applyDefaults(midiCorpusSpecSchema.openapi, {
      ...minimal,
      source: { volume: { nfs: { server: 'nas', path: '/m' } } },
    }) as MidiCorpusSpec;
    expect(spec.source.volume).toEqual({ nfs: { server: 'nas', path: '/m' } });
  });
});
