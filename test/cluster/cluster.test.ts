import path from 'node:path';
import net from 'node:net';
import { expect, it } from 'vitest';
import {
  ApiException, ApiextensionsV1Api, BatchV1Api, CoreV1Api, CustomObjectsApi, KubeConfig, RbacAuthorizationV1Api,
  type V1Job, type V1Pod,
} from '@kubernetes/client-node';
import { REPO_ROOT } from './binaries.js';
import { projectImages, SHELL_IMAGE, shellImages } from './images.js';
import { describeWithCluster, eventually, useCluster } from './vitest.js';

/** A node image for pods that use the real client library (in-cluster config) from this repository. */
const NODE_IMAGE = 'test.local/node';

function apiStatus(err: unknown): number | undefined {
  return err instanceof ApiException ? err.code : undefined;
}

describeWithCluster('test control plane with the process kubelet', () => {
  const cluster = useCluster({
    images: { ...projectImages(REPO_ROOT), ...shellImages, [NODE_IMAGE]: { entrypoint: [process.execPath], workingDir: REPO_ROOT } },
    nodes: [{ name: 'node-1', cpu: '4', memory: '8Gi' }],
  });
  const core = () => cluster().kc.makeApiClient(CoreV1Api);
  const batch = () => cluster().kc.makeApiClient(BatchV1Api);

  const podsOfJob = async (ns: string, job: string): Promise<V1Pod[]> =>
    (await core().listNamespacedPod({ namespace: ns, labelSelector: `job-name=${job}` })).items;
  const jobCondition = async (ns: string, name: string): Promise<string | undefined> => {
    const job = await batch().readNamespacedJob({ namespace: ns, name });
    return job.status?.conditions?.find((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True')?.type;
  };
  const indexOf = (pod: V1Pod) => pod.metadata?.annotations?.['batch.kubernetes.io/job-completion-index'];

  it('runs an Indexed Job as real processes, each seeing its own completion index, and completes it', async () => {
    await cluster().createNamespace('indexed');
    const job: V1Job = {
      metadata: { name: 'three' },
      spec: {
        completions: 3, parallelism: 3, completionMode: 'Indexed', backoffLimit: 0,
        template: {
          spec: {
            restartPolicy: 'Never',
            containers: [{
              name: 'work',
              image: SHELL_IMAGE,
              command: ['/bin/sh', '-c'],
              // `$$` is the kubelet's escape for `$`, so the shell sees `$$` (its pid).
              args: ['echo "index=$JOB_COMPLETION_INDEX annotation=$FROM_ANNOTATION pod=$POD_NAME cpu=$CPU_MILLIS ns=$(cat ' +
                '/var/run/secrets/kubernetes.io/serviceaccount/namespace) pid=$$$$"; echo "shard $JOB_COMPLETION_INDEX done" > /dev/termination-log'],
              env: [
                { name: 'FROM_ANNOTATION', valueFrom: { fieldRef: { fieldPath: "metadata.annotations['batch.kubernetes.io/job-completion-index']" } } },
                { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                { name: 'CPU_MILLIS', valueFrom: { resourceFieldRef: { resource: 'requests.cpu', divisor: '1m' } } },
              ],
              resources: { requests: { cpu: '250m', memory: '64Mi' } },
            }],
          },
        },
      },
    };
    await batch().createNamespacedJob({ namespace: 'indexed', body: job });
    expect(await eventually('job "three" to finish', () => jobCondition('indexed', 'three'))).toBe('Complete');

    const pods = await podsOfJob('indexed', 'three');
    expect(pods.map(indexOf).sort()).toEqual(['0', '1', '2']);
    const pids = new Set<string>();
    for (const pod of pods) {
      const index = indexOf(pod);
      const name = pod.metadata?.name ?? '';
      const log = cluster().podLogs('indexed', name);
      expect(log).toContain(`index=${index} annotation=${index} pod=${name} cpu=250 ns=indexed`);
      pids.add(/pid=(\d+)/.exec(log)?.[1] ?? '');
      expect(pod.status?.phase).toBe('Succeeded');
      const terminated = pod.status?.containerStatuses?.[0]?.state?.terminated;
      expect(terminated).toMatchObject({ exitCode: 0, reason: 'Completed', message: `shard ${index} done\n` });
    }
    expect(pids.size).toBe(3);
  });

  it('retries a failing index per backoffLimitPerIndex and fails only the index that keeps failing', async () => {
    await cluster().createNamespace('per-index');
    await batch().createNamespacedJob({
      namespace: 'per-index',
      body: {
        metadata: { name: 'flaky' },
        spec: {
          completions: 3, parallelism: 3, completionMode: 'Indexed', backoffLimitPerIndex: 1,
          template: {
            spec: {
              restartPolicy: 'Never',
              volumes: [{ name: 'scratch', emptyDir: {} }, { name: 'state', hostPath: { path: `${cluster().dir}/flaky-state`, type: 'DirectoryOrCreate' } }],
              containers: [{
                name: 'work',
                image: SHELL_IMAGE,
                // Index 1 fails on its first try only; index 2 always fails.
                command: ['/bin/sh', '-c', [
                  'echo "try of index $JOB_COMPLETION_INDEX"',
                  '[ "$JOB_COMPLETION_INDEX" = 2 ] && { echo "index 2 cannot work" >&2; exit 3; }',
                  'if [ "$JOB_COMPLETION_INDEX" = 1 ] && [ ! -e /state/tried ]; then touch /state/tried; exit 4; fi',
                  'exit 0',
                ].join('\n')],
                volumeMounts: [{ name: 'state', mountPath: '/state' }, { name: 'scratch', mountPath: '/scratch' }],
                terminationMessagePolicy: 'FallbackToLogsOnError',
              }],
            },
          },
        },
      },
    });
    expect(await eventually('job "flaky" to finish', () => jobCondition('per-index', 'flaky'), 90_000)).toBe('Failed');
    const job = await batch().readNamespacedJob({ namespace: 'per-index', name: 'flaky' });
    expect(job.status?.completedIndexes).toBe('0,1');
    expect(job.status?.failedIndexes).toBe('2');
    const pods = await podsOfJob('per-index', 'flaky');
    const tries = (i: string) => pods.filter((p) => indexOf(p) === i);
    expect(tries('0').map((p) => p.status?.phase)).toEqual(['Succeeded']);
    expect(tries('1').map((p) => p.status?.phase).sort()).toEqual(['Failed', 'Succeeded']);
    expect(tries('2').map((p) => p.status?.phase)).toEqual(['Failed', 'Failed']);
    const failed = tries('2')[0]?.status?.containerStatuses?.[0]?.state?.terminated;
    expect(failed).toMatchObject({ exitCode: 3, reason: 'Error' });
    expect(failed?.message).toContain('index 2 cannot work');
  });

  it('refuses a ServiceAccount without a Role (RBAC), and allows it once a RoleBinding grants the verb', async () => {
    await cluster().createNamespace('rbac');
    await core().createNamespacedServiceAccount({ namespace: 'rbac', body: { metadata: { name: 'nobody' } } });
    const token = (await core().createNamespacedServiceAccountToken({
      namespace: 'rbac', name: 'nobody', body: { spec: { audiences: [] } },
    })).status?.token ?? '';
    const asNobody = new KubeConfig();
    asNobody.loadFromOptions({
      clusters: [{ name: 'c', server: cluster().apiserverUrl, caData: cluster().kc.getCurrentCluster()?.caData }],
      users: [{ name: 'nobody', token }],
      contexts: [{ name: 'c', cluster: 'c', user: 'nobody' }],
      currentContext: 'c',
    });
    const list = () => asNobody.makeApiClient(CoreV1Api).listNamespacedPod({ namespace: 'rbac' });
    const refused = await list().then(() => undefined, (err: unknown) => err);
    expect(apiStatus(refused)).toBe(403);
    expect(String((refused as ApiException<string>).body)).toContain('system:serviceaccount:rbac:nobody');

    const rbac = cluster().kc.makeApiClient(RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({ namespace: 'rbac', body: {
      metadata: { name: 'pod-reader' }, rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['list'] }],
    } });
    await rbac.createNamespacedRoleBinding({ namespace: 'rbac', body: {
      metadata: { name: 'nobody-reads-pods' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'pod-reader' },
      subjects: [{ kind: 'ServiceAccount', name: 'nobody', namespace: 'rbac' }],
    } });
    await eventually('the RoleBinding to take effect', async () => (await list()).items !== undefined);
  });

  it('refuses a custom object that breaks its CRD OpenAPI schema', async () => {
    const ext = cluster().kc.makeApiClient(ApiextensionsV1Api);
    await ext.createCustomResourceDefinition({ body: {
      metadata: { name: 'widgets.harness.test.dev' },
      spec: {
        group: 'harness.test.dev', scope: 'Namespaced',
        names: { plural: 'widgets', singular: 'widget', kind: 'Widget' },
        versions: [{
          name: 'v1', served: true, storage: true,
          schema: { openAPIV3Schema: { type: 'object', properties: { spec: {
            type: 'object', required: ['size'], properties: { size: { type: 'integer', minimum: 1 } },
          } } } },
        }],
      },
    } });
    await eventually('the CRD to be established', async () => {
      const crd = await ext.readCustomResourceDefinition({ name: 'widgets.harness.test.dev' });
      return crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
    });
    const objects = cluster().kc.makeApiClient(CustomObjectsApi);
    const create = (name: string, spec: unknown) => objects.createNamespacedCustomObject({
      group: 'harness.test.dev', version: 'v1', namespace: 'default', plural: 'widgets',
      body: { apiVersion: 'harness.test.dev/v1', kind: 'Widget', metadata: { name }, spec },
    });
    // The CRD's discovery can lag its Established condition by a moment: retry until the API answers at all.
    const invalid = await eventually('the invalid widget to be judged', async () => {
      const err = await create('bad', { size: 0 }).then(() => undefined, (e: unknown) => e);
      return apiStatus(err) === 404 ? undefined : err ?? new Error('accepted');
    });
    expect(apiStatus(invalid)).toBe(422);
    expect(String((invalid as ApiException<string>).body)).toContain('spec.size');
    await expect(create('good', { size: 3 })).resolves.toBeDefined();
  });

  it('works with the installed kubectl through the written kubeconfig', async () => {
    const nodes = await cluster().kubectl(['get', 'nodes', '-o', 'name']);
    expect(nodes).toMatchObject({ code: 0, stdout: 'node/node-1\n' });
    const version = await cluster().kubectl(['version', '-o', 'json']);
    expect(JSON.parse(version.stdout).serverVersion.gitVersion).toBe('v1.34.4');
  });

  it('runs the pinned helm', async () => {
    const version = await cluster().helm(['version', '--short']);
    expect(version.code).toBe(0);
    expect(version.stdout).toMatch(/^v3\.19\.5/);
  });

  it('gives pods the in-cluster config the real client library reads (token, CA, namespace, service env)', async () => {
    await cluster().createNamespace('incluster');
    await core().createNamespacedServiceAccount({ namespace: 'incluster', body: { metadata: { name: 'reader' } } });
    const rbac = cluster().kc.makeApiClient(RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({ namespace: 'incluster', body: {
      metadata: { name: 'pod-reader' }, rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list'] }],
    } });
    await rbac.createNamespacedRoleBinding({ namespace: 'incluster', body: {
      metadata: { name: 'reader' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'pod-reader' },
      subjects: [{ kind: 'ServiceAccount', name: 'reader', namespace: 'incluster' }],
    } });
    const script = [
      "import { KubeConfig, CoreV1Api } from '@kubernetes/client-node';",
      'const kc = new KubeConfig(); kc.loadFromCluster();',
      "const me = await kc.makeApiClient(CoreV1Api).readNamespacedPod({ namespace: 'incluster', name: process.env.POD_NAME });",
      "console.log('I am ' + me.metadata.name + ' as ' + me.spec.serviceAccountName);",
    ].join('\n');
    await core().createNamespacedPod({ namespace: 'incluster', body: {
      metadata: { name: 'whoami' },
      spec: {
        serviceAccountName: 'reader', restartPolicy: 'Never',
        containers: [{
          name: 'main', image: NODE_IMAGE, args: ['--input-type=module', '-e', script],
          env: [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
        }],
      },
    } });
    const phase = await eventually('pod whoami to finish', async () => {
      const p = (await core().readNamespacedPod({ namespace: 'incluster', name: 'whoami' })).status?.phase;
      return p === 'Succeeded' || p === 'Failed' ? p : undefined;
    });
    expect(cluster().podLogs('incluster', 'whoami')).toContain('I am whoami as reader');
    expect(phase).toBe('Succeeded');
  });

  it('evicts a pod as a drain does: DisruptionTarget, SIGTERM to the process, then the pod object is gone', async () => {
    await cluster().createNamespace('evict');
    await core().createNamespacedPod({ namespace: 'evict', body: {
      metadata: { name: 'sleeper' },
      spec: {
        restartPolicy: 'Never', terminationGracePeriodSeconds: 30,
        containers: [{
          name: 'main', image: SHELL_IMAGE,
          command: ['/bin/sh', '-c', 'trap "echo got SIGTERM; exit 0" TERM; echo started; while :; do sleep 0.1; done'],
        }],
      },
    } });
    await eventually('sleeper to run', async () => {
      const pod = await core().readNamespacedPod({ namespace: 'evict', name: 'sleeper' });
      return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')
        && cluster().podLogs('evict', 'sleeper').includes('started');
    });
    let sawDisruption = false;
    const watchCondition = setInterval(() => {
      void core().readNamespacedPod({ namespace: 'evict', name: 'sleeper' }).then((pod) => {
        if (pod.status?.conditions?.some((c) => c.type === 'DisruptionTarget' && c.status === 'True')) sawDisruption = true;
      }, () => {});
    }, 50);
    try {
      await cluster().evictPod('evict', 'sleeper');
      const pod = await core().readNamespacedPod({ namespace: 'evict', name: 'sleeper' }).catch(() => undefined);
      if (pod?.status?.conditions?.some((c) => c.type === 'DisruptionTarget' && c.status === 'True')) sawDisruption = true;
      await eventually('the evicted pod object to be deleted', async () => {
        const err = await core().readNamespacedPod({ namespace: 'evict', name: 'sleeper' }).then(() => undefined, (e: unknown) => e);
        return apiStatus(err) === 404;
      });
    } finally {
      clearInterval(watchCondition);
    }
    expect(sawDisruption).toBe(true);
    expect(cluster().podLogs('evict', 'sleeper')).toContain('got SIGTERM');
  });

  it('schedules by requests: a pod too big for every node waits until a bigger node is added', async () => {
    await cluster().createNamespace('scale');
    await core().createNamespacedPod({ namespace: 'scale', body: {
      metadata: { name: 'big' },
      spec: {
        restartPolicy: 'Never',
        containers: [{ name: 'main', image: SHELL_IMAGE, command: ['/bin/sh', '-c', 'echo ran on $NODE'],
          env: [{ name: 'NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } }],
          resources: { requests: { cpu: '6' } } }],
      },
    } });
    await eventually('the scheduler to report big as unschedulable', async () => {
      const pod = await core().readNamespacedPod({ namespace: 'scale', name: 'big' });
      return pod.status?.conditions?.some((c) => c.type === 'PodScheduled' && c.reason === 'Unschedulable');
    });
    await cluster().addNode({ name: 'node-big', cpu: '8', memory: '16Gi' });
    await eventually('big to run to completion', async () =>
      (await core().readNamespacedPod({ namespace: 'scale', name: 'big' })).status?.phase === 'Succeeded');
    expect(cluster().podLogs('scale', 'big')).toContain('ran on node-big');
    await cluster().removeNode('node-big');
    await expect(core().readNode({ name: 'node-big' }).then(() => 200, apiStatus)).resolves.toBe(404);
  });

  it('drains a node as an autoscaler scale-down does: cordoned, its pods evicted, then removed', async () => {
    await cluster().createNamespace('drain');
    await cluster().addNode({ name: 'node-drain', labels: { pool: 'drain' } });
    await core().createNamespacedPod({ namespace: 'drain', body: {
      metadata: { name: 'worker' },
      spec: {
        restartPolicy: 'Never', nodeSelector: { pool: 'drain' },
        containers: [{ name: 'main', image: SHELL_IMAGE,
          command: ['/bin/sh', '-c', 'trap "echo drained; exit 143" TERM; echo working; while :; do sleep 0.1; done'] }],
      },
    } });
    await eventually('worker to run on node-drain', async () => cluster().podLogs('drain', 'worker').includes('working'));
    await cluster().drainNode('node-drain');
    expect((await core().readNode({ name: 'node-drain' })).spec?.unschedulable).toBe(true);
    await eventually('the drained pod object to be deleted', async () =>
      apiStatus(await core().readNamespacedPod({ namespace: 'drain', name: 'worker' }).then(() => undefined, (e: unknown) => e)) === 404);
    expect(cluster().podLogs('drain', 'worker')).toContain('drained');
    await cluster().removeNode('node-drain');
  });

  it('leaves a pod with an image outside the table Pending with ErrImagePull and a clear message', async () => {
    await core().createNamespacedPod({ namespace: 'default', body: {
      metadata: { name: 'unknown-image' },
      spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'docker.io/library/busybox:1.36' }] },
    } });
    const waiting = await eventually('the pull error', async () => {
      const pod = await core().readNamespacedPod({ namespace: 'default', name: 'unknown-image' });
      return pod.status?.containerStatuses?.[0]?.state?.waiting?.reason === 'ErrImagePull' ? pod : undefined;
    });
    expect(waiting.status?.phase).toBe('Pending');
    expect(waiting.status?.containerStatuses?.[0]?.state?.waiting?.message).toContain('docker.io/library/busybox:1.36');
  });

  it('runs the project image from its own files at /app, which no volume of the pod can hide', async () => {
    // An emptyDir over the directory that holds the work tree (/tmp for a clone under /tmp, as a runner pod's /tmp
    // emptyDir is): the image's files are mounted before the volumes, so the CLI still starts.
    const hidden = path.dirname(REPO_ROOT);
    await core().createNamespacedPod({ namespace: 'default', body: {
      metadata: { name: 'project-image' },
      spec: {
        restartPolicy: 'Never',
        volumes: [{ name: 'scratch', emptyDir: {} }],
        containers: [{
          name: 'main', image: 'ghcr.io/midi-corpus/midi-corpus-operator:0.1.0',
          args: ['plan', '--files', '100', '--files-per-shard', '10', '--cpu', '1', '--max-connections', '20', '--json'],
          volumeMounts: [{ name: 'scratch', mountPath: hidden }],
        }],
      },
    } });
    const pod = await eventually('the project image to finish', async () => {
      const p = await core().readNamespacedPod({ namespace: 'default', name: 'project-image' });
      return p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed' ? p : undefined;
    });
    const log = cluster().podLogs('default', 'project-image');
    expect(pod.status?.phase, log).toBe('Succeeded');
    expect(JSON.parse(log.trim().split('\n').pop()!)).toMatchObject({ shards: 10 });
  });

  it('mounts configMap and secret volumes at their mountPaths, runs as runAsUser, and restarts OnFailure in place', async () => {
    await cluster().createNamespace('volumes');
    await core().createNamespacedConfigMap({ namespace: 'volumes', body: { metadata: { name: 'settings' }, data: { 'mode.txt': 'fast' } } });
    await core().createNamespacedSecret({ namespace: 'volumes', body: { metadata: { name: 'creds' }, stringData: { password: 's3cret' } } });
    await core().createNamespacedPod({ namespace: 'volumes', body: {
      metadata: { name: 'reader' },
      spec: {
        restartPolicy: 'OnFailure',
        securityContext: { runAsUser: 4321, runAsGroup: 4321 },
        volumes: [
          { name: 'settings', configMap: { name: 'settings' } },
          { name: 'creds', secret: { secretName: 'creds', items: [{ key: 'password', path: 'db/password' }] } },
          { name: 'scratch', emptyDir: {} },
        ],
        containers: [{
          name: 'main', image: SHELL_IMAGE,
          command: ['/bin/sh', '-c', [
            'echo "uid=$(id -u) mode=$(cat /etc/app/mode.txt) password=$(cat /etc/creds/db/password)"',
            // The first run fails; the restarted container finds its emptyDir marker and succeeds.
            'if [ ! -e /scratch/first ]; then touch /scratch/first; exit 1; fi',
          ].join('\n')],
          volumeMounts: [
            { name: 'settings', mountPath: '/etc/app', readOnly: true },
            { name: 'creds', mountPath: '/etc/creds', readOnly: true },
            { name: 'scratch', mountPath: '/scratch' },
          ],
        }],
      },
    } });
    const pod = await eventually('reader to succeed', async () => {
      const p = await core().readNamespacedPod({ namespace: 'volumes', name: 'reader' });
      return p.status?.phase === 'Succeeded' ? p : undefined;
    });
    expect(pod.status?.containerStatuses?.[0]).toMatchObject({ restartCount: 1, lastState: { terminated: { exitCode: 1 } } });
    const runs = cluster().podLogs('volumes', 'reader').trim().split('\n');
    expect(runs).toEqual(['uid=4321 mode=fast password=s3cret', 'uid=4321 mode=fast password=s3cret']);
  });

  it('stops every process it started, pods included, and frees the API server port', async () => {
    await core().createNamespacedPod({ namespace: 'default', body: {
      metadata: { name: 'forever' },
      spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: SHELL_IMAGE, command: ['/bin/sh', '-c', 'echo up; sleep 3600'] }] },
    } });
    await eventually('forever to run', async () => cluster().podLogs('default', 'forever').includes('up'));
    const pids = cluster().pids();
    expect(pids.length).toBeGreaterThanOrEqual(5); // etcd, apiserver, controller-manager, scheduler, the pod
    const port = Number(new URL(cluster().apiserverUrl).port);
    await cluster().stop();
    const alive = pids.filter((pid) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    });
    expect(alive).toEqual([]);
    await new Promise<void>((resolve, reject) => {
      const server = net.createServer().once('error', reject).listen(port, '127.0.0.1', () => server.close(() => resolve()));
    });
  });
});
