import type { V1Container, V1ObjectFieldSelector, V1Pod, V1ResourceFieldSelector } from '@kubernetes/client-node';
import { expandVars } from './images.js';

/**
 * A container whose configuration cannot be built (a missing ConfigMap key, an unknown field path). The kubelet
 * reports these as the waiting reason CreateContainerConfigError and retries; so does the harness.
 */
export class ContainerConfigError extends Error {}

const SUFFIXES: Record<string, number> = {
  n: 1e-9, u: 1e-6, m: 1e-3, '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
};

/** Parses a Kubernetes resource quantity ("500m", "1.5", "2Gi", "1e3") into its value in base units. */
export function parseQuantity(q: string | number): number {
  if (typeof q === 'number') return q;
  const m = /^([+-]?[0-9.]+)(?:([eE][+-]?[0-9]+)|([a-zA-Z]*))$/.exec(q.trim());
  if (!m) throw new ContainerConfigError(`invalid quantity ${JSON.stringify(q)}`);
  const [, num, exp, suffix = ''] = m;
  if (exp) return Number(num + exp);
  const factor = SUFFIXES[suffix];
  if (factor === undefined) throw new ContainerConfigError(`invalid quantity suffix in ${JSON.stringify(q)}`);
  return Number(num) * factor;
}

/** What the kubelet knows about its node, needed where a limit is unset (it then defaults to allocatable). */
export interface NodeResources {
  allocatable: Record<string, string>;
}

/**
 * The value of a resourceFieldRef, as the kubelet computes it: the container's request or limit divided by the
 * divisor and rounded up (so requests.cpu 500m with divisor 1m gives "500", with the default divisor 1 gives "1").
 * An unset limit falls back to the node's allocatable amount; an unset request is 0.
 */
export function resourceFieldValue(ref: V1ResourceFieldSelector, container: V1Container, node: NodeResources): string {
  const [kind, resource] = ref.resource.split('.', 2) as [string, string | undefined];
  if ((kind !== 'requests' && kind !== 'limits') || !resource) {
    throw new ContainerConfigError(`unsupported resourceFieldRef ${ref.resource}`);
  }
  const fromContainer = container.resources?.[kind]?.[resource];
  const raw = fromContainer ?? (kind === 'limits' ? node.allocatable[resource] : undefined) ?? '0';
  const divisor = parseQuantity(ref.divisor ?? '1');
  if (divisor <= 0) throw new ContainerConfigError(`divisor must be positive in ${ref.resource}`);
  // Compare in milli-units first so 0.5/0.001 is exactly 500, not 499.99999.
  const value = Math.round(parseQuantity(raw) * 1000);
  const div = Math.round(divisor * 1000);
  return String(div > 0 ? Math.ceil(value / div) : Math.ceil(parseQuantity(raw) / divisor));
}

/** The value of a fieldRef (Downward API), for the field paths the kubelet supports. */
export function fieldRefValue(ref: V1ObjectFieldSelector, pod: V1Pod, podIP: string): string {
  const p = ref.fieldPath;
  const subscript = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(p);
  if (subscript) {
    const [, which, key = ''] = subscript;
    const map = which === 'labels' ? pod.metadata?.labels : pod.metadata?.annotations;
    return map?.[key] ?? '';
  }
  switch (p) {
    case 'metadata.name': return pod.metadata?.name ?? '';
    case 'metadata.namespace': return pod.metadata?.namespace ?? '';
    case 'metadata.uid': return pod.metadata?.uid ?? '';
    case 'spec.nodeName': return pod.spec?.nodeName ?? '';
    case 'spec.serviceAccountName': return pod.spec?.serviceAccountName ?? '';
    case 'status.podIP': case 'status.podIPs': case 'status.hostIP': case 'status.hostIPs': return podIP;
    default: throw new ContainerConfigError(`unsupported fieldRef ${p}`);
  }
}

/** How the kubelet reads ConfigMaps and Secrets (values decoded); undefined when the object does not exist. */
export interface ObjectLookup {
  configMap(namespace: string, name: string): Promise<Record<string, string> | undefined>;
  secret(namespace: string, name: string): Promise<Record<string, string> | undefined>;
}

async function keyRef(kind: 'configMap' | 'secret', lookup: ObjectLookup, namespace: string,
  ref: { name?: string; key: string; optional?: boolean }): Promise<string | undefined> {
  const data = await lookup[kind](namespace, ref.name ?? '');
  const value = data?.[ref.key];
  if (value === undefined && !ref.optional) {
    throw new ContainerConfigError(data === undefined
      ? `${kind} "${ref.name}" not found`
      : `couldn't find key ${ref.key} in ${kind} ${namespace}/${ref.name}`);
  }
  return value;
}

/**
 * A container's environment as the kubelet builds it: the service variables first, then envFrom sources, then
 * env entries in order (later ones win), each value `$(VAR)`-expanded against what is defined before it.
 */
export async function resolveContainerEnv(pod: V1Pod, container: V1Container, context: {
  lookup: ObjectLookup;
  node: NodeResources;
  podIP: string;
  serviceEnv: Record<string, string>;
}): Promise<Record<string, string>> {
  const namespace = pod.metadata?.namespace ?? 'default';
  const env: Record<string, string> = { ...context.serviceEnv };
  for (const source of container.envFrom ?? []) {
    const prefix = source.prefix ?? '';
    const ref = source.configMapRef ?? source.secretRef;
    const kind = source.configMapRef ? 'configMap' : 'secret';
    if (!ref) continue;
    const data = await context.lookup[kind](namespace, ref.name ?? '');
    if (data === undefined && !ref.optional) throw new ContainerConfigError(`${kind} "${ref.name}" not found`);
    for (const [k, v] of Object.entries(data ?? {})) env[prefix + k] = v;
  }
  for (const e of container.env ?? []) {
    const from = e.valueFrom;
    let value: string | undefined;
    if (!from) value = expandVars(e.value ?? '', env);
    else if (from.fieldRef) value = fieldRefValue(from.fieldRef, pod, context.podIP);
    else if (from.resourceFieldRef) value = resourceFieldValue(from.resourceFieldRef, container, context.node);
    else if (from.configMapKeyRef) value = await keyRef('configMap', context.lookup, namespace, from.configMapKeyRef);
    else if (from.secretKeyRef) value = await keyRef('secret', context.lookup, namespace, from.secretKeyRef);
    else throw new ContainerConfigError(`env ${e.name}: unsupported valueFrom`);
    if (value !== undefined) env[e.name] = value;
  }
  return env;
}
