import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { REPO_ROOT } from './binaries.js';
import { isStatus, type KubeRest } from './kube-rest.js';
import { Ledger, teardown } from './ledger.js';
import { createNodeNetns, nodeAddress, nodeNetnsName, podCidr, type ClusterNetwork } from './network.js';
import {
  CLUSTER_POD_CIDR,
  cniConfig,
  containerdConfig,
  kubeletConfig,
  kubeProxyConfig,
  parseBytes,
  parseMillis,
  reservedFor,
  type NodeFacts,
} from './node-config.js';
import { importImage } from './node-images.js';
import { issueNodeCerts, kubeconfig, type ClusterPki, type NodeCerts } from './pki.js';
import type { ProcessSupervisor, SupervisedProcess } from './processes.js';

const exec = promisify(execFile);
const ENTER = path.join(REPO_ROOT, 'test', 'cluster', 'node', 'node-enter.sh');

export interface NodeSpec {
  name: string;
  /** Allocatable CPU ("2", "1500m"), at most the machine's CPUs (every node sees them all). Default: all of them. */
  cpu?: string;
  /** Allocatable memory. Default "4Gi". */
  memory?: string;
  /** Pod capacity. Default 110, as a kubelet's. */
  pods?: number;
  labels?: Record<string, string>;
  taints?: Array<{ key: string; value?: string; effect: string }>;
}

/** What every node of one cluster shares. */
export interface NodeContext {
  binDir: string;
  clusterDir: string;
  net: ClusterNetwork;
  pki: ClusterPki;
  apiserverUrl: string;
  serviceCidr: string;
  supervisor: ProcessSupervisor;
  rest: KubeRest;
  sandboxImage: string;
  log: (line: string) => void;
}

/** Seconds from one step of a node's start to the next, for the docs' figures and the verbose log. */
export interface NodeTimings {
  namespacesMs: number;
  containerdMs: number;
  imagesMs: number;
  readyMs: number;
  totalMs: number;
}

/** The machine as every node sees it: cAdvisor's capacity is the whole machine's. */
export function machineCapacity(): { cpuMillis: number; memoryBytes: number } {
  const memTotal = /MemTotal:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'));
  if (!memTotal) throw new Error('no MemTotal in /proc/meminfo');
  return { cpuMillis: os.cpus().length * 1000, memoryBytes: Number(memTotal[1]) * 1024 };
}

interface CgroupHierarchy {
  /** Where the hierarchy is mounted on the host, e.g. /sys/fs/cgroup/memory. */
  mount: string;
  /** This process's cgroup in it, relative to the mount. */
  current: string;
  controllers: string;
}

/** Every cgroup hierarchy mounted here (v1 controllers, name=systemd, the v2 "unified" one) and our place in each. */
function cgroupHierarchies(): CgroupHierarchy[] {
  const own = new Map<string, string>();
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n')) {
    const [, controllers = '', current = '/'] = line.split(':');
    own.set(controllers, current);
  }
  const out: CgroupHierarchy[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').trim().split('\n')) {
    const fields = line.split(' ');
    const sep = fields.indexOf('-');
    const fstype = fields[sep + 1];
    const mount = fields[4] ?? '';
    const root = fields[3] ?? '/';
    if (fstype !== 'cgroup' && fstype !== 'cgroup2') continue;
    const controllers =
      fstype === 'cgroup2'
        ? ''
        : (fields[sep + 3] ?? '')
            .split(',')
            .filter((o) => o !== 'rw' && o !== 'ro')
            .join(',');
    const current = own.get(controllers);
    if (current === undefined) continue;
    const relative = path.posix.relative(root, current);
    out.push({ mount, current: relative.startsWith('..') ? '/' : `/${relative}`, controllers });
  }
  if (!out.some((h) => h.controllers === 'freezer'))
    throw new Error('no cgroup v1 freezer hierarchy: cannot kill a node at once');
  return out;
}

function tail(file: string, lines = 25): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * A real Kubernetes node on this machine: its own network namespace on the cluster segment, its own mount, UTS and
 * cgroup namespaces (node/node-ns.sh), a cgroup per hierarchy holding all of it, and in it containerd (with runc
 * and the CNI plugins), the kubelet and kube-proxy in iptables mode.
 */
export class RealNode {
  readonly address: string;
  readonly podCidr: string;
  readonly netns: string;
  readonly dir: string;
  readonly containerdSocket: string;
  readonly timings: Partial<NodeTimings> = {};
  private readonly ledger: Ledger;
  private readonly logDir: string;
  private readonly cgroupsFile: string;
  private readonly cgroupDirs: string[] = [];
  /** The node's processes by role (anchor, containerd, kubelet, kube-proxy); each logs to logs/<role>.log. */
  private readonly processes = new Map<string, SupervisedProcess>();
  private gone = false;

  private constructor(
    private readonly ctx: NodeContext,
    readonly spec: NodeSpec,
    readonly index: number,
  ) {
    this.address = nodeAddress(ctx.net, index);
    this.podCidr = podCidr(index);
    this.dir = path.join(ctx.clusterDir, 'nodes', spec.name);
    this.logDir = path.join(this.dir, 'logs');
    this.containerdSocket = path.join(this.dir, 'containerd.sock');
    this.cgroupsFile = path.join(this.dir, 'cgroups');
    this.ledger = new Ledger(path.join(ctx.clusterDir, 'ledger', `node-${spec.name}.list`));
    this.netns = nodeNetnsName(ctx.net, spec.name);
  }

  /**
   * Starts the node and waits until its Node object is Ready; `images` (docker-archives) are imported first.
   * `linked` runs once the node's netns is up, before anything of the node runs: the place for routes to it.
   */
  static async start(
    ctx: NodeContext,
    spec: NodeSpec,
    index: number,
    images: string[],
    linked: (node: RealNode) => Promise<void>,
  ): Promise<RealNode> {
    const node = new RealNode(ctx, spec, index);
    try {
      await node.boot(images, linked);
    } catch (err) {
      await node.lose().catch(() => undefined);
      throw err;
    }
    return node;
  }

  get name(): string {
    return this.spec.name;
  }

  private async boot(images: string[], linked: (node: RealNode) => Promise<void>): Promise<void> {
    const { ctx, spec } = this;
    const t0 = Date.now();
    for (const sub of ['kubelet', 'pod-logs', 'cni', 'containerd', 'sysctl', 'logs', 'config']) {
      mkdirSync(path.join(this.dir, sub), { recursive: true });
    }
    const { facts, certs } = this.facts();
    this.writeConfigs(facts, certs);
    this.createCgroups();
    await createNodeNetns(ctx.net, this.netns, this.index, ctx.serviceCidr, this.ledger);
    await linked(this);

    this.spawn('anchor', [
      ENTER,
      'init',
      this.cgroupsFile,
      this.netns,
      this.dir,
      spec.name,
      this.podCidr,
      CLUSTER_POD_CIDR,
    ]);
    await this.waitFor('the node namespaces', 'anchor', async () =>
      readFileSync(this.logFile('anchor'), 'utf8').includes('ready'),
    );
    const t1 = Date.now();
    this.timings.namespacesMs = t1 - t0;

    this.inNode('containerd', ['containerd', '--config', path.join(this.dir, 'config', 'containerd.toml')]);
    await this.waitFor('containerd', 'containerd', async () => {
      await exec('ctr', ['--address', this.containerdSocket, 'version']);
      return true;
    });
    const t2 = Date.now();
    this.timings.containerdMs = t2 - t1;
    for (const archive of images) await this.importImage(archive);
    const t3 = Date.now();
    this.timings.imagesMs = t3 - t2;

    const labels = Object.entries(spec.labels ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    this.inNode('kubelet', [
      path.join(ctx.binDir, 'kubelet'),
      `--config=${path.join(this.dir, 'config', 'kubelet.json')}`,
      `--kubeconfig=${facts.kubeletKubeconfig}`,
      `--hostname-override=${spec.name}`,
      `--node-ip=${this.address}`,
      ...(labels ? [`--node-labels=${labels}`] : []),
      '--v=1',
    ]);
    this.inNode('kube-proxy', [
      path.join(ctx.binDir, 'kube-proxy'),
      `--config=${path.join(this.dir, 'config', 'kube-proxy.json')}`,
      '--v=1',
    ]);
    await this.waitFor(`node ${spec.name} to be Ready`, 'kubelet', () => this.ready(), 90_000);
    this.timings.readyMs = Date.now() - t3;
    this.timings.totalMs = Date.now() - t0;
    ctx.log(
      `node ${spec.name} Ready in ${this.timings.totalMs} ms (namespaces ${this.timings.namespacesMs}, ` +
        `containerd ${this.timings.containerdMs}, images ${this.timings.imagesMs}, kubelet to Ready ${this.timings.readyMs})`,
    );
  }

  private facts(): { facts: NodeFacts; certs: NodeCerts } {
    const { ctx, spec } = this;
    const pkiDir = path.dirname(ctx.pki.caCert);
    const certs = issueNodeCerts(pkiDir, spec.name, this.address);
    const capacity = machineCapacity();
    const reserved = reservedFor(capacity, {
      cpuMillis: spec.cpu === undefined ? capacity.cpuMillis : parseMillis(spec.cpu),
      memoryBytes: parseBytes(spec.memory ?? '4Gi'),
    });
    const facts: NodeFacts = {
      name: spec.name,
      address: this.address,
      podCidr: this.podCidr,
      dir: this.dir,
      containerdSocket: this.containerdSocket,
      sandboxImage: ctx.sandboxImage,
      kubeletKubeconfig: path.join(this.dir, 'config', 'kubelet.kubeconfig'),
      kubeProxyKubeconfig: path.join(this.dir, 'config', 'kube-proxy.kubeconfig'),
      caCert: ctx.pki.caCert,
      servingCert: certs.servingCert,
      servingKey: certs.servingKey,
      reserved,
      taints: spec.taints ?? [],
      maxPods: spec.pods ?? 110,
    };
    return { facts, certs };
  }

  private writeConfigs(facts: NodeFacts, { clientCert, clientKey }: NodeCerts): void {
    const { ctx } = this;
    const config = (f: string) => path.join(this.dir, 'config', f);
    writeFileSync(
      facts.kubeletKubeconfig,
      kubeconfig(ctx.pki.caCert, ctx.apiserverUrl, `system:node:${facts.name}`, clientCert, clientKey),
      { mode: 0o600 },
    );
    writeFileSync(
      facts.kubeProxyKubeconfig,
      kubeconfig(ctx.pki.caCert, ctx.apiserverUrl, 'system:kube-proxy', ctx.pki.kubeProxyCert, ctx.pki.kubeProxyKey),
      { mode: 0o600 },
    );
    writeFileSync(config('containerd.toml'), containerdConfig(facts));
    writeFileSync(path.join(this.dir, 'cni', '10-pods.conflist'), cniConfig(facts));
    writeFileSync(config('kubelet.json'), JSON.stringify(kubeletConfig(facts), null, 2));
    writeFileSync(config('kube-proxy.json'), JSON.stringify(kubeProxyConfig(facts), null, 2));
    writeFileSync(path.join(this.dir, 'resolv.conf'), '# no DNS server in the test cluster: use ClusterIP addresses\n');
  }

  /**
   * A cgroup named after the cluster slot and the node in every hierarchy, under this process's own cgroup there
   * (so whatever limits the test process runs under hold for its nodes too). cpuset needs cpus and mems set before a
   * process may join: copied from the parent.
   */
  private createCgroups(): void {
    const leaf = `mco${this.ctx.net.slot}-${this.spec.name}`;
    for (const h of cgroupHierarchies()) {
      const parent = path.join(h.mount, h.current);
      const dir = path.join(parent, leaf);
      this.ledger.record('cgroup', dir);
      mkdirSync(dir, { recursive: true });
      if (h.controllers === 'cpuset') {
        for (const f of ['cpuset.cpus', 'cpuset.mems'])
          writeFileSync(path.join(dir, f), readFileSync(path.join(parent, f)));
      }
      this.cgroupDirs.push(dir);
    }
    writeFileSync(this.cgroupsFile, `${this.cgroupDirs.join('\n')}\n`);
  }

  private logFile(name: string): string {
    return path.join(this.logDir, `${name}.log`);
  }

  private spawn(name: string, args: string[]): SupervisedProcess {
    const proc = this.ctx.supervisor.spawn(`${this.spec.name}/${name}`, '/bin/sh', args, {
      env: { PATH: process.env.PATH, HOME: process.env.HOME },
      logFile: this.logFile(name),
      cwd: this.dir,
    });
    this.processes.set(name, proc);
    return proc;
  }

  /** A process of the node: in its cgroups and all of its namespaces. */
  private inNode(name: string, command: string[]): SupervisedProcess {
    const anchor = this.processes.get('anchor');
    if (!anchor) throw new Error('the node has no anchor process');
    return this.spawn(name, [ENTER, 'exec', this.cgroupsFile, String(anchor.pid), ...command]);
  }

  /** Polls `probe` until it holds, failing early (with the end of the role's log) if the role's process exits. */
  private async waitFor(what: string, role: string, probe: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
    const proc = this.processes.get(role);
    if (!proc) throw new Error(`node ${this.spec.name} has no ${role}`);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!proc.running())
        throw new Error(`${proc.name} exited before ${what}; its log ends with:\n${tail(this.logFile(role))}`);
      if (await probe().catch(() => false)) return;
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for ${what}; ${proc.name}'s log ends with:\n${tail(this.logFile(role))}`);
      await sleep(100);
    }
  }

  private async ready(): Promise<boolean> {
    try {
      const node = await this.ctx.rest.request<{ status?: { conditions?: Array<{ type: string; status: string }> } }>(
        'GET',
        `/api/v1/nodes/${this.spec.name}`,
      );
      return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
    } catch (err) {
      if (isStatus(err, 404)) return false;
      throw err;
    }
  }

  async importImage(archive: string): Promise<void> {
    if (this.gone) throw new Error(`node ${this.spec.name} is gone`);
    await importImage(this.containerdSocket, archive);
  }

  /** Every process of the node (kubelet, containerd, shims, containers, the anchor), from its cgroup tree. */
  pids(): number[] {
    const pidsDir = this.cgroupDirs.find((d) => d.includes('/pids/'));
    if (!pidsDir || !existsSync(pidsDir)) return [];
    const out: number[] = [];
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        if (entry.isDirectory()) walk(path.join(dir, entry.name));
      }
      for (const line of readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n'))
        if (line) out.push(Number(line));
    };
    walk(pidsDir);
    return out;
  }

  /**
   * A scale-down's end, after the drain: kube-proxy and the kubelet stop on SIGTERM (the kubelet leaves containers
   * as they are), then everything left of the node goes at once and its namespaces and cgroups are removed.
   */
  async stop(graceMs = 10_000): Promise<void> {
    if (this.gone) return;
    for (const name of ['kube-proxy', 'kubelet']) {
      const proc = this.processes.get(name);
      if (proc) await this.ctx.supervisor.terminate(proc, graceMs);
    }
    await this.lose();
  }

  /** The machine vanishes: every process of the node SIGKILLed in one instant (frozen first), then its namespaces go. */
  async lose(): Promise<void> {
    if (this.gone) return;
    this.gone = true;
    await teardown([this.ledger.file]);
    await Promise.all([...this.processes.values()].map((p) => p.exited));
  }

  /** Frees the node's disk (containerd's snapshots, the kubelet's volumes) once it is gone. */
  removeFiles(): void {
    if (!this.gone) throw new Error(`node ${this.spec.name} is still running`);
    rmSync(this.dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
  }
}
