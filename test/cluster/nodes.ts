import type { V1Taint } from '@kubernetes/client-node';
import type { KubeRest} from './kube-rest.js';
import { isStatus, MERGE_PATCH } from './kube-rest.js';
import type { NodeResources } from './pod-env.js';
import { POD_IP } from './kubelet.js';

export interface FakeNodeSpec {
  name: string;
  /** Allocatable CPU as a quantity ("4", "3500m"). Default "4". */
  cpu?: string;
  /** Allocatable memory as a quantity. Default "8Gi". */
  memory?: string;
  /** Pod capacity. Default 110, as a kubelet's. */
  pods?: number;
  labels?: Record<string, string>;
  taints?: V1Taint[];
}

/** How often the node Lease is renewed, as the kubelet's default (a quarter of the 40 s lease). */
const LEASE_RENEW_MS = 10_000;
const LEASE_DURATION_SECONDS = 40;

/** MicroTime, as Lease.spec.renewTime wants it: RFC 3339 with exactly six fractional digits. */
function microTime(d = new Date()): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/**
 * Nodes that exist only as API objects: registered with capacity so the real scheduler binds pods by their
 * requests, kept Ready with Lease heartbeats in kube-node-lease, and served by the process kubelet.
 */
export class FakeNodes {
  private readonly nodes = new Map<string, { resources: NodeResources; timer: NodeJS.Timeout | undefined }>();

  constructor(private readonly rest: KubeRest, private readonly log: (line: string) => void) {}

  resources(name: string): NodeResources | undefined {
    return this.nodes.get(name)?.resources;
  }

  names(): string[] {
    return [...this.nodes.keys()];
  }

  async add(spec: FakeNodeSpec): Promise<void> {
    const { name } = spec;
    const resources = { cpu: spec.cpu ?? '4', memory: spec.memory ?? '8Gi', pods: String(spec.pods ?? 110) };
    if (this.nodes.has(name)) throw new Error(`node ${name} already exists`);
    // Known to the kubelet before the scheduler can see the node, so no pod bound to it is ignored.
    const entry = { resources: { allocatable: resources }, timer: undefined as NodeJS.Timeout | undefined };
    this.nodes.set(name, entry);
    try {
      await this.rest.request('POST', '/api/v1/nodes', {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: {
          name,
          labels: {
            'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64',
            ...spec.labels,
          },
        },
        spec: { taints: spec.taints ?? [] },
      });
      const at = new Date().toISOString();
      await this.rest.request('PATCH', `/api/v1/nodes/${name}/status`, {
        status: {
          capacity: resources,
          allocatable: resources,
          conditions: [
            { type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'process kubelet is posting ready status',
              lastHeartbeatTime: at, lastTransitionTime: at },
            ...['MemoryPressure', 'DiskPressure', 'PIDPressure'].map((type) => ({
              type, status: 'False', reason: `KubeletHasNo${type}`, lastHeartbeatTime: at, lastTransitionTime: at,
            })),
          ],
          addresses: [{ type: 'InternalIP', address: POD_IP }, { type: 'Hostname', address: name }],
          nodeInfo: {
            machineID: name, systemUUID: name, bootID: name, kernelVersion: '', osImage: 'process kubelet',
            containerRuntimeVersion: 'process://1', kubeletVersion: 'v0.0.0-process', kubeProxyVersion: '',
            operatingSystem: 'linux', architecture: 'amd64',
          },
        },
      }, MERGE_PATCH);
      const node = await this.rest.request<{ metadata: { uid: string } }>('GET', `/api/v1/nodes/${name}`);
      const lease = {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: {
          name, namespace: 'kube-node-lease',
          ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name, uid: node.metadata.uid }],
        },
        spec: { holderIdentity: name, leaseDurationSeconds: LEASE_DURATION_SECONDS, renewTime: microTime() },
      };
      await this.rest.request('POST', '/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases', lease);
    } catch (err) {
      this.nodes.delete(name);
      throw err;
    }
    entry.timer = setInterval(() => void this.renew(name), LEASE_RENEW_MS);
    entry.timer.unref();
  }

  private async renew(name: string): Promise<void> {
    try {
      await this.rest.request('PATCH', `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${name}`,
        { spec: { renewTime: microTime() } }, MERGE_PATCH);
    } catch (err) {
      if (this.nodes.has(name)) this.log(`lease renewal for node ${name} failed: ${String(err)}`);
    }
  }

  /** Stops serving the node and deletes its object (its Lease goes with it, by owner reference). */
  async remove(name: string): Promise<void> {
    const node = this.nodes.get(name);
    if (!node) throw new Error(`node ${name} is not one of the harness' nodes`);
    clearInterval(node.timer);
    this.nodes.delete(name);
    try {
      await this.rest.request('DELETE', `/api/v1/nodes/${name}`);
    } catch (err) {
      if (!isStatus(err, 404)) throw err;
    }
  }

  /** Marks the node unschedulable, as `kubectl cordon` does. */
  async cordon(name: string): Promise<void> {
    await this.rest.request('PATCH', `/api/v1/nodes/${name}`, { spec: { unschedulable: true } }, MERGE_PATCH);
  }

  stop(): void {
    for (const { timer } of this.nodes.values()) clearInterval(timer);
    this.nodes.clear();
  }
}
