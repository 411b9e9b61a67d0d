import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeConfig } from '@kubernetes/client-node';
import { ensureClusterBinaries, REPO_ROOT } from './binaries.js';
import { startControlPlane } from './control-plane.js';
import { projectImages, type ImageTable } from './images.js';
import { isStatus, KubeRest } from './kube-rest.js';
import { Kubelet } from './kubelet.js';
import { FakeNodes, type FakeNodeSpec } from './nodes.js';
import { ProcessSupervisor } from './processes.js';

export interface ClusterOptions {
  /** Nodes registered at start. Default: one node `node-1` with 4 CPUs and 8Gi. */
  nodes?: FakeNodeSpec[];
  /** Which images the kubelet can run. Default: the project's image → the built CLI (dist/cli/main.js). */
  images?: ImageTable;
  /** Where hostPath volumes live on this machine. Default: the path as given. */
  hostPath?: (p: string) => string;
  /** The local directory backing a PersistentVolumeClaim. Default: `<cluster dir>/claims/<namespace>/<claim>`. */
  claimDir?: (namespace: string, claim: string) => string;
  apiserverArgs?: string[];
  controllerManagerArgs?: string[];
  /** Harness progress lines. Default: printed to stderr when MIDI_CORPUS_CLUSTER_VERBOSE is set. */
  log?: (line: string) => void;
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface TestCluster {
  /** Everything of this cluster: kubeconfig, PKI, component logs (logs/), pod logs (pods/). */
  dir: string;
  kubeconfigPath: string;
  /** An admin KubeConfig (system:masters). */
  kc: KubeConfig;
  apiserverUrl: string;
  binDir: string;
  addNode(spec: FakeNodeSpec): Promise<void>;
  /** Removes a node abruptly, as a machine that vanishes: its pods' processes die, their objects stay for pod GC. */
  removeNode(name: string): Promise<void>;
  /** Cordons the node and evicts its pods through the Eviction API (DisruptionTarget, then graceful termination). */
  drainNode(name: string): Promise<void>;
  /** Evicts one pod through the Eviction API, as a node drain does. */
  evictPod(namespace: string, name: string): Promise<void>;
  /** A pod container's stdout and stderr (all containers when none is named). */
  podLogs(namespace: string, name: string, container?: string): string;
  /** Creates a namespace and waits until its default ServiceAccount exists (pods are refused before that). */
  createNamespace(name: string): Promise<void>;
  kubectl(args: string[], input?: string): Promise<CommandResult>;
  helm(args: string[]): Promise<CommandResult>;
  /** Process ids of the cluster still running (control plane and containers), for leak checks. */
  pids(): number[];
  stop(): Promise<void>;
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv, input?: string): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = execFile(command, args, { env, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

/**
 * Starts a real control plane (etcd, kube-apiserver with RBAC, kube-controller-manager, kube-scheduler) on free
 * ports, registers fake nodes and runs the process kubelet for them. Call `stop()` when done: it ends every
 * process of the cluster and deletes its directory (set MIDI_CORPUS_KEEP_CLUSTER=1 to keep it for a post-mortem).
 */
export async function startCluster(options: ClusterOptions = {}): Promise<TestCluster> {
  const log = options.log ?? (process.env.MIDI_CORPUS_CLUSTER_VERBOSE
    ? (line: string) => process.stderr.write(`[cluster] ${line}\n`) : () => {});
  const binDir = await ensureClusterBinaries();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mco-k8s-'));
  const supervisor = new ProcessSupervisor(dir);
  const plane = await startControlPlane({
    binDir, dir, supervisor, log,
    apiserverArgs: options.apiserverArgs, controllerManagerArgs: options.controllerManagerArgs,
  });
  const kc = new KubeConfig();
  kc.loadFromFile(plane.kubeconfigPath);
  const rest = new KubeRest(kc);
  const nodes = new FakeNodes(rest, log);
  const podsDir = path.join(dir, 'pods');
  mkdirSync(podsDir);
  const kubelet = new Kubelet({
    kc, rest, supervisor, dir: podsDir,
    images: options.images ?? projectImages(REPO_ROOT),
    apiserverPort: plane.apiserverPort,
    node: (name) => nodes.resources(name),
    hostPath: options.hostPath ?? ((p) => p),
    claimDir: options.claimDir ?? ((ns, claim) => path.join(dir, 'claims', ns, claim)),
    log,
  });

  let stopping: Promise<void> | undefined;
  const stop = () => (stopping ??= stopAll());
  const stopAll = async () => {
    nodes.stop();
    await kubelet.stop();
    await rest.close();
    await supervisor.stopAll([...plane.processes].reverse(), 10_000);
    if (!process.env.MIDI_CORPUS_KEEP_CLUSTER) rmSync(dir, { recursive: true, force: true });
    else log(`kept cluster directory ${dir}`);
  };

  const waitFor = async (what: string, probe: () => Promise<boolean>, timeoutMs = 60_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!(await probe().catch(() => false))) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(200);
    }
  };
  const exists = async (urlPath: string) => {
    try {
      await rest.request('GET', urlPath);
      return true;
    } catch (err) {
      if (isStatus(err, 404)) return false;
      throw err;
    }
  };

  try {
    await kubelet.start();
    const t = Date.now();
    // The service-account and root-CA controllers are working once these exist in "default".
    await waitFor('the default ServiceAccount and kube-root-ca.crt', async () =>
      (await exists('/api/v1/namespaces/default/serviceaccounts/default'))
      && (await exists('/api/v1/namespaces/default/configmaps/kube-root-ca.crt')));
    log(`controllers ready in ${Date.now() - t} ms`);
    for (const node of options.nodes ?? [{ name: 'node-1' }]) await nodes.add(node);
  } catch (err) {
    await stop();
    throw err;
  }

  const env = { ...process.env, KUBECONFIG: plane.kubeconfigPath };
  const evictPod = async (namespace: string, name: string) => {
    await rest.request('POST', `/api/v1/namespaces/${namespace}/pods/${name}/eviction`, {
      apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name, namespace },
    });
  };

  return {
    dir,
    kubeconfigPath: plane.kubeconfigPath,
    kc,
    apiserverUrl: plane.apiserverUrl,
    binDir,
    async addNode(spec) {
      await nodes.add(spec);
      kubelet.resync();
    },
    async removeNode(name) {
      await nodes.remove(name);
      await kubelet.killNodePods(name);
    },
    async drainNode(name) {
      await nodes.cordon(name);
      const pods = await rest.request<{ items: { metadata: { namespace: string; name: string } }[] }>('GET',
        `/api/v1/pods?fieldSelector=spec.nodeName%3D${encodeURIComponent(name)}`);
      for (const pod of pods.items) await evictPod(pod.metadata.namespace, pod.metadata.name);
    },
    evictPod,
    podLogs: (namespace, name, container) => kubelet.podLogs(namespace, name, container),
    async createNamespace(name) {
      await rest.request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
      await waitFor(`the default ServiceAccount in ${name}`, () =>
        exists(`/api/v1/namespaces/${name}/serviceaccounts/default`));
    },
    kubectl: (args, input) => run('kubectl', args, env, input),
    helm: (args) => run(path.join(binDir, 'helm'), args, env),
    pids: () => supervisor.pids(),
    stop,
  };
}
