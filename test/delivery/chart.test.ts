import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { midiCorpusCRD } from '../../controller/api/crd.js';
import { podPolicy } from '../../controller/api/pod-policy.js';
import { clusterSupport, ensureClusterBinaries } from '../cluster/binaries.js';
import { controllerRules, leaderElectionRules, userEditRules, userViewRules } from './rbac.js';
import {
  canonicalRules,
  chartDir,
  deploymentSpec,
  findObject,
  manifestsDir,
  parseObjects,
  run,
  type KubeObject,
} from './support.js';

/**
 * `helm lint` and `helm template` on the chart, with the helm that test/cluster/build.sh builds from its Go module
 * (HELM overrides it). Where that cannot be built (no Go), the suite skips loudly, except under CI=true, where it fails.
 */
const support = clusterSupport();
const skip = !process.env.HELM && !support.ok && process.env.CI !== 'true';
if (skip && !support.ok) console.warn(`SKIPPED chart tests: ${support.reason}; set HELM=/path/to/helm to run them`);

const RELEASE = 'midi-corpus-operator';
const NAMESPACE = 'midi-corpus-system';
const VERSION = (
  JSON.parse(await readFile(path.join(chartDir, '..', '..', 'package.json'), 'utf8')) as { version: string }
).version;
const IMAGE = `ghcr.io/midi-corpus/midi-corpus-operator:${VERSION}`;

let helm: string;
beforeAll(async () => {
  if (skip) return;
  helm = process.env.HELM ?? path.join(await ensureClusterBinaries(), 'helm');
}, 90 * 60_000); // a cold machine builds the control plane and helm first (tens of minutes), once

async function template(...set: string[]): Promise<KubeObject[]> {
  const args = [
    'template',
    RELEASE,
    chartDir,
    '--namespace',
    NAMESPACE,
    '--kube-version',
    KUBE_VERSION,
    ...set.flatMap((s) => ['--set', s]),
  ];
  const { stdout } = await run(helm, args, { maxBuffer: 16 << 20 });
  return parseObjects(stdout);
}

/** The error helm prints when it refuses to render. */
async function refusal(...set: string[]): Promise<string> {
  try {
    await template(...set);
  } catch (e) {
    return String((e as { stderr?: string }).stderr ?? e);
  }
  throw new Error(`helm template accepted ${set.join(' ')}`);
}

/**
 * The Kubernetes version helm renders for. Pinned so the result never depends on how the helm binary was built: a helm
 * built from its Go module without the release's ldflags assumes 1.20, which the chart's kubeVersion refuses.
 */
const KUBE_VERSION = '1.34.0';

const names = (objects: KubeObject[]) => objects.map((o) => `${o.kind}/${o.metadata.name}`).sort();

describe.skipIf(skip)('the Helm chart', () => {
  it('passes helm lint --strict, watching all namespaces or one', async () => {
    for (const set of [[], ['watchNamespace=team-a'], ['metrics.serviceMonitor.enabled=true', 'crds.create=false']]) {
      const { stdout } = await run(helm, [
        'lint',
        '--strict',
        '--kube-version',
        KUBE_VERSION,
        chartDir,
        ...set.flatMap((s) => ['--set', s]),
      ]);
      expect(stdout, set.join(' ')).toContain('0 chart(s) failed');
    }
  });

  it('renders the same set of objects as the kustomize manifests, the Namespace aside', async () => {
    expect(names(await template())).toEqual([
      'ClusterRole/midi-corpus-operator',
      'ClusterRole/midi-corpus-operator-edit',
      'ClusterRole/midi-corpus-operator-view',
      'ClusterRoleBinding/midi-corpus-operator',
      'CustomResourceDefinition/midicorpora.midi.corpus.dev',
      'Deployment/midi-corpus-operator',
      'PodDisruptionBudget/midi-corpus-operator',
      'Role/midi-corpus-operator-leader-election',
      'RoleBinding/midi-corpus-operator-leader-election',
      'Service/midi-corpus-operator-metrics',
      'ServiceAccount/midi-corpus-operator',
      'ValidatingAdmissionPolicy/midi-corpus-operator-pod-policy',
      'ValidatingAdmissionPolicyBinding/midi-corpus-operator-pod-policy',
    ]);
  });

  it('installs the same pod policy as the manifests: the generated one, with the same defaults', async () => {
    const objects = await template();
    const [policy, binding] = podPolicy();
    expect(findObject(objects, 'ValidatingAdmissionPolicy').spec).toEqual(policy.spec);
    expect(findObject(objects, 'ValidatingAdmissionPolicyBinding').spec).toEqual(binding.spec);
  });

  it("fills the pod policy's allow-lists from the values, always allowing the operator's own images", async () => {
    const objects = await template(
      'podPolicy.allowedVolumeTypes={persistentVolumeClaim,hostPath}',
      'podPolicy.allowedImages={registry.example/midi/}',
      'runner.image=registry.example/runner:7',
      'image.repository=mirror.example/mco',
    );
    const [policy] = podPolicy({
      allowedVolumeTypes: ['persistentVolumeClaim', 'hostPath'],
      allowedImages: ['mirror.example/mco', 'registry.example/runner:7', 'registry.example/midi/'],
    });
    expect(findObject(objects, 'ValidatingAdmissionPolicy').spec).toEqual(policy.spec);
  });

  it('names the pod policy after the release, in its messages too, and binds it to the watched namespace only', async () => {
    const { stdout } = await run(
      helm,
      ['template', 'other', chartDir, '--kube-version', KUBE_VERSION, '--set', 'watchNamespace=team-a'],
      { maxBuffer: 16 << 20 },
    );
    const objects = parseObjects(stdout);
    const policy = findObject(objects, 'ValidatingAdmissionPolicy');
    expect(policy.metadata.name).toBe('other-midi-corpus-operator-pod-policy');
    expect(JSON.stringify(policy.spec)).not.toContain('ValidatingAdmissionPolicy midi-corpus-operator-pod-policy');
    expect(JSON.stringify(policy.spec)).toContain('ValidatingAdmissionPolicy other-midi-corpus-operator-pod-policy');
    expect(findObject(objects, 'ValidatingAdmissionPolicyBinding').spec).toEqual({
      policyName: 'other-midi-corpus-operator-pod-policy',
      validationActions: ['Deny'],
      matchResources: { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'team-a' } } },
    });
  });

  it('leaves the pod policy out with podPolicy.enabled=false', async () => {
    const kinds = (await template('podPolicy.enabled=false')).map((o) => o.kind);
    expect(kinds).not.toContain('ValidatingAdmissionPolicy');
    expect(kinds).not.toContain('ValidatingAdmissionPolicyBinding');
  });

  it('installs the generated CRD, kept on uninstall', async () => {
    const crd = findObject(await template(), 'CustomResourceDefinition');
    expect(crd.spec).toEqual(midiCorpusCRD().spec);
    expect(crd.metadata.annotations).toEqual({ 'helm.sh/resource-policy': 'keep' });
    expect(crd.metadata.labels).toMatchObject({
      'app.kubernetes.io/component': 'crd',
      'app.kubernetes.io/managed-by': 'Helm',
    });
  });

  it('leaves the CRD out with crds.create=false, and unprotected with crds.keep=false', async () => {
    expect(names(await template('crds.create=false'))).not.toContain(
      'CustomResourceDefinition/midicorpora.midi.corpus.dev',
    );
    expect(
      findObject(await template('crds.keep=false'), 'CustomResourceDefinition').metadata.annotations,
    ).toBeUndefined();
  });

  it('grants exactly the reviewed rules through a ClusterRole, and the Lease rules in the release namespace', async () => {
    const objects = await template();
    expect(canonicalRules(findObject(objects, 'ClusterRole', RELEASE).rules)).toEqual(canonicalRules(controllerRules));
    const leaderRole = findObject(objects, 'Role');
    expect(leaderRole.metadata.namespace).toBe(NAMESPACE);
    expect(canonicalRules(leaderRole.rules)).toEqual(canonicalRules(leaderElectionRules));
    const subject = { kind: 'ServiceAccount', name: RELEASE, namespace: NAMESPACE };
    expect(findObject(objects, 'ClusterRoleBinding').subjects).toEqual([subject]);
    expect(findObject(objects, 'RoleBinding').subjects).toEqual([subject]);
  });

  it('with watchNamespace, grants the same rules through a Role in that namespace only, and tells the controller', async () => {
    const objects = await template('watchNamespace=team-a');
    // The users' aggregated roles stay (they grant the controller nothing); the controller has nothing cluster-wide.
    expect(names(objects.filter((o) => o.kind === 'ClusterRole' || o.kind === 'ClusterRoleBinding'))).toEqual([
      'ClusterRole/midi-corpus-operator-edit',
      'ClusterRole/midi-corpus-operator-view',
    ]);
    const role = findObject(objects, 'Role', RELEASE);
    expect(role.metadata.namespace).toBe('team-a');
    expect(canonicalRules(role.rules)).toEqual(canonicalRules(controllerRules));
    const binding = findObject(objects, 'RoleBinding', RELEASE);
    expect(binding.metadata.namespace).toBe('team-a');
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: RELEASE, namespace: NAMESPACE }]);
    expect(deploymentSpec(findObject(objects, 'Deployment')).template.spec.containers[0]!.args).toContain(
      '--namespace=team-a',
    );
  });

  it("adds the users' view and edit roles to the built-in view, edit and admin, as the manifests do; none with rbac.aggregatedRoles=false", async () => {
    const objects = await template();
    const { stdout } = await run(process.env.KUBECTL ?? 'kubectl', ['kustomize', manifestsDir], {
      maxBuffer: 16 << 20,
    });
    const manifests = parseObjects(stdout);
    for (const [name, rules, aggregateTo] of [
      ['midi-corpus-operator-view', userViewRules, ['view']],
      ['midi-corpus-operator-edit', userEditRules, ['edit', 'admin']],
    ] as const) {
      for (const role of [findObject(objects, 'ClusterRole', name), findObject(manifests, 'ClusterRole', name)]) {
        expect(canonicalRules(role.rules), name).toEqual(canonicalRules(rules));
        const labels = Object.keys(role.metadata.labels ?? {}).filter((l) => l.includes('aggregate-to-'));
        expect(labels.sort(), name).toEqual(
          aggregateTo.map((r) => `rbac.authorization.k8s.io/aggregate-to-${r}`).sort(),
        );
        for (const l of labels) expect(role.metadata.labels![l]).toBe('true');
      }
    }
    expect(names(await template('rbac.aggregatedRoles=false'))).not.toContain('ClusterRole/midi-corpus-operator-view');
    expect(names(await template('rbac.aggregatedRoles=false'))).not.toContain('ClusterRole/midi-corpus-operator-edit');
  });

  it('runs the controller exactly as the kustomize manifests do: two replicas, same args, env, ports, probes, security', async () => {
    const fromChart = deploymentSpec(findObject(await template(), 'Deployment'));
    const { stdout } = await run(process.env.KUBECTL ?? 'kubectl', ['kustomize', manifestsDir], {
      maxBuffer: 16 << 20,
    });
    const fromManifests = deploymentSpec(findObject(parseObjects(stdout), 'Deployment'));
    expect(fromChart.replicas).toBe(2);
    expect(fromChart.template.spec.securityContext).toEqual(fromManifests.template.spec.securityContext);
    const [chartContainer] = fromChart.template.spec.containers;
    const [manifestContainer] = fromManifests.template.spec.containers;
    expect(chartContainer!.image).toBe(IMAGE);
    // The manifests pass the runner image through $(RUNNER_IMAGE), so kustomize can rewrite it with the image.
    expect(chartContainer!.args).toEqual(manifestContainer!.args!.map((a) => a.replace('$(RUNNER_IMAGE)', IMAGE)));
    const env = Object.fromEntries(
      (chartContainer!.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom?.fieldRef?.fieldPath]),
    );
    expect(env).toEqual({ POD_NAME: 'metadata.name', POD_NAMESPACE: 'metadata.namespace', LOG_LEVEL: 'info' });
    for (const field of ['ports', 'livenessProbe', 'readinessProbe', 'securityContext', 'resources'] as const) {
      expect(chartContainer![field], field).toEqual(manifestContainer![field]);
    }
  });

  it('selects only its own controller pods with the Deployment, the Service and the PodDisruptionBudget', async () => {
    const objects = await template();
    const spec = deploymentSpec(findObject(objects, 'Deployment'));
    const selectors = [
      spec.selector.matchLabels,
      (findObject(objects, 'Service').spec as { selector: Record<string, string> }).selector,
      (findObject(objects, 'PodDisruptionBudget').spec as { selector: { matchLabels: Record<string, string> } })
        .selector.matchLabels,
    ];
    for (const selector of selectors) {
      expect(selector).toEqual({
        'app.kubernetes.io/name': 'midi-corpus-operator',
        'app.kubernetes.io/instance': RELEASE,
      });
      expect(spec.template.metadata.labels).toMatchObject(selector);
    }
  });

  it("passes a runner image, a lease name and the release's own names through to the controller", async () => {
    const objects = await template(
      'runner.image=registry.example/runner:7',
      'leaderElection.leaseName=mco-lease',
      'image.tag=dev',
    );
    const [container] = deploymentSpec(findObject(objects, 'Deployment')).template.spec.containers;
    expect(container!.image).toBe('ghcr.io/midi-corpus/midi-corpus-operator:dev');
    expect(container!.args).toEqual(
      expect.arrayContaining(['--runner-image=registry.example/runner:7', '--lease-name=mco-lease']),
    );
  });

  it("passes the failure-reporting timers through to the controller's flags", async () => {
    const args = async (...set: string[]) =>
      deploymentSpec(findObject(await template(...set), 'Deployment')).template.spec.containers[0]!.args;
    expect(await args()).toEqual(
      expect.arrayContaining(['--rejected-retry-seconds=300', '--unschedulable-grace-seconds=180']),
    );
    expect(await args('troubles.rejectedRetrySeconds=60', 'troubles.unschedulableGraceSeconds=600')).toEqual(
      expect.arrayContaining(['--rejected-retry-seconds=60', '--unschedulable-grace-seconds=600']),
    );
  });

  it('adds a ServiceMonitor only when asked, and drops the PodDisruptionBudget for a single replica', async () => {
    expect(names(await template())).not.toContain('ServiceMonitor/midi-corpus-operator');
    const monitor = findObject(await template('metrics.serviceMonitor.enabled=true'), 'ServiceMonitor');
    expect(monitor.spec).toMatchObject({ endpoints: [{ port: 'metrics', path: '/metrics' }] });
    const single = await template('replicaCount=1');
    expect(names(single)).not.toContain('PodDisruptionBudget/midi-corpus-operator');
  });

  it.each([
    [['replicaCount=-1'], 'replicaCount'],
    [['replicaCount=0'], 'replicaCount'],
    [['logLevel=verbose'], 'logLevel'],
    [['metrics.port=70000'], 'port'],
    [['image.pullPolicy=Sometimes'], 'pullPolicy'],
    [['watchNamespace=Team_A'], 'watchNamespace'],
    [['replicaz=2'], 'replicaz'],
    [['podPolicy.allowedVolumeTypes={}'], 'allowedVolumeTypes'],
    [['podPolicy.allowedVolumeTypes={host-path}'], 'allowedVolumeTypes'],
  ])('refuses %j through values.schema.json, naming %s', async (set, field) => {
    expect(await refusal(...set)).toContain(field);
  });

  it('refuses a Kubernetes release without the Job features the operator relies on', async () => {
    await expect(run(helm, ['template', RELEASE, chartDir, '--kube-version', '1.30.0'])).rejects.toThrow(/kubeVersion/);
  });

  it('refuses several active controllers: replicaCount > 1 without leader election', async () => {
    expect(await refusal('replicaCount=2', 'leaderElection.enabled=false')).toContain(
      'requires leaderElection.enabled',
    );
  });
});
