import { describe, expect, it } from 'vitest';
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import {
  ContainerConfigError, fieldRefValue, parseQuantity, resolveContainerEnv, resourceFieldValue, type ObjectLookup,
} from './pod-env.js';

const node = { allocatable: { cpu: '4', memory: '8Gi' } };

describe('parseQuantity', () => {
  it.each([
    ['500m', 0.5], ['2', 2], ['1.5', 1.5], ['1Ki', 1024], ['2Gi', 2 * 2 ** 30], ['1M', 1e6], ['1e3', 1000], ['100u', 1e-4],
  ])('reads %s as %d', (q, value) => {
    expect(parseQuantity(q)).toBeCloseTo(value, 10);
  });

  it('refuses an unknown suffix', () => {
    expect(() => parseQuantity('3X')).toThrow(ContainerConfigError);
  });
});

describe('resourceFieldValue', () => {
  const container: V1Container = {
    name: 'c',
    resources: { requests: { cpu: '500m', memory: '256Mi' }, limits: { cpu: '1500m' } },
  };
  it.each([
    { resource: 'requests.cpu', divisor: '1m', want: '500' },
    { resource: 'requests.cpu', divisor: undefined, want: '1' }, // rounded up, as the kubelet does
    { resource: 'limits.cpu', divisor: '1m', want: '1500' },
    { resource: 'requests.memory', divisor: '1Mi', want: '256' },
    { resource: 'requests.memory', divisor: undefined, want: String(256 * 2 ** 20) },
    { resource: 'limits.memory', divisor: '1Gi', want: '8' }, // unset limit: the node's allocatable
    { resource: 'requests.ephemeral-storage', divisor: undefined, want: '0' }, // unset request: 0
  ])('$resource with divisor $divisor is $want', ({ resource, divisor, want }) => {
    expect(resourceFieldValue({ resource, divisor }, container, node)).toBe(want);
  });
});

const pod: V1Pod = {
  metadata: {
    name: 'job-0-abc', namespace: 'ns1', uid: 'u-1',
    labels: { app: 'runner' },
    annotations: { 'batch.kubernetes.io/job-completion-index': '2' },
  },
  spec: { nodeName: 'node-1', serviceAccountName: 'runner', containers: [] },
};

describe('fieldRefValue', () => {
  it.each([
    ['metadata.name', 'job-0-abc'],
    ['metadata.namespace', 'ns1'],
    ['metadata.uid', 'u-1'],
    ["metadata.annotations['batch.kubernetes.io/job-completion-index']", '2'],
    ["metadata.labels['app']", 'runner'],
    ["metadata.labels['missing']", ''],
    ['spec.nodeName', 'node-1'],
    ['spec.serviceAccountName', 'runner'],
    ['status.podIP', '127.0.0.1'],
  ])('%s is %j', (fieldPath, want) => {
    expect(fieldRefValue({ fieldPath }, pod, '127.0.0.1')).toBe(want);
  });

  it('refuses a field path the kubelet does not support', () => {
    expect(() => fieldRefValue({ fieldPath: 'spec.containers' }, pod, '127.0.0.1')).toThrow(ContainerConfigError);
  });
});

describe('resolveContainerEnv', () => {
  const lookup: ObjectLookup = {
    configMap: (_ns, name) => Promise.resolve(name === 'settings' ? { LEVEL: 'debug', MODE: 'fast' } : undefined),
    secret: (_ns, name) => Promise.resolve(name === 'db' ? { url: 'postgres://secret@db/x' } : undefined),
  };
  const context = { lookup, node, podIP: '127.0.0.1', serviceEnv: { KUBERNETES_SERVICE_HOST: '127.0.0.1' } };

  it('resolves every kind of source, later entries winning, with $(VAR) expansion', async () => {
    const env = await resolveContainerEnv(pod, {
      name: 'c',
      resources: { requests: { cpu: '250m' } },
      envFrom: [{ configMapRef: { name: 'settings' }, prefix: 'CFG_' }],
      env: [
        { name: 'DATABASE_URL', valueFrom: { secretKeyRef: { name: 'db', key: 'url' } } },
        { name: 'LEVEL', valueFrom: { configMapKeyRef: { name: 'settings', key: 'LEVEL' } } },
        { name: 'INDEX', valueFrom: { fieldRef: { fieldPath: "metadata.annotations['batch.kubernetes.io/job-completion-index']" } } },
        { name: 'CPU_REQUEST_MILLIS', valueFrom: { resourceFieldRef: { resource: 'requests.cpu', divisor: '1m' } } },
        { name: 'SHARD_LABEL', value: 'shard-$(INDEX)-$$(INDEX)-$(UNDEFINED)' },
        { name: 'CFG_MODE', value: 'slow' },
      ],
    }, context);
    expect(env).toEqual({
      KUBERNETES_SERVICE_HOST: '127.0.0.1',
      CFG_LEVEL: 'debug',
      CFG_MODE: 'slow',
      DATABASE_URL: 'postgres://secret@db/x',
      LEVEL: 'debug',
      INDEX: '2',
      CPU_REQUEST_MILLIS: '250',
      SHARD_LABEL: 'shard-2-$(INDEX)-$(UNDEFINED)',
    });
  });

  it('skips a missing optional key and refuses a missing required one', async () => {
    const optional = await resolveContainerEnv(pod, {
      name: 'c', env: [{ name: 'X', valueFrom: { configMapKeyRef: { name: 'settings', key: 'NOPE', optional: true } } }],
    }, context);
    expect(optional).not.toHaveProperty('X');
    await expect(resolveContainerEnv(pod, {
      name: 'c', env: [{ name: 'X', valueFrom: { secretKeyRef: { name: 'absent', key: 'k' } } }],
    }, context)).rejects.toThrow(/secret "absent" not found/);
  });
});
