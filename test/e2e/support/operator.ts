/**
 * The Kubernetes side of the end-to-end tests: installing the operator as a user would (Helm chart or `kubectl apply
 * -k`), MidiCorpus objects in and out, the run Job's pods, the Lease, and the disruptions (a runner process killed, a
 * pod evicted, the leader deleted).
 */
import { spawn } from 'node:child_process';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import {
  AuthorizationV1Api,
  BatchV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type V1Job,
  type V1Pod,
} from '@kubernetes/client-node';
import {
  GROUP,
  PLURAL,
  VERSION,
  type MidiCorpus,
  type MidiCorpusStatus,
} from '../../../controller/api/v1alpha1/midicorpus.js';
import type { ClusterOptions, TestCluster } from '../../cluster/cluster.js';
import { databaseSecret } from './database-secret.js';
import { eventually } from '../../cluster/vitest.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const chartDir = path.join(repoRoot, 'charts', 'midi-corpus-operator');
export const manifestsDir = path.join(repoRoot, 'manifests');

/** Both installs name everything after the release `midi-corpus-operator` in `midi-corpus-system`. */
export const OPERATOR_NAMESPACE = 'midi-corpus-system';
export const OPERATOR_NAME = 'midi-corpus-operator';
export const CONTROLLER_SELECTOR = 'app.kubernetes.io/name=midi-corpus-operator,app.kubernetes.io/component=controller';

/**
 * Two real worker nodes (the harness' default). Each kubelet reports this machine's CPUs, so runner pods request
 * little CPU (RUNNER_CPU): the connection budget, not the nodes' CPU, is what limits how many run. The project image
 * (`npm run image`) is imported into both nodes by the suite before anything is installed.
 */
export const E2E_CLUSTER: ClusterOptions = { nodes: [{ name: 'node-1' }, { name: 'node-2' }] };

/** The runner pods' CPU request: one parse worker and a pool of 2 (poolSizeFor), as for any request below 2 CPUs. */
export const RUNNER_CPU = '100m';

async function must(cluster: TestCluster, args: string[], input?: string): Promise<string> {
  const r = await cluster.kubectl(args, input);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.code}):\n${r.stderr}`);
  return r.stdout;
}

async function waitForRollout(cluster: TestCluster): Promise<void> {
  await must(cluster, ['-n', OPERATOR_NAMESPACE, 'rollout', 'status', `deployment/${OPERATOR_NAME}`, '--timeout=120s']);
  await leaseHolder(cluster, 60_000);
}

export async function installWithHelm(cluster: TestCluster): Promise<string> {
  const r = await cluster.helm([
    'install',
    OPERATOR_NAME,
    chartDir,
    '--namespace',
    OPERATOR_NAMESPACE,
    '--create-namespace',
    // The "nopull" scenario (nodes.test.ts) names a runner image of this unreachable registry on purpose: the pod
    // policy must let it through for the test to reach the pod that cannot pull it.
    '--set',
    'podPolicy.allowedImages={localhost:5999/}',
  ]);
  if (r.code !== 0) throw new Error(`helm install failed (${r.code}):\n${r.stderr}`);
  await waitForRollout(cluster);
  return r.stdout;
}

export async function installWithKustomize(cluster: TestCluster, dir = manifestsDir): Promise<string> {
  // The CRD must be established before anything of its kind; apply -k sends it in the same request as the rest.
  const out = await must(cluster, ['apply', '-k', dir]);
  await must(cluster, ['wait', '--for=condition=Established', `crd/${PLURAL}.${GROUP}`, '--timeout=60s']);
  await waitForRollout(cluster);
  return out;
}

export interface CorpusSpecOptions {
  name: string;
  namespace: string;
  /** The PersistentVolumeClaim that holds the corpus (corpusVolumeObjects; a scenario's corpus() creates it). */
  claim: string;
  secret?: string;
  filesPerShard: number;
  cpu?: string;
  maxParallelism?: number;
  maxConnections?: number;
}

export function corpusObject(
  o: CorpusSpecOptions,
): Omit<MidiCorpus, 'metadata'> & { metadata: { name: string; namespace: string } } {
  const spec: Record<string, unknown> = {
    source: { volume: { persistentVolumeClaim: { claimName: o.claim, readOnly: true } } },
    database: {
      secretRef: { name: o.secret ?? 'db' },
      ...(o.maxConnections !== undefined ? { maxConnections: o.maxConnections } : {}),
    },
    sharding: { filesPerShard: o.filesPerShard },
    runner: {
      resources: { requests: { cpu: o.cpu ?? RUNNER_CPU, memory: '128Mi' } },
      ...(o.maxParallelism !== undefined ? { maxParallelism: o.maxParallelism } : {}),
    },
  };
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'MidiCorpus',
    metadata: { name: o.name, namespace: o.namespace },
    spec: spec as MidiCorpus['spec'],
  };
}

/**
 * A directory of this machine as a local PersistentVolume and the claim bound to it, statically (claimRef and
 * volumeName, no storage class): how a corpus reaches the runner pods under the pod policy, which refuses hostPath.
 * The nodes share this machine's filesystem and nodes join during tests, so the volume's required node affinity names
 * a label every node has. ReadOnlyMany: the runners mount the corpus read-only.
 */
export function corpusVolumeObjects(o: { namespace: string; claim: string; dir: string }): [object, object] {
  const volumeName = `mco-e2e-${o.namespace}-${o.claim}`;
  const common = { accessModes: ['ReadOnlyMany'], storageClassName: '' };
  return [
    {
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      metadata: { name: volumeName },
      spec: {
        ...common,
        capacity: { storage: '1Gi' },
        persistentVolumeReclaimPolicy: 'Retain',
        local: { path: o.dir },
        claimRef: { namespace: o.namespace, name: o.claim },
        nodeAffinity: {
          required: {
            nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/os', operator: 'In', values: ['linux'] }] }],
          },
        },
      },
    },
    {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name: o.claim, namespace: o.namespace },
      spec: { ...common, volumeName, resources: { requests: { storage: '1Gi' } } },
    },
  ];
}

/** `kubectl apply` of objects, as a user would; returns kubectl's result (the API server's refusal included). */
export function apply(cluster: TestCluster, ...objects: object[]) {
  return cluster.kubectl(['apply', '-f', '-'], objects.map((o) => stringify(o)).join('---\n'));
}

export async function applyOrFail(cluster: TestCluster, ...objects: object[]): Promise<void> {
  const r = await apply(cluster, ...objects);
  if (r.code !== 0) throw new Error(`kubectl apply failed (${r.code}):\n${r.stderr}`);
}

export async function createDatabaseSecret(
  cluster: TestCluster,
  namespace: string,
  url: string,
  name = 'db',
): Promise<void> {
  await cluster.kc.makeApiClient(CoreV1Api).createNamespacedSecret({ namespace, body: databaseSecret(name, url) });
}

export async function readCorpus(
  cluster: TestCluster,
  namespace: string,
  name: string,
): Promise<MidiCorpus | undefined> {
  try {
    return (await cluster.kc
      .makeApiClient(CustomObjectsApi)
      .getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, name })) as MidiCorpus;
  } catch (err) {
    if ((err as { code?: number }).code === 404) return undefined;
    throw err;
  }
}

export async function deleteCorpus(cluster: TestCluster, namespace: string, name: string): Promise<void> {
  await cluster.kc
    .makeApiClient(CustomObjectsApi)
    .deleteNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, name });
}

/** Waits until the corpus reaches a final phase (or `phase`), and returns its status. */
export async function waitForPhase(
  cluster: TestCluster,
  namespace: string,
  name: string,
  phases: string[],
  timeoutMs = 180_000,
): Promise<MidiCorpusStatus> {
  return eventually(
    `${namespace}/${name} to reach ${phases.join(' or ')}`,
    async () => {
      const status = (await readCorpus(cluster, namespace, name))?.status;
      return status?.phase !== undefined && phases.includes(status.phase) ? status : undefined;
    },
    timeoutMs,
  );
}

export async function readJob(cluster: TestCluster, namespace: string, name: string): Promise<V1Job | undefined> {
  try {
    return await cluster.kc.makeApiClient(BatchV1Api).readNamespacedJob({ namespace, name });
  } catch (err) {
    if ((err as { code?: number }).code === 404) return undefined;
    throw err;
  }
}

export async function jobPods(cluster: TestCluster, namespace: string, job: string): Promise<V1Pod[]> {
  return (
    await cluster.kc
      .makeApiClient(CoreV1Api)
      .listNamespacedPod({ namespace, labelSelector: `batch.kubernetes.io/job-name=${job}` })
  ).items;
}

export const completionIndex = (pod: V1Pod) => pod.metadata?.annotations?.['batch.kubernetes.io/job-completion-index'];
export const isRunning = (pod: V1Pod) => pod.status?.phase === 'Running' && !pod.metadata?.deletionTimestamp;

/** The pods of the controller Deployment. */
export async function controllerPods(cluster: TestCluster): Promise<V1Pod[]> {
  return (
    await cluster.kc
      .makeApiClient(CoreV1Api)
      .listNamespacedPod({ namespace: OPERATOR_NAMESPACE, labelSelector: CONTROLLER_SELECTOR })
  ).items;
}

/** The Lease's holder once it names a running controller pod. */
export async function leaseHolder(
  cluster: TestCluster,
  timeoutMs = 60_000,
  not?: string,
): Promise<{ holder: string; transitions: number }> {
  const coordination = cluster.kc.makeApiClient(CoordinationV1Api);
  return eventually(
    'a controller pod to hold the Lease',
    async () => {
      const lease = await coordination.readNamespacedLease({ namespace: OPERATOR_NAMESPACE, name: OPERATOR_NAME });
      const holder = lease.spec?.holderIdentity;
      if (!holder || holder === not) return undefined;
      const running = (await controllerPods(cluster)).filter(isRunning).map((p) => p.metadata?.name);
      return running.includes(holder) ? { holder, transitions: lease.spec?.leaseTransitions ?? 0 } : undefined;
    },
    timeoutMs,
  );
}

/** Whether the ServiceAccount may do `verb` on `resource` in `namespace`, as the API server's authorizer decides. */
export async function serviceAccountMay(
  cluster: TestCluster,
  sa: { namespace: string; name: string },
  verb: string,
  group: string,
  resource: string,
  namespace: string,
): Promise<boolean> {
  const review = await cluster.kc.makeApiClient(AuthorizationV1Api).createSubjectAccessReview({
    body: {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SubjectAccessReview',
      spec: {
        user: `system:serviceaccount:${sa.namespace}:${sa.name}`,
        groups: ['system:serviceaccounts', `system:serviceaccounts:${sa.namespace}`, 'system:authenticated'],
        resourceAttributes: { verb, group, resource, namespace },
      },
    },
  });
  return review.status?.allowed === true;
}

/**
 * SIGKILLs the process of a pod's container, as a crash or the OOM killer would: no SIGTERM, no chance to roll back or
 * close connections. The nodes' containers are this machine's processes (in PID namespaces below the host's), found
 * through /proc by the POD_NAME the runner's environment carries and the image's `node` entrypoint.
 */
export async function killPodProcess(podName: string, command: string): Promise<number> {
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const environ = (await readFile(`/proc/${pid}/environ`, 'utf8')).split('\0');
      const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
      if (
        environ.includes(`POD_NAME=${podName}`) &&
        cmdline.includes(command) &&
        path.basename(cmdline[0] ?? '') === 'node'
      ) {
        process.kill(Number(pid), 'SIGKILL');
        return Number(pid);
      }
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  throw new Error(`no ${command} process of pod ${podName}`);
}

/**
 * Follows a pod's log from now until its container ends (`kubectl logs -f`), for a pod about to be deleted: once it is
 * gone, so is its log on the node. `done()` resolves with everything the container wrote.
 */
export async function followPodLog(
  cluster: TestCluster,
  namespace: string,
  name: string,
): Promise<{ done: () => Promise<string> }> {
  const child = spawn('kubectl', ['-n', namespace, 'logs', '-f', name], {
    env: { ...process.env, KUBECONFIG: cluster.kubeconfigPath },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const ended = new Promise<string>((resolve) => child.on('close', () => resolve(out)));
  // Following once the first bytes arrive (a controller has logged its start long before): from then on nothing is lost.
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      resolve();
    });
    void ended.then(() => reject(new Error(`kubectl logs -f ${namespace}/${name} ended before any output`)));
  });
  return { done: () => ended };
}
