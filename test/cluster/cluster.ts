import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeConfig } from '@kubernetes/client-node';
import { ensureClusterBinaries, ensureNodeRuntime } from './binaries.js';
import { startControlPlane } from './control-plane.js';
import { drainNode, type DrainOptions } from './drain.js';
import { isStatus, KubeRest } from './kube-rest.js';
import { Ledger, ledgerFiles, teardown } from './ledger.js';
import { addPodRoute, claimSlot, createSegment, deletePodRoute, isolateNode } from './network.js';
import { RealNode, type NodeContext, type NodeSpec } from './node.js';
import type { NodeImage } from './node-images.js';
import { projectImage } from './project-image.js';
import { SERVICE_CLUSTER_IP_RANGE } from './pki.js';
import { ProcessSupervisor } from './processes.js';

export type { NodeSpec } from './node.js';

export interface ClusterOptions {
  /** Nodes started with the cluster. Default: two workers, `node-1` and `node-2`, each with NodeSpec's defaults. */
  nodes?: NodeSpec[];
  /** docker-archives imported into every node, those started later included: the images its pods can run. */
  images?: string[];
  /** The sandbox image every node's containerd runs pods in. Default: the project's (`image/build.sh --pause`). */
  pauseImage?: NodeImage;
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

/** A server of the host's, reachable from pods as a Service: `clusterIP:port`. */
export interface HostService {
  clusterIP: string;
  port: number;
  /** The Service's DNS name, for the record: no DNS server runs in these clusters, so URLs must use clusterIP. */
  dnsName: string;
}

export interface TestCluster {
  /** Everything of this cluster: kubeconfig, PKI, component logs (logs/), each node's files (nodes/<name>/). */
  dir: string;
  kubeconfigPath: string;
  /** An admin KubeConfig (system:masters). */
  kc: KubeConfig;
  /** https://<hostAddress>:<port> */
  apiserverUrl: string;
  /**
   * The host's address on the cluster's network segment: the API server listens here, and so must any server the
   * tests run outside the cluster for pods to reach (a Postgres: listen on this address, then exposeHostService).
   */
  hostAddress: string;
  /** The cluster segment as a CIDR (hostAddress's network): where the nodes, and so the pods' traffic, come from. */
  hostNetwork: string;
  binDir: string;
  /** Names of the nodes running now. */
  nodeNames(): string[];
  /** Starts a real node (kubelet, containerd, kube-proxy in its own namespaces) and waits until it is Ready. */
  addNode(spec: NodeSpec): Promise<void>;
  /** An autoscaler's scale-down: drains the node (PDBs respected), stops it, deletes its Node object. */
  removeNode(name: string, drain?: DrainOptions): Promise<void>;
  /** Cordons the node and evicts its pods through the Eviction API, retrying while a PDB refuses (429), as
   *  `kubectl drain --ignore-daemonsets` does; returns when the evicted pods are deleted. */
  drainNode(name: string, options?: DrainOptions): Promise<void>;
  /** The machine vanishes: every process of the node SIGKILLed at once. The Node object stays (NotReady after the
   *  node-monitor grace period), for the test to delete as a cloud's node controller would. */
  loseNode(name: string): Promise<void>;
  /** The node is cut off the network, silently (no reset, no refusal), its processes running on: a partition. */
  partitionNode(name: string): Promise<void>;
  /** Evicts one pod through the Eviction API, once (a PDB's refusal is the KubeApiError with status 429). */
  evictPod(namespace: string, name: string): Promise<void>;
  /** A pod's log through the API server (and so the kubelet): one container's, or all containers' in spec order. */
  podLogs(namespace: string, name: string, container?: string): Promise<string>;
  /** Imports a docker-archive into every node's containerd, and into every node started later. */
  importImage(archive: string): Promise<void>;
  /** A selector-less Service with an EndpointSlice pointing at hostAddress:port, as users expose an external DB. */
  exposeHostService(namespace: string, name: string, port: number): Promise<HostService>;
  /** Creates a namespace and waits until its default ServiceAccount exists (pods are refused before that). */
  createNamespace(name: string): Promise<void>;
  kubectl(args: string[], input?: string): Promise<CommandResult>;
  helm(args: string[]): Promise<CommandResult>;
  /** Every process of the cluster now: control plane, and each node's whole cgroup tree (down to containers). */
  pids(): number[];
  /** Every process of one node now (anchor, containerd, kubelet, kube-proxy, shims, containers). */
  nodePids(name: string): number[];
  /** Ends every process, removes every namespace, cgroup and interface and the cluster's directory. */
  stop(): Promise<void>;
}

const DEFAULT_NODES: NodeSpec[] = [{ name: 'node-1' }, { name: 'node-2' }];

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
 * Starts a real control plane (etcd, kube-apiserver with Node+RBAC authorization, kube-controller-manager,
 * kube-scheduler) on the host's address of a network segment of its own, and real nodes on it. Call `stop()` when
 * done: it ends every process of the cluster, removes its namespaces and cgroups and deletes its directory (set
 * MIDI_CORPUS_KEEP_CLUSTER=1 to keep the directory for a post-mortem).
 */
export async function startCluster(options: ClusterOptions = {}): Promise<TestCluster> {
  const log =
    options.log ??
    (process.env.MIDI_CORPUS_CLUSTER_VERBOSE
      ? (line: string) => process.stderr.write(`[cluster] ${line}\n`)
      : () => {});
  const t0 = Date.now();
  const [binDir, pause] = await Promise.all([
    ensureClusterBinaries(),
    ensureNodeRuntime().then(() => options.pauseImage ?? projectImage('pause')),
  ]);
  log(`binaries, node runtime and pause image ready in ${Date.now() - t0} ms`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mco-k8s-'));
  const ledgerDir = path.join(dir, 'ledger');
  const ledger = new Ledger(path.join(ledgerDir, 'cluster.list'));
  const supervisor = new ProcessSupervisor(dir, ledgerDir);
  const images = [pause.archive, ...(options.images ?? [])];
  /** Running nodes (Ready once), and every node whose netns is up (starting ones too), for the pod routes. */
  const nodes = new Map<string, RealNode>();
  const networked = new Map<string, RealNode>();
  let nextIndex = 1;
  let rest: KubeRest | undefined;
  let controlPlane: Awaited<ReturnType<typeof startControlPlane>> | undefined;

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      await Promise.all([...nodes.values()].map((n) => n.lose()));
      await rest?.close();
      await supervisor.stopAll([...(controlPlane?.processes ?? [])].reverse(), 10_000);
      try {
        // Every ledger, not only the cluster's: a node still starting when stop() came has one too.
        await teardown(ledgerFiles(ledgerDir));
      } finally {
        // Even when teardown reports a leftover (the error says what), the directory's hundreds of MB go.
        if (!process.env.MIDI_CORPUS_KEEP_CLUSTER)
          rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
        else log(`kept cluster directory ${dir}`);
      }
    })());

  try {
    const { slot, claim } = await claimSlot(ledgerDir);
    ledger.record('dir', claim);
    const net = await createSegment(slot, ledger);
    log(`cluster slot ${slot}: host address ${net.hostAddress}`);
    controlPlane = await startControlPlane({
      binDir,
      dir,
      supervisor,
      log,
      hostAddress: net.hostAddress,
      apiserverArgs: options.apiserverArgs,
      controllerManagerArgs: options.controllerManagerArgs,
    });
    const plane = controlPlane;
    const kc = new KubeConfig();
    kc.loadFromFile(plane.kubeconfigPath);
    const api = new KubeRest(kc);
    rest = api;

    const waitFor = async (what: string, probe: () => Promise<boolean>, timeoutMs = 60_000) => {
      const deadline = Date.now() + timeoutMs;
      while (!(await probe().catch(() => false))) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await sleep(200);
      }
    };
    const exists = async (urlPath: string) => {
      try {
        await api.request('GET', urlPath);
        return true;
      } catch (err) {
        if (isStatus(err, 404)) return false;
        throw err;
      }
    };

    const ctx: NodeContext = {
      binDir,
      clusterDir: dir,
      net,
      pki: plane.pki,
      apiserverUrl: plane.apiserverUrl,
      serviceCidr: SERVICE_CLUSTER_IP_RANGE,
      supervisor,
      rest: api,
      sandboxImage: pause.ref,
      log,
    };
    const addNode = async (spec: NodeSpec) => {
      if (nodes.has(spec.name)) throw new Error(`node ${spec.name} already exists`);
      // The pod network across nodes: a route to each other node's pod /24 through that node, both ways, set as
      // soon as the new node's netns is up and before it runs a pod. A node joins `networked` before it links, so of
      // two nodes starting at once the later one sees the earlier and links the pair.
      const node = await RealNode.start(ctx, spec, nextIndex++, images, async (fresh) => {
        const others = [...networked.values()];
        networked.set(fresh.name, fresh);
        for (const other of others) {
          await addPodRoute(other.netns, fresh.podCidr, fresh.address);
          await addPodRoute(fresh.netns, other.podCidr, other.address);
        }
      }).catch(async (err: unknown) => {
        await unlink(spec.name);
        throw err;
      });
      nodes.set(spec.name, node);
    };
    const unlink = async (name: string) => {
      const node = networked.get(name);
      networked.delete(name);
      if (node) for (const other of networked.values()) await deletePodRoute(other.netns, node.podCidr);
    };
    const takeNode = async (name: string) => {
      const node = nodes.get(name);
      if (!node) throw new Error(`node ${name} is not one of this cluster's running nodes`);
      nodes.delete(name);
      await unlink(name);
      return node;
    };

    const t = Date.now();
    // The service-account and root-CA controllers are working once these exist in "default".
    await waitFor(
      'the default ServiceAccount and kube-root-ca.crt',
      async () =>
        (await exists('/api/v1/namespaces/default/serviceaccounts/default')) &&
        (await exists('/api/v1/namespaces/default/configmaps/kube-root-ca.crt')),
    );
    log(`controllers ready in ${Date.now() - t} ms`);
    const tn = Date.now();
    await Promise.all((options.nodes ?? DEFAULT_NODES).map(addNode));
    log(`nodes ready in ${Date.now() - tn} ms; cluster started in ${Date.now() - t0} ms`);

    const env = { ...process.env, KUBECONFIG: plane.kubeconfigPath };
    const evictPod = async (namespace: string, name: string) => {
      await api.request('POST', `/api/v1/namespaces/${namespace}/pods/${name}/eviction`, {
        apiVersion: 'policy/v1',
        kind: 'Eviction',
        metadata: { name, namespace },
      });
    };
    const drain = (name: string, drainOptions?: DrainOptions) => drainNode(api, name, { log, ...drainOptions });

    return {
      dir,
      kubeconfigPath: plane.kubeconfigPath,
      kc,
      apiserverUrl: plane.apiserverUrl,
      hostAddress: net.hostAddress,
      hostNetwork: net.cidr,
      binDir,
      nodeNames: () => [...nodes.keys()],
      addNode,
      async removeNode(name, drainOptions) {
        await drain(name, drainOptions);
        const node = await takeNode(name);
        await node.stop();
        node.removeFiles();
        await api.request('DELETE', `/api/v1/nodes/${name}`).catch((err: unknown) => {
          if (!isStatus(err, 404)) throw err;
        });
      },
      drainNode: drain,
      async loseNode(name) {
        await (await takeNode(name)).lose();
      },
      async partitionNode(name) {
        const node = nodes.get(name);
        if (!node) throw new Error(`node ${name} is not one of this cluster's running nodes`);
        await isolateNode(net, node.index);
      },
      evictPod,
      async podLogs(namespace, name, container) {
        const logOf = (c: string) =>
          api.requestText('GET', `/api/v1/namespaces/${namespace}/pods/${name}/log?container=${encodeURIComponent(c)}`);
        if (container !== undefined) return logOf(container);
        const pod = await api.request<{ spec: { containers: Array<{ name: string }> } }>(
          'GET',
          `/api/v1/namespaces/${namespace}/pods/${name}`,
        );
        return (await Promise.all(pod.spec.containers.map((c) => logOf(c.name)))).join('');
      },
      async importImage(archive) {
        images.push(archive);
        await Promise.all([...nodes.values()].map((n) => n.importImage(archive)));
      },
      async exposeHostService(namespace, name, port) {
        const service = await api.request<{ spec: { clusterIP: string } }>(
          'POST',
          `/api/v1/namespaces/${namespace}/services`,
          {
            apiVersion: 'v1',
            kind: 'Service',
            metadata: { name },
            spec: { ports: [{ protocol: 'TCP', port, targetPort: port }] },
          },
        );
        await api.request('POST', `/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices`, {
          apiVersion: 'discovery.k8s.io/v1',
          kind: 'EndpointSlice',
          metadata: {
            name: `${name}-host`,
            // The service-name label ties the slice to the Service; managed-by keeps the endpointslice controller off it.
            labels: {
              'kubernetes.io/service-name': name,
              'endpointslice.kubernetes.io/managed-by': 'midi-corpus-test-harness',
            },
          },
          addressType: 'IPv4',
          endpoints: [{ addresses: [net.hostAddress], conditions: { ready: true } }],
          ports: [{ name: '', protocol: 'TCP', port }],
        });
        return { clusterIP: service.spec.clusterIP, port, dnsName: `${name}.${namespace}.svc.cluster.local` };
      },
      async createNamespace(name) {
        await api.request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
        await waitFor(`the default ServiceAccount in ${name}`, () =>
          exists(`/api/v1/namespaces/${name}/serviceaccounts/default`),
        );
      },
      kubectl: (args, input) => run('kubectl', args, env, input),
      helm: (args) => run(path.join(binDir, 'helm'), args, env),
      nodePids: (name) => nodes.get(name)?.pids() ?? [],
      pids: () => [...new Set([...supervisor.pids(), ...[...nodes.values()].flatMap((n) => n.pids())])],
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
