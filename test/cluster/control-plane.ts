import http from 'node:http';
import https from 'node:https';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../../job-runner/db/embedded.js';
import { adminKubeconfig, createClusterPki, SERVICE_CLUSTER_IP_RANGE, type ClusterPki } from './pki.js';
import type { ProcessSupervisor, SupervisedProcess } from './processes.js';

/**
 * Controllers the tests rely on. With real kubelets reporting real conditions the node-lifecycle controller runs
 * (NotReady and unreachable taints, and with the taint-eviction controller the pods of a lost node are marked
 * for deletion after their tolerations); the endpoint controllers give Services their EndpointSlices, which
 * kube-proxy programs on every node. There is no route, service or cloud-node controller: there is no cloud.
 */
export const CONTROLLERS = [
  'job-controller',
  'cronjob-controller',
  'pod-garbage-collector-controller',
  'garbage-collector-controller',
  'ttl-after-finished-controller',
  'namespace-controller',
  'serviceaccount-controller',
  'serviceaccount-token-controller',
  'root-ca-certificate-publisher-controller',
  'clusterrole-aggregation-controller',
  'deployment-controller',
  'replicaset-controller',
  'statefulset-controller',
  'daemonset-controller',
  'disruption-controller',
  'endpoints-controller',
  'endpointslice-controller',
  'endpointslice-mirroring-controller',
  'node-lifecycle-controller',
  'taint-eviction-controller',
  // The end-to-end corpora are local PersistentVolumes (the pod policy refuses hostPath): the binder binds their
  // claims; the protection controllers lift the finalizers that keep a claim or volume in use from being deleted.
  'persistentvolume-binder-controller',
  'persistentvolume-protection-controller',
  'persistentvolumeclaim-protection-controller',
];

export interface ControlPlane {
  apiserverUrl: string;
  apiserverPort: number;
  kubeconfigPath: string;
  pki: ClusterPki;
  /** In start order: etcd, kube-apiserver, kube-controller-manager, kube-scheduler. */
  processes: SupervisedProcess[];
  logDir: string;
}

export interface ControlPlaneOptions {
  binDir: string;
  dir: string;
  /** Where the API server listens and what it advertises (the `kubernetes` Service's endpoint): the host's address
   *  on the cluster segment, reachable from the host, the nodes and the pods. */
  hostAddress: string;
  supervisor: ProcessSupervisor;
  /** Extra kube-apiserver flags, e.g. `--feature-gates=...`. */
  apiserverArgs?: string[];
  controllerManagerArgs?: string[];
  log: (line: string) => void;
}

function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Polls `probe` until it returns true, failing early with the component's log if its process has exited. */
async function waitFor(
  what: string,
  proc: SupervisedProcess,
  logFile: string,
  probe: () => Promise<boolean>,
  timeoutMs = 120_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!proc.running()) throw new Error(`${what} exited before it was ready; its log ends with:\n${tail(logFile)}`);
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline)
      throw new Error(`${what} not ready after ${timeoutMs} ms; its log ends with:\n${tail(logFile)}`);
    await sleep(250);
  }
}

function get(url: string, options: https.RequestOptions = {}): Promise<{ status: number; body: string }> {
  const lib = url.startsWith('https:') ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.get(url, { ...options, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** Starts etcd, kube-apiserver, kube-controller-manager and kube-scheduler and waits until each is ready. */
export async function startControlPlane(options: ControlPlaneOptions): Promise<ControlPlane> {
  const { binDir, dir, supervisor, log } = options;
  const logDir = path.join(dir, 'logs');
  mkdirSync(logDir, { recursive: true });
  const pki = createClusterPki(path.join(dir, 'pki'), options.hostAddress);
  const etcdClient = await freePort();
  const etcdPeer = await freePort();
  const apiPort = await freePort();
  const kcmPort = await freePort();
  const schedPort = await freePort();
  const env = { PATH: process.env.PATH, HOME: process.env.HOME };
  const processes: SupervisedProcess[] = [];
  const start = (name: string, args: string[]) => {
    const logFile = path.join(logDir, `${name}.log`);
    const proc = supervisor.spawn(name, path.join(binDir, name), args, { env, logFile, cwd: dir });
    processes.push(proc);
    return { proc, logFile };
  };

  try {
    let t = Date.now();
    const etcdUrl = `http://127.0.0.1:${etcdClient}`;
    const peerUrl = `http://127.0.0.1:${etcdPeer}`;
    const etcd = start('etcd', [
      '--name=default',
      `--data-dir=${path.join(dir, 'etcd')}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=default=${peerUrl}`,
      // A test cluster's data is thrown away: skipping fsync keeps etcd off the disk's critical path.
      '--unsafe-no-fsync',
      '--log-level=warn',
    ]);
    await waitFor('etcd', etcd.proc, etcd.logFile, async () => {
      const r = await get(`${etcdUrl}/health`);
      return r.status === 200 && r.body.includes('true');
    });
    log(`etcd ready in ${Date.now() - t} ms`);

    t = Date.now();
    const apiserverUrl = `https://${options.hostAddress}:${apiPort}`;
    const apiserver = start('kube-apiserver', [
      `--etcd-servers=${etcdUrl}`,
      `--bind-address=${options.hostAddress}`,
      `--advertise-address=${options.hostAddress}`,
      `--secure-port=${apiPort}`,
      `--cert-dir=${path.join(dir, 'apiserver-certs')}`,
      `--tls-cert-file=${pki.servingCert}`,
      `--tls-private-key-file=${pki.servingKey}`,
      `--client-ca-file=${pki.caCert}`,
      // Kubelets authenticate as system:node:<name>: the Node authorizer and NodeRestriction hold them to their own
      // node's objects, as in a real cluster.
      '--authorization-mode=Node,RBAC',
      '--enable-admission-plugins=NodeRestriction',
      // kubectl logs/exec: the API server calls the kubelet at its InternalIP (the nodes have no resolvable names)
      // and verifies its serving certificate against the cluster CA.
      '--kubelet-preferred-address-types=InternalIP',
      `--kubelet-client-certificate=${pki.kubeletClientCert}`,
      `--kubelet-client-key=${pki.kubeletClientKey}`,
      `--kubelet-certificate-authority=${pki.caCert}`,
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${pki.serviceAccountPublicKey}`,
      `--service-account-signing-key-file=${pki.serviceAccountKey}`,
      `--service-cluster-ip-range=${SERVICE_CLUSTER_IP_RANGE}`,
      '--allow-privileged=true',
      '--profiling=false',
      '--v=1',
      ...(options.apiserverArgs ?? []),
    ]);
    const clientTls = {
      ca: readFileSync(pki.caCert),
      cert: readFileSync(pki.adminCert),
      key: readFileSync(pki.adminKey),
    };
    await waitFor('kube-apiserver', apiserver.proc, apiserver.logFile, async () => {
      const r = await get(`${apiserverUrl}/readyz`, clientTls);
      return r.status === 200;
    });
    log(`kube-apiserver ready in ${Date.now() - t} ms`);

    const kubeconfigPath = path.join(dir, 'kubeconfig');
    writeFileSync(kubeconfigPath, adminKubeconfig(pki, apiserverUrl), { mode: 0o600 });

    t = Date.now();
    const kcm = start('kube-controller-manager', [
      `--kubeconfig=${kubeconfigPath}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${kcmPort}`,
      `--cert-dir=${path.join(dir, 'kcm-certs')}`,
      '--leader-elect=false',
      `--controllers=${CONTROLLERS.join(',')}`,
      `--service-account-private-key-file=${pki.serviceAccountKey}`,
      `--root-ca-file=${pki.caCert}`,
      '--use-service-account-credentials=true',
      '--v=1',
      ...(options.controllerManagerArgs ?? []),
    ]);
    const scheduler = start('kube-scheduler', [
      `--kubeconfig=${kubeconfigPath}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${schedPort}`,
      `--cert-dir=${path.join(dir, 'scheduler-certs')}`,
      '--leader-elect=false',
      '--v=1',
    ]);
    const healthy = (port: number) => async () =>
      (await get(`https://127.0.0.1:${port}/healthz`, { rejectUnauthorized: false })).status === 200;
    await Promise.all([
      waitFor('kube-controller-manager', kcm.proc, kcm.logFile, healthy(kcmPort)),
      waitFor('kube-scheduler', scheduler.proc, scheduler.logFile, healthy(schedPort)),
    ]);
    log(`kube-controller-manager and kube-scheduler ready in ${Date.now() - t} ms`);

    return { apiserverUrl, apiserverPort: apiPort, kubeconfigPath, pki, processes, logDir };
  } catch (err) {
    await supervisor.stopAll([...processes].reverse(), 5000);
    throw err;
  }
}
