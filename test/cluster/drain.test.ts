import { describe, expect, it } from 'vitest';
import { drainNode, skippedByDrain } from './drain.js';
import { KubeApiError } from './kube-rest.js';

const pod = (name: string, extra: { annotations?: Record<string, string>; owner?: string } = {}) => ({
  metadata: {
    namespace: 'ns',
    name,
    uid: `uid-${name}`,
    annotations: extra.annotations,
    ownerReferences: extra.owner ? [{ kind: extra.owner, controller: true }] : undefined,
  },
});

describe('skippedByDrain', () => {
  it.each([
    { name: 'a ReplicaSet pod is evicted', pod: pod('web', { owner: 'ReplicaSet' }), skipped: false },
    { name: 'a bare pod is evicted', pod: pod('bare'), skipped: false },
    { name: 'a DaemonSet pod is left', pod: pod('agent', { owner: 'DaemonSet' }), skipped: true },
    {
      name: 'a mirror pod is left',
      pod: pod('static', { annotations: { 'kubernetes.io/config.mirror': 'x' } }),
      skipped: true,
    },
  ])('$name', ({ pod: p, skipped }) => {
    expect(skippedByDrain(p)).toBe(skipped);
  });
});

describe('drainNode', () => {
  /** An API that refuses web-1's eviction `refusals` times (429, as a PDB does), then deletes pods once evicted. */
  function fakeApi(refusals: number) {
    const calls: string[] = [];
    const evicted = new Set<string>();
    let refused = 0;
    const request = async <T>(method: string, urlPath: string): Promise<T> => {
      calls.push(`${method} ${urlPath}`);
      if (method === 'GET' && urlPath.startsWith('/api/v1/pods?')) {
        return { items: [pod('web-1', { owner: 'ReplicaSet' }), pod('agent', { owner: 'DaemonSet' })] } as T;
      }
      const eviction = /\/pods\/([^/]+)\/eviction$/.exec(urlPath);
      if (eviction) {
        if (eviction[1] === 'web-1' && refused < refusals) {
          refused++;
          throw new KubeApiError(
            429,
            "Cannot evict pod as it would violate the pod's disruption budget.",
            method,
            urlPath,
          );
        }
        evicted.add(eviction[1]!);
        return {} as T;
      }
      const get = /\/pods\/([^/]+)$/.exec(urlPath);
      if (method === 'GET' && get) {
        if (evicted.has(get[1]!)) throw new KubeApiError(404, 'not found', method, urlPath);
        return pod(get[1]!) as T;
      }
      return {} as T;
    };
    return { api: { request } as never, calls };
  }

  it('cordons first, retries an eviction a disruption budget refuses, leaves DaemonSet pods, waits for deletion', async () => {
    const { api, calls } = fakeApi(2);
    const lines: string[] = [];
    await drainNode(api, 'node-a', { retryMs: 1, log: (l) => lines.push(l) });
    expect(calls[0]).toBe('PATCH /api/v1/nodes/node-a');
    expect(calls.filter((c) => c.endsWith('/pods/web-1/eviction'))).toHaveLength(3);
    expect(calls.some((c) => c.includes('/pods/agent/eviction'))).toBe(false);
    expect(lines).toEqual([
      'eviction of ns/web-1 refused (disruption budget), retrying in 1 ms',
      'eviction of ns/web-1 refused (disruption budget), retrying in 1 ms',
    ]);
    expect(calls.at(-1)).toBe('GET /api/v1/namespaces/ns/pods/web-1');
  });

  it('gives up when the budget keeps refusing past the timeout, naming the pod', async () => {
    const { api } = fakeApi(Infinity);
    await expect(drainNode(api, 'node-a', { retryMs: 1, timeoutMs: 20 })).rejects.toThrow(
      'ns/web-1 still refused by its disruption budget',
    );
  });
});
