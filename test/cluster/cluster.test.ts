import net from 'node:net';
import { beforeAll, expect, it } from 'vitest';
import {
  ApiException,
  ApiextensionsV1Api,
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  RbacAuthorizationV1Api,
  type V1Container,
  type V1Job,
  type V1Pod,
  type V1PodSpec,
} from '@kubernetes/client-node';
import { REPO_ROOT } from './binaries.js';
import { BUSYBOX_IMAGE, busyboxImage, NODE_IMAGE, nodeImage } from './node-images.js';
import { describeWithCluster, eventually, useCluster } from './vitest.js';

function apiStatus(err: unknown): number | undefined {
  return err instanceof ApiException ? err.code : undefined;
}

describeWithCluster('test cluster on real nodes: workloads', () => {
  const cluster = useCluster({ nodes: [{ name: 'node-1' }, { name: 'node-2' }] });
  const core = () => cluster().kc.makeApiClient(CoreV1Api);
  const batch = () => cluster().kc.makeApiClient(BatchV1Api);

  beforeAll(async () => {
    const [busybox, node] = await Promise.all([busyboxImage(), nodeImage()]);
    await cluster().importImage(busybox.archive);
    await cluster().importImage(node.archive);
  }, 300_000);

  const readPod = (ns: string, name: string) => core().readNamespacedPod({ namespace: ns, name });
  const podsOfJob = async (ns: string, job: string): Promise<V1Pod[]> =>
    (await core().listNamespacedPod({ namespace: ns, labelSelector: `job-name=${job}` })).items;
  const jobCondition = async (ns: string, name: string): Promise<string | undefined> => {
    const job = await batch().readNamespacedJob({ namespace: ns, name });
    return job.status?.conditions?.find((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True')
      ?.type;
  };
  const indexOf = (pod: V1Pod) => pod.metadata?.annotations?.['batch.kubernetes.io/job-completion-index'];
  const finished = (ns: string, name: string, timeoutMs?: number) =>
    eventually(
      `pod ${name} to finish`,
      async () => {
        const p = await readPod(ns, name);
        return p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed' ? p : undefined;
      },
      timeoutMs,
    );
  const shell = (name: string, script: string, extra: Partial<V1Container> = {}): V1Container => ({
    name,
    image: BUSYBOX_IMAGE,
    imagePullPolicy: 'Never',
    command: ['/bin/sh', '-c', script],
    resources: { requests: { cpu: '100m', memory: '32Mi' } },
    ...extra,
  });
  const createPod = (
    ns: string,
    name: string,
    spec: Partial<V1PodSpec> & { containers: V1Container[] },
    labels?: Record<string, string>,
  ) =>
    core().createNamespacedPod({
      namespace: ns,
      body: { metadata: { name, labels }, spec: { restartPolicy: 'Never', ...spec } },
    });

  it("reports the machine as each node's capacity and the allocatable the test asked for", async () => {
    const node = await core().readNode({ name: 'node-1' });
    expect(node.status?.capacity?.cpu).toBe(String((await import('node:os')).cpus().length));
    expect(node.status?.allocatable?.cpu).toBe(node.status?.capacity?.cpu);
    expect(node.status?.allocatable?.memory).toBe('4Gi');
    expect(node.status?.addresses).toContainEqual({
      type: 'InternalIP',
      address: expect.stringMatching(/^10\.213\.\d+\.11$/),
    });
    expect(node.status?.nodeInfo?.containerRuntimeVersion).toMatch(/^containerd:\/\/1\.6\./);
    expect(node.spec?.taints ?? []).toEqual([]);
  });

  it('runs an Indexed Job, each pod seeing its completion index, and completes it', async () => {
    await cluster().createNamespace('indexed');
    const job: V1Job = {
      metadata: { name: 'three' },
      spec: {
        completions: 3,
        parallelism: 3,
        completionMode: 'Indexed',
        backoffLimit: 0,
        template: {
          spec: {
            restartPolicy: 'Never',
            containers: [
              shell(
                'work',
                'echo "index=$JOB_COMPLETION_INDEX annotation=$FROM_ANNOTATION pod=$POD_NAME cpu=$CPU_MILLIS ' +
                  'ns=$(cat /var/run/secrets/kubernetes.io/serviceaccount/namespace) host=$(hostname)"; ' +
                  'echo "shard $JOB_COMPLETION_INDEX done" > /dev/termination-log',
                {
                  env: [
                    {
                      name: 'FROM_ANNOTATION',
                      valueFrom: {
                        fieldRef: { fieldPath: "metadata.annotations['batch.kubernetes.io/job-completion-index']" },
                      },
                    },
                    { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                    {
                      name: 'CPU_MILLIS',
                      valueFrom: { resourceFieldRef: { resource: 'requests.cpu', divisor: '1m' } },
                    },
                  ],
                },
              ),
            ],
          },
        },
      },
    };
    await batch().createNamespacedJob({ namespace: 'indexed', body: job });
    expect(await eventually('job "three" to finish', () => jobCondition('indexed', 'three'))).toBe('Complete');

    const pods = await podsOfJob('indexed', 'three');
    expect(pods.map(indexOf).sort()).toEqual(['0', '1', '2']);
    for (const pod of pods) {
      const index = indexOf(pod);
      const name = pod.metadata?.name ?? '';
      // An Indexed Job's pod is named <job>-<index>-<random> and has the hostname <job>-<index>.
      expect(await cluster().podLogs('indexed', name)).toBe(
        `index=${index} annotation=${index} pod=${name} cpu=100 ns=indexed host=three-${index}\n`,
      );
      expect(pod.status?.phase).toBe('Succeeded');
      expect(pod.status?.containerStatuses?.[0]?.state?.terminated).toMatchObject({
        exitCode: 0,
        reason: 'Completed',
        message: `shard ${index} done\n`,
      });
    }
  });

  it('retries a failing index per backoffLimitPerIndex and fails only the index that keeps failing', async () => {
    await cluster().createNamespace('per-index');
    await batch().createNamespacedJob({
      namespace: 'per-index',
      body: {
        metadata: { name: 'flaky' },
        spec: {
          completions: 3,
          parallelism: 3,
          completionMode: 'Indexed',
          backoffLimitPerIndex: 1,
          template: {
            spec: {
              restartPolicy: 'Never',
              // A hostPath shared by both nodes (they see the host's file system outside their private paths).
              volumes: [
                { name: 'state', hostPath: { path: `${cluster().dir}/flaky-state`, type: 'DirectoryOrCreate' } },
              ],
              containers: [
                shell(
                  'work',
                  [
                    'echo "try of index $JOB_COMPLETION_INDEX"',
                    '[ "$JOB_COMPLETION_INDEX" = 2 ] && { echo "index 2 cannot work" >&2; exit 3; }',
                    'if [ "$JOB_COMPLETION_INDEX" = 1 ] && [ ! -e /state/tried ]; then touch /state/tried; exit 4; fi',
                    'exit 0',
                  ].join('\n'),
                  {
                    volumeMounts: [{ name: 'state', mountPath: '/state' }],
                    terminationMessagePolicy: 'FallbackToLogsOnError',
                  },
                ),
              ],
            },
          },
        },
      },
    });
    expect(await eventually('job "flaky" to finish', () => jobCondition('per-index', 'flaky'), 120_000)).toBe('Failed');
    const job = await batch().readNamespacedJob({ namespace: 'per-index', name: 'flaky' });
    expect(job.status?.completedIndexes).toBe('0,1');
    expect(job.status?.failedIndexes).toBe('2');
    const pods = await podsOfJob('per-index', 'flaky');
    const tries = (i: string) => pods.filter((p) => indexOf(p) === i);
    expect(tries('0').map((p) => p.status?.phase)).toEqual(['Succeeded']);
    expect(
      tries('1')
        .map((p) => p.status?.phase)
        .sort(),
    ).toEqual(['Failed', 'Succeeded']);
    expect(tries('2').map((p) => p.status?.phase)).toEqual(['Failed', 'Failed']);
    const failed = tries('2')[0]?.status?.containerStatuses?.[0]?.state?.terminated;
    expect(failed).toMatchObject({ exitCode: 3, reason: 'Error' });
    expect(failed?.message).toContain('index 2 cannot work');
  });

  it('refuses a ServiceAccount without a Role (RBAC), and allows it once a RoleBinding grants the verb', async () => {
    await cluster().createNamespace('rbac');
    await core().createNamespacedServiceAccount({ namespace: 'rbac', body: { metadata: { name: 'nobody' } } });
    const token =
      (
        await core().createNamespacedServiceAccountToken({
          namespace: 'rbac',
          name: 'nobody',
          body: { spec: { audiences: [] } },
        })
      ).status?.token ?? '';
    const asNobody = new KubeConfig();
    asNobody.loadFromOptions({
      clusters: [{ name: 'c', server: cluster().apiserverUrl, caData: cluster().kc.getCurrentCluster()?.caData }],
      users: [{ name: 'nobody', token }],
      contexts: [{ name: 'c', cluster: 'c', user: 'nobody' }],
      currentContext: 'c',
    });
    const list = () => asNobody.makeApiClient(CoreV1Api).listNamespacedPod({ namespace: 'rbac' });
    const refused = await list().then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(apiStatus(refused)).toBe(403);
    expect(String((refused as ApiException<string>).body)).toContain('system:serviceaccount:rbac:nobody');

    const rbac = cluster().kc.makeApiClient(RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({
      namespace: 'rbac',
      body: {
        metadata: { name: 'pod-reader' },
        rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['list'] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: 'rbac',
      body: {
        metadata: { name: 'nobody-reads-pods' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'pod-reader' },
        subjects: [{ kind: 'ServiceAccount', name: 'nobody', namespace: 'rbac' }],
      },
    });
    await eventually('the RoleBinding to take effect', async () => (await list()).items !== undefined);
  });

  it('refuses a custom object that breaks its CRD OpenAPI schema', async () => {
    const ext = cluster().kc.makeApiClient(ApiextensionsV1Api);
    await ext.createCustomResourceDefinition({
      body: {
        metadata: { name: 'widgets.harness.test.dev' },
        spec: {
          group: 'harness.test.dev',
          scope: 'Namespaced',
          names: { plural: 'widgets', singular: 'widget', kind: 'Widget' },
          versions: [
            {
              name: 'v1',
              served: true,
              storage: true,
              schema: {
                openAPIV3Schema: {
                  type: 'object',
                  properties: {
                    spec: {
                      type: 'object',
                      required: ['size'],
                      properties: { size: { type: 'integer', minimum: 1 } },
                    },
                  },
                },
              },
            },
          ],
        },
      },
    });
    await eventually('the CRD to be established', async () => {
      const crd = await ext.readCustomResourceDefinition({ name: 'widgets.harness.test.dev' });
      return crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
    });
    const objects = cluster().kc.makeApiClient(CustomObjectsApi);
    const create = (name: string, spec: unknown) =>
      objects.createNamespacedCustomObject({
        group: 'harness.test.dev',
        version: 'v1',
        namespace: 'default',
        plural: 'widgets',
        body: { apiVersion: 'harness.test.dev/v1', kind: 'Widget', metadata: { name }, spec },
      });
    // The CRD's discovery can lag its Established condition by a moment: retry until the API answers at all.
    const invalid = await eventually('the invalid widget to be judged', async () => {
      const err = await create('bad', { size: 0 }).then(
        () => undefined,
        (e: unknown) => e,
      );
      return apiStatus(err) === 404 ? undefined : (err ?? new Error('accepted'));
    });
    expect(apiStatus(invalid)).toBe(422);
    expect(String((invalid as ApiException<string>).body)).toContain('spec.size');
    await expect(create('good', { size: 3 })).resolves.toBeDefined();
  });

  it('works with the installed kubectl (logs included, through the kubelet) and the pinned helm', async () => {
    const nodes = await cluster().kubectl(['get', 'nodes', '-o', 'name']);
    expect(nodes).toMatchObject({ code: 0, stdout: 'node/node-1\nnode/node-2\n' });
    const version = await cluster().kubectl(['version', '-o', 'json']);
    expect(JSON.parse(version.stdout).serverVersion.gitVersion).toBe('v1.34.4');
    await createPod('default', 'hello', { containers: [shell('main', 'echo hello from a real container')] });
    await finished('default', 'hello');
    expect(await cluster().kubectl(['logs', 'hello'])).toMatchObject({
      code: 0,
      stdout: 'hello from a real container\n',
    });
    const helm = await cluster().helm(['version', '--short']);
    expect(helm.code).toBe(0);
    expect(helm.stdout).toMatch(/^v3\.19\.5/);
  });

  it('gives pods the in-cluster config: the real client library reaches the API server through the kubernetes Service', async () => {
    await cluster().createNamespace('incluster');
    await core().createNamespacedServiceAccount({ namespace: 'incluster', body: { metadata: { name: 'reader' } } });
    const rbac = cluster().kc.makeApiClient(RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({
      namespace: 'incluster',
      body: {
        metadata: { name: 'pod-reader' },
        rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list'] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: 'incluster',
      body: {
        metadata: { name: 'reader' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'pod-reader' },
        subjects: [{ kind: 'ServiceAccount', name: 'reader', namespace: 'incluster' }],
      },
    });
    // @kubernetes/client-node from this work tree (a read-only hostPath), run by the node image's Node.js: it reads
    // KUBERNETES_SERVICE_HOST/PORT (10.0.0.1:443, kube-proxy's DNAT to the API server), the token and the CA.
    const script = [
      "import { KubeConfig, CoreV1Api } from '@kubernetes/client-node';",
      'const kc = new KubeConfig(); kc.loadFromCluster();',
      "const me = await kc.makeApiClient(CoreV1Api).readNamespacedPod({ namespace: 'incluster', name: process.env.POD_NAME });",
      "console.log('I am ' + me.metadata.name + ' as ' + me.spec.serviceAccountName + ' via ' + kc.getCurrentCluster().server);",
    ].join('\n');
    await createPod('incluster', 'whoami', {
      serviceAccountName: 'reader',
      volumes: [{ name: 'repo', hostPath: { path: REPO_ROOT, type: 'Directory' } }],
      containers: [
        {
          name: 'main',
          image: NODE_IMAGE,
          imagePullPolicy: 'Never',
          workingDir: '/repo',
          args: ['--input-type=module', '-e', script],
          env: [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
          volumeMounts: [{ name: 'repo', mountPath: '/repo', readOnly: true }],
        },
      ],
    });
    const pod = await finished('incluster', 'whoami', 90_000);
    const log = await cluster().podLogs('incluster', 'whoami');
    expect(pod.status?.phase, log).toBe('Succeeded');
    expect(log).toContain('I am whoami as reader via https://10.0.0.1:443');
  });

  it('evicts a pod as a drain does: DisruptionTarget, SIGTERM to the container, then the pod object is gone', async () => {
    await cluster().createNamespace('evict');
    await createPod('evict', 'sleeper', {
      terminationGracePeriodSeconds: 30,
      containers: [
        shell('main', 'trap "echo got SIGTERM; sleep 2; exit 0" TERM; echo started; while :; do sleep 0.1; done'),
      ],
    });
    await eventually(
      'sleeper to run',
      async () =>
        (await readPod('evict', 'sleeper')).status?.phase === 'Running' &&
        (await cluster().podLogs('evict', 'sleeper')).includes('started'),
    );
    await cluster().evictPod('evict', 'sleeper');
    const terminating = await readPod('evict', 'sleeper');
    expect(terminating.metadata?.deletionTimestamp).toBeDefined();
    expect(terminating.status?.conditions).toContainEqual(
      expect.objectContaining({ type: 'DisruptionTarget', status: 'True', reason: 'EvictionByEvictionAPI' }),
    );
    // The container's trap runs for two seconds before it exits: its log says the kubelet sent SIGTERM.
    await eventually('the container to log SIGTERM', async () =>
      (await cluster().podLogs('evict', 'sleeper')).includes('got SIGTERM'),
    );
    await eventually(
      'the evicted pod object to be deleted',
      async () =>
        apiStatus(
          await readPod('evict', 'sleeper').then(
            () => undefined,
            (e: unknown) => e,
          ),
        ) === 404,
    );
  });

  it('leaves a pod whose image is not on the node waiting: ErrImageNeverPull, or ErrImagePull then ImagePullBackOff', async () => {
    await createPod('default', 'never-pull', {
      containers: [{ name: 'main', image: 'localhost/mco-test/absent:1', imagePullPolicy: 'Never' }],
    });
    await createPod('default', 'try-pull', {
      containers: [{ name: 'main', image: 'registry.invalid/absent:1', imagePullPolicy: 'IfNotPresent' }],
    });
    const waiting = (name: string, reasons: string[]) =>
      eventually(
        `${name} waiting with ${reasons.join('/')}`,
        async () => {
          const pod = await readPod('default', name);
          const w = pod.status?.containerStatuses?.[0]?.state?.waiting;
          return w && reasons.includes(w.reason ?? '') ? { phase: pod.status?.phase, ...w } : undefined;
        },
        90_000,
      );
    expect(await waiting('never-pull', ['ErrImageNeverPull'])).toMatchObject({
      phase: 'Pending',
      message: expect.stringContaining('localhost/mco-test/absent:1'),
    });
    expect(await waiting('try-pull', ['ErrImagePull', 'ImagePullBackOff'])).toMatchObject({ phase: 'Pending' });
    await eventually(
      'try-pull to back off',
      async () =>
        (await readPod('default', 'try-pull')).status?.containerStatuses?.[0]?.state?.waiting?.reason ===
        'ImagePullBackOff',
      90_000,
    );
  });

  it('enforces the security context: runAsNonRoot refuses a root image, readOnlyRootFilesystem refuses writes', async () => {
    await cluster().createNamespace('security');
    await createPod('security', 'root-image', {
      securityContext: { runAsNonRoot: true },
      containers: [shell('main', 'id -u')],
    });
    const refused = await eventually('the kubelet to refuse root-image', async () => {
      const w = (await readPod('security', 'root-image')).status?.containerStatuses?.[0]?.state?.waiting;
      return w?.reason === 'CreateContainerConfigError' ? w : undefined;
    });
    expect(refused.message).toContain('runAsNonRoot and image will run as root');

    await createPod('security', 'read-only', {
      // As the operator's runner pods ask: seccomp's RuntimeDefault profile is applied by runc.
      securityContext: {
        runAsNonRoot: true,
        runAsUser: 1000,
        runAsGroup: 1000,
        seccompProfile: { type: 'RuntimeDefault' },
      },
      volumes: [{ name: 'scratch', emptyDir: {} }],
      containers: [
        shell(
          'main',
          'id -u; grep -E "^(Seccomp|NoNewPrivs|CapEff):" /proc/self/status; ' +
            'touch /written-root || echo "root fs refused"; touch /scratch/ok && echo "emptyDir writable"',
          {
            securityContext: {
              readOnlyRootFilesystem: true,
              allowPrivilegeEscalation: false,
              capabilities: { drop: ['ALL'] },
            },
            volumeMounts: [{ name: 'scratch', mountPath: '/scratch' }],
          },
        ),
      ],
    });
    expect((await finished('security', 'read-only')).status?.phase).toBe('Succeeded');
    const log = await cluster().podLogs('security', 'read-only');
    // stdout and stderr reach the log through two pipes: their lines' order between the streams is not kept (CI saw
    // touch's complaint on stderr before the uid on stdout), so each line is looked for on its own.
    expect(log).toMatch(/^1000$/m);
    expect(log).toMatch(/NoNewPrivs:\s+1\n/);
    expect(log).toMatch(/Seccomp:\s+2\n/); // filter mode
    expect(log).toMatch(/CapEff:\s+0+\n/);
    expect(log).toContain('touch: /written-root: Read-only file system\n');
    expect(log).toContain('root fs refused\n');
    expect(log).toContain('emptyDir writable\n');
  });

  it('enforces limits: over its memory limit a container is OOMKilled, its CPU limit is a CFS quota', async () => {
    await cluster().createNamespace('limits');
    // busybox tail keeps a line without newline in memory: /dev/zero is one endless line.
    await createPod('limits', 'hog', {
      containers: [
        shell('main', 'tail /dev/zero', {
          resources: { requests: { cpu: '100m', memory: '32Mi' }, limits: { memory: '32Mi' } },
        }),
      ],
    });
    const hog = await finished('limits', 'hog', 90_000);
    expect(hog.status?.containerStatuses?.[0]?.state?.terminated).toMatchObject({ reason: 'OOMKilled', exitCode: 137 });

    await createPod('limits', 'quota', {
      containers: [
        shell(
          'main',
          'echo "quota=$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) period=$(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)"',
          {
            resources: { requests: { cpu: '100m', memory: '32Mi' }, limits: { cpu: '250m', memory: '64Mi' } },
          },
        ),
      ],
    });
    await finished('limits', 'quota');
    expect(await cluster().podLogs('limits', 'quota')).toBe('quota=25000 period=100000\n');
  });

  it('connects pods across nodes (pod IPs and a ClusterIP Service) and to a host server through a selector-less Service', async () => {
    await cluster().createNamespace('net');
    await createPod(
      'net',
      'server',
      {
        nodeName: 'node-1',
        containers: [
          shell('main', 'while :; do echo "hello from $(hostname)" | nc -l -p 8080; done', {
            ports: [{ containerPort: 8080 }],
          }),
        ],
      },
      { app: 'server' },
    );
    const server = await eventually('server to run', async () => {
      const p = await readPod('net', 'server');
      return p.status?.phase === 'Running' && p.status.podIP ? p : undefined;
    });
    const svc = await core().createNamespacedService({
      namespace: 'net',
      body: {
        metadata: { name: 'server' },
        spec: { selector: { app: 'server' }, ports: [{ port: 80, targetPort: 8080 }] },
      },
    });

    const host = net.createServer((socket) => socket.end('hello from the host\n'));
    await new Promise<void>((resolve) => host.listen(0, cluster().hostAddress, resolve));
    try {
      const hostPort = (host.address() as net.AddressInfo).port;
      const exposed = await cluster().exposeHostService('net', 'host-db', hostPort);
      expect(exposed.clusterIP).toMatch(/^10\.0\.0\.\d+$/);
      // Retried inside the pod: kube-proxy programs a new Service within its sync period.
      const fetch = (target: string) =>
        `for i in $(seq 50); do r="$(nc -w 2 ${target} </dev/null)" && [ -n "$r" ] && break; sleep 0.2; done; echo "${target} says: $r"`;
      await createPod('net', 'client', {
        nodeName: 'node-2',
        containers: [
          shell(
            'main',
            [
              fetch(`${server.status?.podIP} 8080`),
              fetch(`${svc.spec?.clusterIP} 80`),
              fetch(`${exposed.clusterIP} ${exposed.port}`),
            ].join('\n'),
          ),
        ],
      });
      await finished('net', 'client', 90_000);
      const log = await cluster().podLogs('net', 'client');
      expect(log).toContain(`${server.status?.podIP} 8080 says: hello from server`);
      expect(log).toContain(`${svc.spec?.clusterIP} 80 says: hello from server`);
      expect(log).toContain(`${exposed.clusterIP} ${exposed.port} says: hello from the host`);
    } finally {
      host.close();
    }
  });

  it('measures pod start: create → Running on a warm node', async () => {
    await cluster().createNamespace('timing');
    const t = Date.now();
    await createPod('timing', 'quick', { containers: [shell('main', 'sleep 30')] });
    await eventually('quick to run', async () => (await readPod('timing', 'quick')).status?.phase === 'Running');
    const ms = Date.now() - t;
    console.log(`pod create → Running: ${ms} ms`);
    expect(ms).toBeLessThan(30_000);
  });
});
