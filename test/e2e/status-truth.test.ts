/**
 * What a MidiCorpus says when things go wrong that waiting will not mend, on the real control plane and a real node:
 * a Job the API server rejects (422: a typo in a volume source, which the CRD accepts because volumes are
 * preserve-unknown-fields; a typo in a toleration, fixed in place), a Job a ResourceQuota forbids (403), and scan pods
 * stuck or killed: an image that cannot
 * be pulled, a container configuration the kubelet refuses, no node that matches, a memory limit too small, and the
 * same failure again and again (a "database" that answers every connection with an internal error). Each must show
 * in the corpus's condition and as an Event, and the refused write must not be hammered: the API server's own audit
 * log counts the attempts.
 *
 * The controller runs as a plain process on this machine (as in informer-restart.test.ts), with the retry interval
 * and the unschedulable grace shortened by its flags. No Postgres is needed: every corpus gives maxConnections, and
 * its Secret points at a port where nothing listens (a pod that got that far would wait for the database, which is
 * not what these cases are about), or, for the repeated failures, at a server that answers every startup with a
 * Postgres ErrorResponse XX000: an error the runner treats as unexpected, so each scan attempt exits 1.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync, writeFileSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { once } from 'node:events';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BatchV1Api, CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { midiCorpusCRDYaml } from '../../controller/api/crd.js';
import { GROUP, PLURAL, VERSION, type MidiCorpus } from '../../controller/api/v1alpha1/midicorpus.js';
import { projectImage } from '../cluster/project-image.js';
import { BUSYBOX_IMAGE, busyboxImage } from '../cluster/node-images.js';
import { CLUSTER_START_TIMEOUT_MS, describeWithCluster, eventually, useCluster } from '../cluster/vitest.js';
import { applyOrFail, createDatabaseSecret, readCorpus, repoRoot, RUNNER_CPU } from './support/operator.js';

const NS = 'troubles';
const RETRY_SECONDS = 90;
const GRACE_SECONDS = 5;
const TIMEOUT_MS = 420_000;
const PASSWORD = 'hunter2-status-truth';

// The API server's audit log: every Job create, with its answer. Written before the cluster starts, which reads it.
const auditDir = mkdtempSync(path.join(os.tmpdir(), 'mco-e2e-audit-'));
const auditLog = path.join(auditDir, 'audit.log');
writeFileSync(
  path.join(auditDir, 'policy.yaml'),
  [
    'apiVersion: audit.k8s.io/v1',
    'kind: Policy',
    'omitStages: [RequestReceived]',
    'rules:',
    '  - level: Metadata',
    '    verbs: [create]',
    '    resources: [{ group: batch, resources: [jobs] }]',
    '  - level: None',
    '',
  ].join('\n'),
);

describeWithCluster('what the status shows when the API server or the pods say no', () => {
  const cluster = useCluster({
    nodes: [{ name: 'node-1' }],
    apiserverArgs: [`--audit-policy-file=${path.join(auditDir, 'policy.yaml')}`, `--audit-log-path=${auditLog}`],
  });
  const custom = () => cluster().kc.makeApiClient(CustomObjectsApi);
  let controller: ChildProcess;
  let logFile: string;
  let brokenServer: net.Server | undefined;

  /** A corpus on an emptyDir (nothing to read: it never gets that far), with `spec` merged into its runner. */
  const corpus = (name: string, runner: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) => ({
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'MidiCorpus',
    metadata: { name, namespace: NS },
    spec: {
      source: { volume: { emptyDir: {} } },
      database: { secretRef: { name: 'db' }, maxConnections: 20 },
      sharding: { filesPerShard: 10 },
      runner: { resources: { requests: { cpu: RUNNER_CPU, memory: '64Mi' } }, ...runner },
      ...extra,
    },
  });

  beforeAll(async () => {
    await cluster().importImage((await projectImage()).archive);
    await cluster().importImage((await busyboxImage()).archive);
    const r = await cluster().kubectl(['apply', '-f', '-'], midiCorpusCRDYaml());
    expect(r.code, r.stderr).toBe(0);
    await cluster().kubectl([
      'wait',
      '--for=condition=Established',
      'crd/midicorpora.midi.corpus.dev',
      '--timeout=60s',
    ]);
    await cluster().createNamespace(NS);
    await cluster().createNamespace('quota');
    // Nothing listens on port 9 of the host address: the pods that start cannot connect (and must say so without
    // the password).
    const url = `postgres://midi:${PASSWORD}@${cluster().hostAddress}:9/midi`;
    await createDatabaseSecret(cluster(), NS, url);
    await createDatabaseSecret(cluster(), 'quota', url);
    brokenServer = await listenBroken(cluster().hostAddress);
    const port = (brokenServer.address() as net.AddressInfo).port;
    await createDatabaseSecret(
      cluster(),
      NS,
      `postgres://midi:${PASSWORD}@${cluster().hostAddress}:${port}/midi`,
      'broken',
    );

    logFile = path.join(auditDir, 'controller.log');
    controller = spawn(
      process.execPath,
      [
        path.join(repoRoot, 'dist', 'cli', 'main.js'),
        'controller',
        '--leader-elect=false',
        '--metrics-port=0',
        '--health-port=0',
        `--rejected-retry-seconds=${RETRY_SECONDS}`,
        `--unschedulable-grace-seconds=${GRACE_SECONDS}`,
      ],
      {
        env: { ...process.env, KUBECONFIG: cluster().kubeconfigPath, POD_NAME: 'status-truth', LOG_LEVEL: 'info' },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    controller.stderr!.pipe(createWriteStream(logFile));
    await eventually('the controller to list and watch', async () =>
      (await readFile(logFile, 'utf8')).includes('controller running'),
    );

    // No Job allowed in namespace quota. The test cluster runs no resource-quota controller, which would fill in the
    // quota's status; the API server's quota admission enforces what status.hard says, so the test says it.
    await applyOrFail(cluster(), {
      apiVersion: 'v1',
      kind: 'ResourceQuota',
      metadata: { name: 'no-jobs', namespace: 'quota' },
      spec: { hard: { 'count/jobs.batch': '0' } },
    });
    const quotaStatus = JSON.stringify({
      status: { hard: { 'count/jobs.batch': '0' }, used: { 'count/jobs.batch': '0' } },
    });
    const q = await cluster().kubectl([
      'patch',
      'resourcequota',
      'no-jobs',
      '-n',
      'quota',
      '--subresource=status',
      '--type=merge',
      '-p',
      quotaStatus,
    ]);
    expect(q.code, q.stderr).toBe(0);
    await sleep(2000); // the quota admission's informer

    // Every case at once, so that their waits overlap.
    await applyOrFail(
      cluster(),
      { ...corpus('forbidden'), metadata: { name: 'forbidden', namespace: 'quota' } },
      {
        ...corpus('typo'),
        spec: { ...corpus('typo').spec, source: { volume: { persistentVolumeClaim: { claimNam: 'midi' } } } },
      },
      corpus('toleration', { tolerations: [{ key: 'pool', operator: 'Exist', effect: 'NoSchedule' }] }),
      corpus('image', { image: 'localhost:5999/midi-corpus/nothing:1' }),
      corpus('config', { image: BUSYBOX_IMAGE }),
      corpus('nowhere', { nodeSelector: { pool: 'later' } }),
      corpus('memory', { resources: { requests: { cpu: RUNNER_CPU, memory: '20Mi' }, limits: { memory: '20Mi' } } }),
      {
        ...corpus('crashing'),
        spec: { ...corpus('crashing').spec, database: { secretRef: { name: 'broken' }, maxConnections: 20 } },
      },
    );
  }, CLUSTER_START_TIMEOUT_MS);

  afterAll(async () => {
    if (controller && controller.exitCode === null && controller.signalCode === null) {
      const exited = once(controller, 'exit');
      controller.kill('SIGTERM');
      await exited;
    }
    brokenServer?.close();
    await rm(auditDir, { recursive: true, force: true });
  });

  const condition = async (namespace: string, name: string, type: string) =>
    (await readCorpus(cluster(), namespace, name))?.status?.conditions?.find((c) => c.type === type);

  /** Waits for the condition to be True with `reason`; returns it, and prints it for the record. */
  const shows = async (namespace: string, name: string, type: string, reason: string, timeoutMs = 120_000) => {
    const c = await eventually(
      `${namespace}/${name}: ${type}=True ${reason}`,
      async () => {
        const c = await condition(namespace, name, type);
        return c?.status === 'True' && c.reason === reason ? c : undefined;
      },
      timeoutMs,
    );
    console.log(`[status-truth] ${namespace}/${name}: ${type}=${c.status} reason=${c.reason} message=${c.message}`);
    return c;
  };

  /**
   * The corpus's Events with that reason (core/v1, as the controller writes them), once there is one: the controller
   * records an Event just after the status write the caller has seen, so a single look can come a moment too early.
   */
  const events = (namespace: string, name: string, reason: string) =>
    eventually(`${namespace}/${name}: an Event ${reason}`, async () => {
      const found = (await cluster().kc.makeApiClient(CoreV1Api).listNamespacedEvent({ namespace })).items.filter(
        (e) => e.involvedObject.kind === 'MidiCorpus' && e.involvedObject.name === name && e.reason === reason,
      );
      return found.length > 0 ? found : undefined;
    });

  /** Job creates the API server answered, by Job name, from its audit log. */
  const createAttempts = async (name: string) =>
    (await readFile(auditLog, 'utf8'))
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { verb: string; objectRef?: { name?: string }; responseStatus?: { code?: number } })
      .filter((e) => e.verb === 'create' && e.objectRef?.name === name);

  const expectNoSecret = async (namespace: string, name: string) => {
    const c = await readCorpus(cluster(), namespace, name);
    const evs = (await cluster().kc.makeApiClient(CoreV1Api).listNamespacedEvent({ namespace })).items;
    expect(JSON.stringify([c?.status, evs.map((e) => e.message)])).not.toContain(PASSWORD);
  };

  it(
    'a Job rejected with 422: WriteRejected with the field error and an Event, no hammering, and at once once fixed',
    async () => {
      const c = await shows(NS, 'typo', 'WriteRejected', 'Invalid');
      expect(c.message).toMatch(/^The API server refused creating the scan Job typo-scan \(422 Invalid\): /);
      expect(c.message).toContain('volumes[0].persistentVolumeClaim.claimName: Required value');
      expect((await readCorpus(cluster(), NS, 'typo'))?.status?.reason).toBe('Invalid');
      expect(await events(NS, 'typo', 'Invalid')).toEqual([expect.objectContaining({ type: 'Warning' })]);

      // Over 45 s, under the 90 s retry interval: the one refused create, nothing more (the exponential backoff that
      // met every error before would have asked six times by then: 0.5 + 1 + 2 + 4 + 8 + 16 s).
      const first = await createAttempts('typo-scan');
      expect(first.map((e) => e.responseStatus?.code)).toEqual([422]);
      await sleep(45_000);
      expect((await createAttempts('typo-scan')).map((e) => e.responseStatus?.code)).toEqual([422]);

      // source is immutable, so that one is for a new MidiCorpus. A toleration with a typo is fixed in place: the new
      // generation is tried at once, long before the retry interval is up.
      const t = await shows(NS, 'toleration', 'WriteRejected', 'Invalid');
      expect(t.message).toContain('tolerations[0].operator: Unsupported value: "Exist"');
      const before = (await createAttempts('toleration-scan')).map((e) => e.responseStatus?.code);
      expect(before).toEqual(before.length === 1 ? [422] : [422, 422]); // a second one only past the interval
      const fixedAt = Date.now();
      await custom().patchNamespacedCustomObject(
        {
          group: GROUP,
          version: VERSION,
          plural: PLURAL,
          namespace: NS,
          name: 'toleration',
          body: { spec: { runner: { tolerations: [{ key: 'pool', operator: 'Exists', effect: 'NoSchedule' }] } } },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      await eventually('the scan Job to be created', async () =>
        (await cluster().kc.makeApiClient(BatchV1Api).listNamespacedJob({ namespace: NS })).items.some(
          (j) => j.metadata?.name === 'toleration-scan',
        ),
      );
      expect(Date.now() - fixedAt).toBeLessThan(RETRY_SECONDS * 1000 - 15_000);
      expect((await createAttempts('toleration-scan')).map((e) => e.responseStatus?.code)).toEqual([...before, 201]);
      await eventually('WriteRejected to clear', async () => {
        const w = await condition(NS, 'toleration', 'WriteRejected');
        return w?.status === 'False' && w.reason === 'WritesAccepted';
      });
      expect(await events(NS, 'toleration', 'WritesAccepted')).toEqual([expect.objectContaining({ type: 'Normal' })]);
      console.log(
        `[status-truth] ${NS}/toleration after the fix: ${JSON.stringify(await condition(NS, 'toleration', 'WriteRejected'))}`,
      );
    },
    TIMEOUT_MS,
  );

  it('a Job a ResourceQuota forbids (403): WriteRejected Forbidden with the quota named, and an Event', async () => {
    const c = await shows('quota', 'forbidden', 'WriteRejected', 'Forbidden');
    expect(c.message).toMatch(
      /^The API server refused creating the scan Job forbidden-scan \(403 Forbidden\): .*exceeded quota: no-jobs.* Let the operator do it/,
    );
    expect(await events('quota', 'forbidden', 'Forbidden')).toHaveLength(1);
  });

  it('an image that cannot be pulled: PodsFailing ImagePullFailed naming the pod, one Event', async () => {
    const c = await shows(NS, 'image', 'PodsFailing', 'ImagePullFailed');
    expect(c.message).toMatch(/^ImagePullFailed: pod image-scan-\w+ \(scan\): (ErrImagePull|ImagePullBackOff)/);
    expect(await events(NS, 'image', 'ImagePullFailed')).toEqual([expect.objectContaining({ type: 'Warning' })]);
    const table = await cluster().kubectl(['get', 'mco', '-n', NS, 'image']);
    console.log(`[status-truth] kubectl get mco:\n${table.stdout}`);
    expect(table.stdout.split('\n')[0]).toMatch(/NAME\s+PHASE\s+REASON/);
    expect(table.stdout).toMatch(/image\s+Scanning\s+ImagePullFailed/);
  });

  it('a root image under runAsNonRoot: PodsFailing CreateContainerConfigError, and an Event', async () => {
    const c = await shows(NS, 'config', 'PodsFailing', 'CreateContainerConfigError');
    expect(c.message).toMatch(/pod config-scan-\w+ \(scan\): CreateContainerConfigError: .*runAsNonRoot/);
    expect(await events(NS, 'config', 'CreateContainerConfigError')).toHaveLength(1);
  });

  it('no node matches: PodsFailing Unschedulable after the grace, and clear again once a node does', async () => {
    const c = await shows(NS, 'nowhere', 'PodsFailing', 'Unschedulable');
    expect(c.message).toMatch(/pod nowhere-scan-\w+ \(scan\): 0\/1 nodes are available/);
    expect(await events(NS, 'nowhere', 'Unschedulable')).toHaveLength(1);
    const since = Date.parse(
      (await readCorpus(cluster(), NS, 'nowhere'))!.metadata.creationTimestamp as unknown as string,
    );
    expect(Date.parse(c.lastTransitionTime) - since).toBeGreaterThanOrEqual(GRACE_SECONDS * 1000);

    // A node with the label turns up (as an autoscaler would add one): the pod is scheduled and the condition clears.
    expect((await cluster().kubectl(['label', 'node', 'node-1', 'pool=later'])).code).toBe(0);
    await eventually('PodsFailing to clear', async () => {
      const p = await condition(NS, 'nowhere', 'PodsFailing');
      return p?.status === 'False' && p.reason === 'PodsHealthy';
    });
    expect(await events(NS, 'nowhere', 'PodsHealthy')).toEqual([expect.objectContaining({ type: 'Normal' })]);
  });

  it('a scan over its memory limit: PodsFailing OOMKilled with the limit, and an Event', async () => {
    const c = await shows(NS, 'memory', 'PodsFailing', 'OOMKilled');
    expect(c.message).toMatch(
      /pod memory-scan-\w+ \(scan\): killed for using more memory than its limit \(20Mi\), exit code 137/,
    );
    expect(await events(NS, 'memory', 'OOMKilled')).toHaveLength(1);
  });

  it(
    'a scan failing again and again alike (its database answers with an error): PodsFailing RepeatedFailures, and an Event',
    async () => {
      const c = await shows(NS, 'crashing', 'PodsFailing', 'RepeatedFailures', 240_000);
      expect(c.message).toMatch(
        /pod crashing-scan-\w+ \(scan\): [2-5] attempts failed alike \(Error, exit code 1: an unexpected error\)/,
      );
      expect(await events(NS, 'crashing', 'RepeatedFailures')).toHaveLength(1);
      for (const name of ['crashing', 'typo', 'toleration', 'memory', 'image']) await expectNoSecret(NS, name);
      const all = (await custom().listNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        plural: PLURAL,
        namespace: NS,
      })) as { items: MidiCorpus[] };
      for (const m of all.items)
        console.log(
          `[status-truth] final ${m.metadata.name}: phase=${m.status?.phase} reason=${m.status?.reason ?? ''}`,
        );
    },
    TIMEOUT_MS,
  );
});

/**
 * A TCP server that answers every connection as a Postgres server would refuse it: an ErrorResponse (FATAL, SQLSTATE
 * XX000 internal_error), then the end. Neither transient nor a configuration error to the runner: a bug, exit 1.
 */
async function listenBroken(host: string): Promise<net.Server> {
  const fields = Buffer.concat(
    ['SFATAL', 'VFATAL', 'CXX000', 'Mthis test server refuses every session', ''].map((f) => Buffer.from(`${f}\0`)),
  );
  const message = Buffer.alloc(5);
  message.write('E', 0);
  message.writeInt32BE(4 + fields.length, 1);
  const reply = Buffer.concat([message, fields]);
  const server = net.createServer((socket) => {
    socket.once('data', () => socket.end(reply));
    socket.on('error', () => {});
  });
  server.listen(0, host);
  await once(server, 'listening');
  return server;
}
