import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { AppsV1Api, CoreV1Api, PolicyV1Api, type V1Container, type V1Pod } from '@kubernetes/client-node';
import { startCluster } from './cluster.js';
import { ledgerFiles } from './ledger.js';
import { BUSYBOX_IMAGE, busyboxImage } from './node-images.js';
import { describeWithCluster, eventually, useCluster } from './vitest.js';

/** Running, that is: a zombie has exited (only its exit status waits for a parent, init here, to collect it). */
function alive(pid: number): boolean {
  try {
    const state = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** What a cluster's ledgers say it made on the machine, by kind. */
function ledgerEntries(dir: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const file of ledgerFiles(path.join(dir, 'ledger'))) {
    for (const line of readFileSync(file, 'utf8').split('\n').filter(Boolean)) {
      const [kind = '', value = ''] = line.split(' ');
      (out[kind] ??= []).push(value);
    }
  }
  return out;
}

const sleeper = (name = 'main'): V1Container => ({
  name,
  image: BUSYBOX_IMAGE,
  imagePullPolicy: 'Never',
  command: ['/bin/sh', '-c', 'trap "exit 0" TERM; while :; do sleep 0.2; done'],
  resources: { requests: { cpu: '100m', memory: '16Mi' } },
});

describeWithCluster('test cluster on real nodes: nodes come and go', () => {
  // Small nodes (1 CPU each), so that a pod asking for more waits for a bigger one. A lost node is noticed after
  // 20 s instead of the default 50 s.
  const cluster = useCluster({
    nodes: [
      { name: 'node-1', cpu: '1' },
      { name: 'node-2', cpu: '1' },
    ],
    controllerManagerArgs: ['--node-monitor-grace-period=20s'],
  });
  const core = () => cluster().kc.makeApiClient(CoreV1Api);
  const apps = () => cluster().kc.makeApiClient(AppsV1Api);
  let busyboxArchive = '';

  beforeAll(async () => {
    busyboxArchive = (await busyboxImage()).archive;
    await cluster().importImage(busyboxArchive);
  }, 120_000);

  const podsOn = async (ns: string, node: string): Promise<V1Pod[]> =>
    (await core().listNamespacedPod({ namespace: ns, fieldSelector: `spec.nodeName=${node}` })).items;
  const nodeGone = async (name: string) =>
    core()
      .readNode({ name })
      .then(
        () => false,
        () => true,
      );

  it('schedules by requests: a pod too big for every node waits until a bigger node is added (scale-up)', async () => {
    await cluster().createNamespace('scale');
    await core().createNamespacedPod({
      namespace: 'scale',
      body: {
        metadata: { name: 'big' },
        spec: {
          restartPolicy: 'Never',
          containers: [{ ...sleeper(), resources: { requests: { cpu: '1500m', memory: '16Mi' } } }],
        },
      },
    });
    await eventually('the scheduler to report big as unschedulable', async () => {
      const pod = await core().readNamespacedPod({ namespace: 'scale', name: 'big' });
      return pod.status?.conditions?.some((c) => c.type === 'PodScheduled' && c.reason === 'Unschedulable');
    });
    const t = Date.now();
    await cluster().addNode({ name: 'node-big' });
    console.log(`addNode (start → Ready, busybox imported): ${Date.now() - t} ms`);
    const pod = await eventually('big to run', async () => {
      const p = await core().readNamespacedPod({ namespace: 'scale', name: 'big' });
      return p.status?.phase === 'Running' ? p : undefined;
    });
    expect(pod.spec?.nodeName).toBe('node-big');
    await core().deleteNamespacedPod({ namespace: 'scale', name: 'big' });
    await cluster().removeNode('node-big');
    expect(await nodeGone('node-big')).toBe(true);
    expect(cluster().nodeNames().sort()).toEqual(['node-1', 'node-2']);
  });

  it('drains a node as an autoscaler scale-down does: PDB respected (429 → retry), DaemonSet pods left, then removed', async () => {
    await cluster().createNamespace('drain');
    await cluster().addNode({ name: 'node-drain', labels: { pool: 'drain' } });
    const labels = { app: 'web' };
    await apps().createNamespacedDeployment({
      namespace: 'drain',
      body: {
        metadata: { name: 'web' },
        spec: {
          replicas: 2,
          selector: { matchLabels: labels },
          template: {
            metadata: { labels },
            spec: { nodeSelector: { pool: 'drain' }, terminationGracePeriodSeconds: 5, containers: [sleeper()] },
          },
        },
      },
    });
    await apps().createNamespacedDaemonSet({
      namespace: 'drain',
      body: {
        metadata: { name: 'agent' },
        spec: {
          selector: { matchLabels: { app: 'agent' } },
          template: {
            metadata: { labels: { app: 'agent' } },
            spec: { nodeSelector: { pool: 'drain' }, containers: [sleeper()] },
          },
        },
      },
    });
    await cluster()
      .kc.makeApiClient(PolicyV1Api)
      .createNamespacedPodDisruptionBudget({
        namespace: 'drain',
        body: {
          metadata: { name: 'web' },
          spec: { minAvailable: 1, selector: { matchLabels: labels } },
        },
      });
    const ready = (p: V1Pod) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
    await eventually('both web pods and the agent Ready on node-drain', async () => {
      const pods = await podsOn('drain', 'node-drain');
      return pods.filter(ready).length === 3;
    });
    await cluster().addNode({ name: 'node-spare', labels: { pool: 'drain' } });

    const lines: string[] = [];
    await cluster().drainNode('node-drain', { retryMs: 1000, log: (l) => lines.push(l) });
    // Two web pods, at most one may be disrupted: the second eviction waited for the first one's replacement.
    expect(lines.some((l) => l.includes('refused (disruption budget)'))).toBe(true);
    expect((await core().readNode({ name: 'node-drain' })).spec?.unschedulable).toBe(true);
    const left = await podsOn('drain', 'node-drain');
    expect(left.map((p) => p.metadata?.labels?.app)).toEqual(['agent']);
    await eventually(
      'both web pods Ready on node-spare',
      async () =>
        (await podsOn('drain', 'node-spare')).filter((p) => p.metadata?.labels?.app === 'web' && ready(p)).length === 2,
    );

    await cluster().removeNode('node-drain');
    expect(await nodeGone('node-drain')).toBe(true);
    await apps().deleteNamespacedDeployment({ namespace: 'drain', name: 'web' });
    await apps().deleteNamespacedDaemonSet({ namespace: 'drain', name: 'agent' });
    await cluster().removeNode('node-spare');
  });

  it('loses a node: every process of it (kubelet, containerd, shims, containers) dies at once, its Node object stays', async () => {
    await cluster().createNamespace('lost');
    await cluster().addNode({ name: 'node-lost' });
    await core().createNamespacedPod({
      namespace: 'lost',
      body: {
        metadata: { name: 'doomed' },
        spec: { nodeName: 'node-lost', restartPolicy: 'Never', containers: [sleeper()] },
      },
    });
    await eventually(
      'doomed to run',
      async () => (await core().readNamespacedPod({ namespace: 'lost', name: 'doomed' })).status?.phase === 'Running',
    );
    const pids = cluster().nodePids('node-lost');
    const commands = pids.map((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] ?? '';
      } catch {
        return '';
      }
    });
    for (const part of [
      'kubelet',
      'kube-proxy',
      'containerd',
      'containerd-shim-runc-v2',
      '/pause',
      '/bin/sh',
      'sleep',
    ]) {
      expect(
        commands.some((c) => c.endsWith(part)),
        `a ${part} process in the node's cgroup`,
      ).toBe(true);
    }

    await cluster().loseNode('node-lost');
    expect(pids.filter(alive)).toEqual([]);
    const lostNetns = ledgerEntries(cluster().dir).netns?.find((n) => n.endsWith('-node-lost'));
    expect(lostNetns).toBeDefined();
    expect(existsSync(`/run/netns/${lostNetns}`)).toBe(false);
    // The node-lifecycle controller sets Ready=Unknown in one update and adds the taint in a later one.
    const unknown = await eventually(
      'the node-lifecycle controller to mark node-lost Unknown and taint it unreachable',
      async () => {
        const node = await core().readNode({ name: 'node-lost' });
        const readyCondition = node.status?.conditions?.find((c) => c.type === 'Ready');
        const tainted = node.spec?.taints?.some((t) => t.key === 'node.kubernetes.io/unreachable');
        return readyCondition?.status === 'Unknown' && tainted ? node : undefined;
      },
      90_000,
    );
    expect(unknown.spec?.taints?.map((t) => t.key)).toContain('node.kubernetes.io/unreachable');
    // As a cloud's node controller would once the machine is known gone; the pod GC then removes its pods.
    await core().deleteNode({ name: 'node-lost' });
  });

  it('runs a second cluster beside this one; its stop() leaves no process, namespace, cgroup, interface or port behind', async () => {
    const t = Date.now();
    const other = await startCluster({ nodes: [{ name: 'solo' }], images: [busyboxArchive] });
    console.log(`second cluster (one node, warm caches) started in ${Date.now() - t} ms`);
    let made: Record<string, string[]> = {};
    let pids: number[] = [];
    try {
      expect(other.hostAddress).not.toBe(cluster().hostAddress);
      const otherCore = other.kc.makeApiClient(CoreV1Api);
      await otherCore.createNamespacedPod({
        namespace: 'default',
        body: {
          metadata: { name: 'forever' },
          spec: { restartPolicy: 'Never', containers: [sleeper()] },
        },
      });
      await eventually(
        'forever to run',
        async () =>
          (await otherCore.readNamespacedPod({ namespace: 'default', name: 'forever' })).status?.phase === 'Running',
      );
      pids = other.pids();
      made = ledgerEntries(other.dir);
    } finally {
      await other.stop();
    }
    expect(pids.length).toBeGreaterThanOrEqual(10); // etcd, apiserver, kcm, scheduler; anchor, containerd, kubelet, kube-proxy, shim, pause, container
    expect(pids.filter(alive)).toEqual([]);
    expect(made.netns?.length).toBe(2); // the switch and the node
    for (const netns of made.netns ?? []) expect(existsSync(`/run/netns/${netns}`), netns).toBe(false);
    for (const cgroup of made.cgroup ?? []) expect(existsSync(cgroup), cgroup).toBe(false);
    for (const dir of made.dir ?? []) expect(existsSync(dir), dir).toBe(false);
    expect(existsSync(other.dir)).toBe(false);
    for (const link of made.link ?? []) expect(existsSync(`/sys/class/net/${link}`), link).toBe(false);
    // This file's cluster carried on meanwhile.
    expect(
      (await core().readNode({ name: 'node-1' })).status?.conditions?.find((c) => c.type === 'Ready')?.status,
    ).toBe('True');
  });
});
