import { setTimeout as sleep } from 'node:timers/promises';
import { isStatus, MERGE_PATCH, type KubeRest } from './kube-rest.js';

/** The one call the drain makes, so a test can answer it. */
type Api = Pick<KubeRest, 'request'>;

/** A pod as the drain sees it. */
interface DrainPod {
  metadata: {
    namespace: string;
    name: string;
    uid: string;
    annotations?: Record<string, string>;
    ownerReferences?: Array<{ kind: string; controller?: boolean }>;
  };
}

export interface DrainOptions {
  /** How long to wait between evictions a PodDisruptionBudget refused (HTTP 429). kubectl drain waits 5 s. */
  retryMs?: number;
  /** Give up (with the pods still there named) after this long. Default 5 minutes. */
  timeoutMs?: number;
  log?: (line: string) => void;
}

/** Pods a drain leaves alone, as `kubectl drain --ignore-daemonsets` does: DaemonSet pods (their controller would
 *  recreate them at once, and tolerates unschedulable) and mirror pods (static pods: the API cannot evict them). */
export function skippedByDrain(pod: DrainPod): boolean {
  if (pod.metadata.annotations?.['kubernetes.io/config.mirror'] !== undefined) return true;
  return pod.metadata.ownerReferences?.some((o) => o.controller && o.kind === 'DaemonSet') ?? false;
}

/** Marks the node unschedulable, as `kubectl cordon` does. */
export async function cordon(rest: Api, node: string): Promise<void> {
  await rest.request('PATCH', `/api/v1/nodes/${node}`, { spec: { unschedulable: true } }, MERGE_PATCH);
}

/**
 * POSTs an Eviction for the pod until the API server accepts it, as `kubectl drain` and the cluster autoscaler do:
 * a 429 means a PodDisruptionBudget does not allow the disruption *now*, so try again later; a 404 means the pod
 * is already gone.
 */
async function evictUntilAccepted(
  rest: Api,
  pod: DrainPod,
  retryMs: number,
  deadline: number,
  log: (line: string) => void,
): Promise<void> {
  const { namespace, name } = pod.metadata;
  for (;;) {
    try {
      await rest.request('POST', `/api/v1/namespaces/${namespace}/pods/${name}/eviction`, {
        apiVersion: 'policy/v1',
        kind: 'Eviction',
        metadata: { name, namespace },
      });
      return;
    } catch (err) {
      if (isStatus(err, 404)) return;
      if (!isStatus(err, 429)) throw err;
      if (Date.now() > deadline)
        throw new Error(`eviction of ${namespace}/${name} still refused by its disruption budget`);
      log(`eviction of ${namespace}/${name} refused (disruption budget), retrying in ${retryMs} ms`);
      await sleep(retryMs);
    }
  }
}

async function gone(rest: Api, pod: DrainPod): Promise<boolean> {
  try {
    const now = await rest.request<DrainPod>(
      'GET',
      `/api/v1/namespaces/${pod.metadata.namespace}/pods/${pod.metadata.name}`,
    );
    return now.metadata.uid !== pod.metadata.uid; // a new pod of the same name (a StatefulSet's) is not this one
  } catch (err) {
    if (isStatus(err, 404)) return true;
    throw err;
  }
}

/** Cordons the node, evicts each of its pods (all at once, each retried while its budget refuses), and waits until
 *  they are deleted: after it returns, nothing but DaemonSet and mirror pods runs on the node. */
export async function drainNode(rest: Api, node: string, options: DrainOptions = {}): Promise<void> {
  const retryMs = options.retryMs ?? 5000;
  const deadline = Date.now() + (options.timeoutMs ?? 300_000);
  const log = options.log ?? (() => {});
  await cordon(rest, node);
  const list = await rest.request<{ items: DrainPod[] }>(
    'GET',
    `/api/v1/pods?fieldSelector=${encodeURIComponent(`spec.nodeName=${node}`)}`,
  );
  const pods = list.items.filter((p) => !skippedByDrain(p));
  await Promise.all(
    pods.map(async (pod) => {
      await evictUntilAccepted(rest, pod, retryMs, deadline, log);
      while (!(await gone(rest, pod))) {
        if (Date.now() > deadline)
          throw new Error(`${pod.metadata.namespace}/${pod.metadata.name} still on ${node} after its eviction`);
        await sleep(250);
      }
    }),
  );
}
