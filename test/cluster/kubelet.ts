import {
  chmodSync, closeSync, existsSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, statSync,
} from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CoreV1Api, makeInformer, type Informer, type KubeConfig, type ObjectCache, type V1Container,
  type V1ContainerState, type V1ContainerStatus, type V1Pod, type V1PodCondition,
} from '@kubernetes/client-node';
import { containerArgv, lookupImage, type ImageTable, type LocalImage } from './images.js';
import type { KubeRest} from './kube-rest.js';
import { isStatus, STRATEGIC_MERGE_PATCH } from './kube-rest.js';
import { ContainerConfigError, resolveContainerEnv, type NodeResources, type ObjectLookup } from './pod-env.js';
import type { ProcessSupervisor, SupervisedProcess } from './processes.js';
import { containerMounts, mountOrder, prepareVolumes, type Mount } from './volumes.js';

/** Every pod runs on this address: processes share the machine's network, as with hostNetwork. */
export const POD_IP = '127.0.0.1';

/** The kubelet's limit on a termination message, in bytes. */
const MAX_TERMINATION_MESSAGE = 4096;
/** FallbackToLogsOnError takes at most this many lines (and bytes) from the end of the log. */
const FALLBACK_LOG_LINES = 80;
const FALLBACK_LOG_BYTES = 2048;
/** Delay before restarting a failed container (restartPolicy OnFailure/Always). Short: tests wait on it. */
export const RESTART_DELAY_MS = 1000;
/** Delay before retrying a container whose configuration or volumes could not be built. */
const CONFIG_RETRY_MS = 1000;

export interface KubeletOptions {
  kc: KubeConfig;
  rest: KubeRest;
  supervisor: ProcessSupervisor;
  /** Pods' directories (logs, volumes, termination messages) go under this directory. */
  dir: string;
  images: ImageTable;
  apiserverPort: number;
  /** The node's allocatable resources, or undefined when the node is not one of ours. */
  node(name: string): NodeResources | undefined;
  hostPath: (p: string) => string;
  claimDir: (namespace: string, claim: string) => string;
  log: (line: string) => void;
}

interface ContainerRun {
  spec: V1Container;
  image?: LocalImage;
  proc?: SupervisedProcess;
  state: V1ContainerState;
  lastState: V1ContainerState;
  restartCount: number;
  logFile: string;
  terminationFile: string;
}

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
const now = () => new Date();

/** Reads at most `max` bytes from the end of a file. */
function readTail(file: string, max: number): string {
  if (!existsSync(file)) return '';
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    const len = Math.min(size, max);
    const buf = Buffer.alloc(len);
    readSync(fd, buf, 0, len, size - len);
    return buf.toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** The pod-level conditions a kubelet owns. */
function podConditions(ready: boolean, initialized: boolean, reason?: string): V1PodCondition[] {
  const at = now();
  const cond = (type: string, status: boolean): V1PodCondition => ({
    type, status: status ? 'True' : 'False', lastTransitionTime: at,
    ...(!status && reason ? { reason } : {}),
  });
  return [
    cond('PodReadyToStartContainers', true),
    cond('Initialized', initialized),
    cond('ContainersReady', ready),
    cond('Ready', ready),
  ];
}

/**
 * Runs one pod's containers as local processes and reports their life to the API server, as the kubelet's pod
 * worker does: Pending while volumes and images are prepared, Running with Ready once every container started,
 * then Succeeded or Failed with exit codes and termination messages; on deletion, SIGTERM then SIGKILL after the
 * grace period, a final status, and the deletion of the pod object with grace 0.
 */
class PodWorker {
  private readonly containers: ContainerRun[] = [];
  private readonly initContainers: ContainerRun[] = [];
  private phase = 'Pending';
  private initialized = false;
  private deleting = false;
  private graceMs = 30_000;
  private finished = false;
  private startTime = now();
  private statusChain: Promise<void> = Promise.resolve();
  private readonly done: Promise<void>;
  /** Sleepers (restart back-off, config retries) to wake when the pod is deleted. */
  private readonly sleepers = new Set<() => void>();

  constructor(private pod: V1Pod, private readonly k: Kubelet, readonly podDir: string) {
    mkdirSync(path.join(podDir, 'termination'), { recursive: true });
    const run = (spec: V1Container): ContainerRun => ({
      spec,
      state: { waiting: { reason: 'ContainerCreating' } },
      lastState: {},
      restartCount: 0,
      logFile: path.join(podDir, `${spec.name}.log`),
      terminationFile: path.join(podDir, 'termination', spec.name),
    });
    for (const c of pod.spec?.initContainers ?? []) this.initContainers.push(run(c));
    for (const c of pod.spec?.containers ?? []) this.containers.push(run(c));
    this.done = this.run().catch((err: unknown) => this.k.log(`pod ${this.key}: worker failed: ${String(err)}`));
  }

  get key(): string {
    return `${this.pod.metadata?.namespace}/${this.pod.metadata?.name}`;
  }

  get isFinished(): boolean {
    return this.finished;
  }

  update(pod: V1Pod): void {
    this.pod = pod;
    if (pod.metadata?.deletionTimestamp && !this.deleting) {
      this.deleting = true;
      const grace = pod.metadata.deletionGracePeriodSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? 30;
      this.graceMs = grace * 1000;
      for (const c of [...this.initContainers, ...this.containers]) {
        if (c.proc?.running()) void this.k.supervisor.terminate(c.proc, this.graceMs);
      }
      this.wakeAll();
    }
  }

  /** Kills the processes at once, as when the machine under a node disappears; reports nothing more. */
  async kill(): Promise<void> {
    this.deleting = true;
    this.finished = true;
    for (const c of [...this.initContainers, ...this.containers]) c.proc?.signal('SIGKILL');
    this.wakeAll();
    await this.done;
  }

  private async run(): Promise<void> {
    this.startTime = now();
    this.report();
    if (!(await this.pullImages())) return;
    const volumes = await this.retryConfig(async () => {
      return await prepareVolumes(this.pod, {
        podDir: this.podDir,
        lookup: this.k.lookup,
        node: this.nodeResources(),
        podIP: POD_IP,
        requestToken: (audience, expirationSeconds) => this.k.requestToken(this.pod, audience, expirationSeconds),
        hostPath: this.k.options.hostPath,
        claimDir: this.k.options.claimDir,
      });
    }, [...this.initContainers, ...this.containers], 'ContainerCreating');
    if (!volumes) return this.finishDeleted();

    for (const c of this.initContainers) {
      for (;;) {
        const exit = await this.runContainer(c, volumes);
        if (exit === undefined || this.deleting) return this.finishDeleted();
        if (exit === 0) break;
        if ((this.pod.spec?.restartPolicy ?? 'Always') === 'Never') {
          this.phase = 'Failed';
          return this.finishTerminal();
        }
        await this.restartDelay(c);
      }
    }
    this.initialized = true;
    await Promise.all(this.containers.map(async (c) => {
      for (;;) {
        const exit = await this.runContainer(c, volumes);
        if (exit === undefined || this.deleting || !this.shouldRestart(exit)) return;
        await this.restartDelay(c);
      }
    }));
    if (this.deleting && !this.finished) return this.finishDeleted();
    if (this.finished) return;
    this.phase = this.containers.every((c) => c.state.terminated?.exitCode === 0) ? 'Succeeded' : 'Failed';
    await this.finishTerminal();
  }

  private shouldRestart(exitCode: number): boolean {
    const policy = this.pod.spec?.restartPolicy ?? 'Always';
    return policy === 'Always' || (policy === 'OnFailure' && exitCode !== 0);
  }

  private async restartDelay(c: ContainerRun): Promise<void> {
    c.lastState = c.state;
    c.state = { waiting: { reason: 'CrashLoopBackOff', message: `back-off ${RESTART_DELAY_MS}ms restarting failed container` } };
    c.restartCount++;
    this.report();
    await this.sleepUnlessDeleted(RESTART_DELAY_MS);
  }

  private async sleepUnlessDeleted(ms: number): Promise<void> {
    if (this.deleting) return;
    const abort = new AbortController();
    const wake = () => abort.abort();
    this.sleepers.add(wake);
    try {
      await sleep(ms, undefined, { signal: abort.signal }).catch(() => {});
    } finally {
      this.sleepers.delete(wake);
    }
  }

  private wakeAll(): void {
    for (const wake of this.sleepers) wake();
  }

  private nodeResources(): NodeResources {
    return this.k.options.node(this.pod.spec?.nodeName ?? '') ?? { allocatable: {} };
  }

  /** Images resolve through the table; an unknown image leaves the pod Pending with ErrImagePull, as a real pull failure does. */
  private async pullImages(): Promise<boolean> {
    let ok = true;
    for (const c of [...this.initContainers, ...this.containers]) {
      c.image = lookupImage(this.k.options.images, c.spec.image ?? '');
      if (!c.image) {
        ok = false;
        c.state = { waiting: { reason: 'ErrImagePull', message: `image ${JSON.stringify(c.spec.image)} is not in the ` +
          `test harness' image table (known: ${Object.keys(this.k.options.images).join(', ')})` } };
      }
    }
    if (ok) return true;
    this.report();
    while (!this.deleting) await this.sleepUnlessDeleted(60_000);
    await this.finishDeleted();
    return false;
  }

  /** Retries a step that fails on missing configuration, showing the reason as the containers' waiting state. */
  private async retryConfig<T>(step: () => Promise<T>, runs: ContainerRun[], reason: string): Promise<T | undefined> {
    for (;;) {
      if (this.deleting) return undefined;
      try {
        return await step();
      } catch (err) {
        if (!(err instanceof ContainerConfigError)) throw err;
        for (const c of runs) c.state = { waiting: { reason, message: err.message } };
        this.report();
        await this.sleepUnlessDeleted(CONFIG_RETRY_MS);
      }
    }
  }

  /** Runs one container to its exit; undefined when the pod was deleted before it started. */
  private async runContainer(c: ContainerRun, volumes: Map<string, string>): Promise<number | undefined> {
    const prepared = await this.retryConfig(async () => {
      const env = await resolveContainerEnv(this.pod, c.spec, {
        lookup: this.k.lookup, node: this.nodeResources(), podIP: POD_IP, serviceEnv: this.k.serviceEnv(),
      });
      const mounts = containerMounts(c.spec, volumes);
      return { env, mounts };
    }, [c], 'CreateContainerConfigError');
    if (!prepared || this.deleting) return undefined;
    const image = c.image as LocalImage;
    const env = { ...image.env, ...prepared.env };
    const argv = containerArgv(image, c.spec, env);
    closeSync(openSync(c.terminationFile, 'w'));
    chmodSync(c.terminationFile, 0o666);
    const imageFiles = (image.files ?? []).map((f) => ({ ...f, readOnly: true }));
    const mounts: Mount[] = [...imageFiles, ...prepared.mounts, {
      source: c.terminationFile, target: c.spec.terminationMessagePath ?? '/dev/termination-log', readOnly: false,
    }];
    const security = { ...this.pod.spec?.securityContext, ...c.spec.securityContext };
    const startedAt = now();
    c.proc = this.k.launch(`${this.key}/${c.spec.name}`, argv, {
      env: { PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin', HOSTNAME: this.pod.metadata?.name ?? '', ...env },
      mounts,
      workingDir: c.spec.workingDir ?? image.workingDir,
      uid: security.runAsUser,
      gid: security.runAsGroup,
      logFile: c.logFile,
    });
    c.state = { running: { startedAt } };
    this.report();
    const exit = await c.proc.exited;
    const exitCode = exit.code ?? 128 + (exit.signal ? signalNumber(exit.signal) : 0);
    c.state = {
      terminated: {
        exitCode,
        ...(exit.signal ? { signal: signalNumber(exit.signal) } : {}),
        reason: exitCode === 0 ? 'Completed' : 'Error',
        message: this.terminationMessage(c, exitCode) || undefined,
        startedAt,
        finishedAt: now(),
        containerID: `process://${c.proc.pid}`,
      },
    };
    if (!this.finished) this.report();
    return exitCode;
  }

  private terminationMessage(c: ContainerRun, exitCode: number): string {
    const message = readTail(c.terminationFile, MAX_TERMINATION_MESSAGE);
    if (message || exitCode === 0 || c.spec.terminationMessagePolicy !== 'FallbackToLogsOnError') return message;
    return readTail(c.logFile, FALLBACK_LOG_BYTES).split('\n').slice(-FALLBACK_LOG_LINES).join('\n');
  }

  private async finishTerminal(): Promise<void> {
    this.report();
    await this.statusChain;
    this.finished = true;
    if (this.deleting) await this.k.deletePodObject(this.pod);
  }

  private async finishDeleted(): Promise<void> {
    if (this.finished) return;
    await Promise.all([...this.initContainers, ...this.containers].map((c) => c.proc?.exited));
    const main = this.containers;
    const started = main.some((c) => c.state.terminated);
    if (started) {
      this.phase = main.every((c) => c.state.terminated?.exitCode === 0) ? 'Succeeded' : 'Failed';
      this.report();
      await this.statusChain;
    }
    this.finished = true;
    await this.k.deletePodObject(this.pod);
  }

  private status(): Record<string, unknown> {
    const terminal = this.phase === 'Succeeded' || this.phase === 'Failed';
    const ready = !terminal && this.initialized && this.containers.every((c) => c.state.running);
    const statuses = (runs: ContainerRun[]): V1ContainerStatus[] => runs.map((c) => ({
      name: c.spec.name,
      image: c.spec.image ?? '',
      imageID: c.image ? `process://${c.spec.image}` : '',
      containerID: c.proc ? `process://${c.proc.pid}` : undefined,
      ready: Boolean(c.state.running) && ready,
      started: Boolean(c.state.running),
      restartCount: c.restartCount,
      state: c.state,
      lastState: c.lastState,
    }));
    const running = this.containers.some((c) => c.state.running);
    const phase = terminal ? this.phase : running || this.containers.some((c) => c.state.terminated) ? 'Running' : 'Pending';
    return {
      phase,
      conditions: podConditions(ready, this.initialized || terminal, terminal ? 'PodCompleted' : 'ContainersNotReady'),
      hostIP: POD_IP, hostIPs: [{ ip: POD_IP }], podIP: POD_IP, podIPs: [{ ip: POD_IP }],
      startTime: this.startTime,
      containerStatuses: statuses(this.containers),
      ...(this.initContainers.length ? { initContainerStatuses: statuses(this.initContainers) } : {}),
    };
  }

  /** Queues a status patch with the current state; patches go out in order. */
  private report(): void {
    const status = this.status();
    this.statusChain = this.statusChain.then(() => this.k.patchStatus(this.pod, status));
  }
}

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGABRT: 6, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGTERM: 15 };
function signalNumber(sig: NodeJS.Signals): number {
  return SIGNALS[sig] ?? 0;
}

export interface LaunchSpec {
  env: Record<string, string>;
  mounts: Mount[];
  workingDir?: string;
  uid?: number;
  gid?: number;
  logFile: string;
}

/**
 * A kubelet that runs the pods bound to the harness' fake nodes as local processes. Each container gets a private
 * mount namespace in which its volumes are bind-mounted at their real mountPaths, so programs see the same paths
 * as in a cluster (the service-account token at /var/run/secrets/kubernetes.io/serviceaccount, for example).
 */
export class Kubelet {
  readonly lookup: ObjectLookup;
  private readonly core: CoreV1Api;
  private informer?: Informer<V1Pod> & ObjectCache<V1Pod>;
  private readonly workers = new Map<string, PodWorker>();
  private readonly podDirs = new Map<string, string>();
  private stopped = false;

  constructor(readonly options: KubeletOptions) {
    this.core = options.kc.makeApiClient(CoreV1Api);
    const rest = options.rest;
    const get = async (kind: 'configmaps' | 'secrets', ns: string, name: string) => {
      try {
        return await rest.request<{ data?: Record<string, string> }>('GET', `/api/v1/namespaces/${ns}/${kind}/${name}`);
      } catch (err) {
        if (isStatus(err, 404)) return undefined;
        throw err;
      }
    };
    this.lookup = {
      configMap: async (ns, name) => {
        const cm = await get('configmaps', ns, name);
        return cm ? { ...cm.data } : undefined;
      },
      secret: async (ns, name) => {
        const s = await get('secrets', ns, name);
        if (!s) return undefined;
        return Object.fromEntries(Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
      },
    };
  }

  get supervisor(): ProcessSupervisor {
    return this.options.supervisor;
  }

  log(line: string): void {
    this.options.log(line);
  }

  /** The variables the kubelet gives every container for the `kubernetes` service, here pointing at the API server. */
  serviceEnv(): Record<string, string> {
    const port = String(this.options.apiserverPort);
    return {
      KUBERNETES_SERVICE_HOST: POD_IP,
      KUBERNETES_SERVICE_PORT: port,
      KUBERNETES_SERVICE_PORT_HTTPS: port,
      KUBERNETES_PORT: `tcp://${POD_IP}:${port}`,
      KUBERNETES_PORT_443_TCP: `tcp://${POD_IP}:${port}`,
      KUBERNETES_PORT_443_TCP_PROTO: 'tcp',
      KUBERNETES_PORT_443_TCP_PORT: port,
      KUBERNETES_PORT_443_TCP_ADDR: POD_IP,
    };
  }

  async start(): Promise<void> {
    const informer = makeInformer<V1Pod>(this.options.kc, '/api/v1/pods', () => this.core.listPodForAllNamespaces());
    const onPod = (pod: V1Pod) => this.sync(pod);
    informer.on('add', onPod);
    informer.on('update', onPod);
    informer.on('delete', (pod) => {
      const uid = pod.metadata?.uid ?? '';
      const worker = this.workers.get(uid);
      if (worker && !worker.isFinished) void worker.kill();
      this.workers.delete(uid);
    });
    informer.on('error', (err: unknown) => {
      if (this.stopped) return;
      this.log(`pod watch failed, restarting: ${String(err)}`);
      setTimeout(() => void (this.stopped ? undefined : informer.start().catch(() => {})), 1000);
    });
    this.informer = informer;
    await informer.start();
  }

  private sync(pod: V1Pod): void {
    if (this.stopped) return;
    const nodeName = pod.spec?.nodeName;
    const uid = pod.metadata?.uid;
    if (!nodeName || !uid || !this.options.node(nodeName)) return;
    const existing = this.workers.get(uid);
    if (existing) {
      if (existing.isFinished) {
        if (pod.metadata?.deletionTimestamp) void this.deletePodObject(pod);
        return;
      }
      existing.update(pod);
      return;
    }
    const phase = pod.status?.phase;
    if (phase === 'Succeeded' || phase === 'Failed') {
      if (pod.metadata?.deletionTimestamp) void this.deletePodObject(pod);
      return;
    }
    const { namespace, name } = pod.metadata ?? {};
    const podDir = path.join(this.options.dir, `${namespace}_${name}_${uid}`);
    this.podDirs.set(`${namespace}/${name}`, podDir);
    const worker = new PodWorker(pod, this, podDir);
    this.workers.set(uid, worker);
    worker.update(pod);
  }

  /** Looks again at every known pod: after a node is registered, pods bound to it in the meantime start. */
  resync(): void {
    for (const pod of this.informer?.list() ?? []) this.sync(pod);
  }

  /** Kills the processes of every pod on a node that vanished; the pod objects are left to the pod GC. */
  async killNodePods(nodeName: string): Promise<void> {
    const victims = [...this.workers.entries()].filter(([uid]) => {
      const pod = this.informer?.list().find((p) => p.metadata?.uid === uid);
      return pod?.spec?.nodeName === nodeName;
    });
    await Promise.all(victims.map(([, w]) => w.kill()));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.informer?.stop();
    await Promise.all([...this.workers.values()].map((w) => w.kill()));
  }

  /** The log of a pod's container (its first container by default), from the most recent pod of that name. */
  podLogs(namespace: string, name: string, container?: string): string {
    const dir = this.podDirs.get(`${namespace}/${name}`);
    if (!dir) throw new Error(`no pod ${namespace}/${name} has run on the harness' nodes`);
    const file = container ? `${container}.log` : undefined;
    const candidates = file ? [file] : [...readdir(dir)].filter((f) => f.endsWith('.log'));
    if (!candidates.length) return '';
    return candidates.map((f) => (existsSync(path.join(dir, f)) ? readFileSync(path.join(dir, f), 'utf8') : '')).join('');
  }

  launch(name: string, argv: string[], spec: LaunchSpec): SupervisedProcess {
    const asRoot = process.getuid?.() === 0;
    const lines: string[] = ['set -e'];
    for (const m of mountOrder(spec.mounts)) {
      lines.push(existsSync(m.source) && !isFile(m.source)
        ? `mkdir -p ${quote(m.target)}`
        : `mkdir -p ${quote(path.dirname(m.target))}; [ -e ${quote(m.target)} ] || : > ${quote(m.target)}`);
      lines.push(`mount --bind ${quote(m.source)} ${quote(m.target)}`);
      if (m.readOnly) lines.push(`mount -o remount,bind,ro ${quote(m.target)}`);
    }
    if (spec.workingDir) lines.push(`mkdir -p ${quote(spec.workingDir)}; cd ${quote(spec.workingDir)}`);
    const drop = spec.uid !== undefined
      ? `setpriv --reuid=${spec.uid} --regid=${spec.gid ?? 0} --clear-groups -- `
      : '';
    lines.push(`exec ${drop}"$@"`);
    // unshare without --fork execs the shell, which execs the program: signals to the group reach it directly.
    const unshareArgs = ['--mount', '--propagation', 'private', ...(asRoot ? [] : ['--map-root-user'])];
    return this.supervisor.spawn(name, 'unshare', [...unshareArgs, '--', '/bin/sh', '-c', lines.join('\n'), 'container', ...argv], {
      env: spec.env,
      logFile: spec.logFile,
    });
  }

  async patchStatus(pod: V1Pod, status: Record<string, unknown>): Promise<void> {
    const { namespace, name, uid } = pod.metadata ?? {};
    try {
      await this.options.rest.request('PATCH', `/api/v1/namespaces/${namespace}/pods/${name}/status`,
        { metadata: { uid }, status }, STRATEGIC_MERGE_PATCH);
    } catch (err) {
      if (isStatus(err, 404) || isStatus(err, 409)) return;
      this.log(`status patch for ${namespace}/${name} failed: ${String(err)}`);
    }
  }

  async deletePodObject(pod: V1Pod): Promise<void> {
    const { namespace, name, uid } = pod.metadata ?? {};
    try {
      await this.options.rest.request('DELETE', `/api/v1/namespaces/${namespace}/pods/${name}`,
        { apiVersion: 'v1', kind: 'DeleteOptions', gracePeriodSeconds: 0, preconditions: { uid } });
    } catch (err) {
      if (isStatus(err, 404) || isStatus(err, 409)) return;
      this.log(`deleting ${namespace}/${name} failed: ${String(err)}`);
    }
  }

  /** A service-account token bound to the pod (TokenRequest API), as the projected token volume holds. */
  async requestToken(pod: V1Pod, audience: string | undefined, expirationSeconds: number | undefined): Promise<string> {
    const { namespace, name, uid } = pod.metadata ?? {};
    const sa = pod.spec?.serviceAccountName ?? 'default';
    try {
      const res = await this.options.rest.request<{ status: { token: string } }>('POST',
        `/api/v1/namespaces/${namespace}/serviceaccounts/${sa}/token`, {
          apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest',
          spec: {
            audiences: audience ? [audience] : [],
            expirationSeconds: expirationSeconds ?? 3607,
            boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name, uid },
          },
        });
      return res.status.token;
    } catch (err) {
      if (isStatus(err, 404)) throw new ContainerConfigError(`serviceaccount ${namespace}/${sa} not found`);
      throw err;
    }
  }
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

function readdir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
