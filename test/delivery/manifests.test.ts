import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { midiCorpusCRD } from '../../controller/api/crd.js';
import { OPERATOR_IMAGE_REPOSITORY, podPolicy } from '../../controller/api/pod-policy.js';
import {
  API_VERSION,
  DATABASE_SECRET_LABEL,
  DATABASE_SECRET_LABEL_VALUE,
  KIND,
} from '../../controller/api/v1alpha1/midicorpus.js';
import { controllerRules, leaderElectionRules } from './rbac.js';
import {
  canonicalRules,
  deploymentSpec,
  findObject,
  manifestsDir,
  parseObjects,
  run,
  type KubeObject,
} from './support.js';

const NAMESPACE = 'midi-corpus-system';
const IMAGE = 'ghcr.io/midi-corpus/midi-corpus-operator:0.1.0';

// `kubectl apply -k manifests/` applies exactly what `kubectl kustomize manifests/` renders (no cluster needed).
let objects: KubeObject[];
beforeAll(async () => {
  const { stdout } = await run(process.env.KUBECTL ?? 'kubectl', ['kustomize', manifestsDir], { maxBuffer: 16 << 20 });
  objects = parseObjects(stdout);
});

describe('kubectl kustomize manifests/', () => {
  it('renders the operator and nothing else (the samples stay out)', () => {
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual([
      'ClusterRole/midi-corpus-operator',
      'ClusterRole/midi-corpus-operator-edit',
      'ClusterRole/midi-corpus-operator-view',
      'ClusterRoleBinding/midi-corpus-operator',
      'CustomResourceDefinition/midicorpora.midi.corpus.dev',
      'Deployment/midi-corpus-operator',
      'Namespace/midi-corpus-system',
      'PodDisruptionBudget/midi-corpus-operator',
      'Role/midi-corpus-operator-leader-election',
      'RoleBinding/midi-corpus-operator-leader-election',
      'Service/midi-corpus-operator-metrics',
      'ServiceAccount/midi-corpus-operator',
      'ValidatingAdmissionPolicy/midi-corpus-operator-pod-policy',
      'ValidatingAdmissionPolicyBinding/midi-corpus-operator-pod-policy',
    ]);
  });

  it("installs the pod policy exactly as controller/api generates it, allowing the manifests' image repository", () => {
    const [policy, binding] = podPolicy();
    expect(findObject(objects, 'ValidatingAdmissionPolicy').spec).toEqual(policy.spec);
    expect(findObject(objects, 'ValidatingAdmissionPolicyBinding').spec).toEqual(binding.spec);
    const image = deploymentSpec(findObject(objects, 'Deployment')).template.spec.containers[0]!.image;
    expect(image.startsWith(`${OPERATOR_IMAGE_REPOSITORY}:`)).toBe(true);
    expect(policy.spec.variables.find((v) => v.name === 'allowedImages')?.expression).toBe(
      JSON.stringify([OPERATOR_IMAGE_REPOSITORY]),
    );
  });

  it('puts every namespaced object in midi-corpus-system', () => {
    const clusterScoped = new Set([
      'Namespace',
      'CustomResourceDefinition',
      'ClusterRole',
      'ClusterRoleBinding',
      // kustomize writes the namespace into these (its schema predates them); the API server drops it.
      'ValidatingAdmissionPolicy',
      'ValidatingAdmissionPolicyBinding',
    ]);
    for (const o of objects.filter((x) => !clusterScoped.has(x.kind)))
      expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe(NAMESPACE);
  });

  it('installs the CRD exactly as controller/api generates it (kustomize adds only its labels)', () => {
    const crd = findObject(objects, 'CustomResourceDefinition');
    const generated = midiCorpusCRD();
    expect(crd.spec).toEqual(generated.spec);
    expect(crd.metadata.name).toBe(generated.metadata.name);
    expect(crd.metadata.labels).toMatchObject(generated.metadata.labels ?? {});
  });

  it('grants the controller exactly the reviewed rules, cluster-wide, and the Lease rules in its own namespace only', () => {
    expect(canonicalRules(findObject(objects, 'ClusterRole', 'midi-corpus-operator').rules)).toEqual(
      canonicalRules(controllerRules),
    );
    const leaderRole = findObject(objects, 'Role');
    expect(leaderRole.metadata.namespace).toBe(NAMESPACE);
    expect(canonicalRules(leaderRole.rules)).toEqual(canonicalRules(leaderElectionRules));
  });

  it("binds both roles to the controller's ServiceAccount in midi-corpus-system", () => {
    const subject = { kind: 'ServiceAccount', name: 'midi-corpus-operator', namespace: NAMESPACE };
    const clusterBinding = findObject(objects, 'ClusterRoleBinding');
    expect(clusterBinding.subjects).toEqual([subject]);
    expect(clusterBinding.roleRef).toEqual({
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'ClusterRole',
      name: 'midi-corpus-operator',
    });
    const binding = findObject(objects, 'RoleBinding');
    expect(binding.subjects).toEqual([subject]);
    expect(binding.roleRef).toEqual({
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'Role',
      name: 'midi-corpus-operator-leader-election',
    });
  });

  it('runs two controller replicas under that ServiceAccount, with leader election and the Downward API identity', () => {
    const spec = deploymentSpec(findObject(objects, 'Deployment'));
    expect(spec.replicas).toBe(2);
    expect(spec.template.spec.serviceAccountName).toBe('midi-corpus-operator');
    const [container] = spec.template.spec.containers;
    expect(container!.image).toBe(IMAGE);
    expect(container!.args).toEqual([
      'controller',
      '--leader-elect=true',
      '--lease-name=midi-corpus-operator',
      '--metrics-port=8080',
      '--health-port=8081',
      '--runner-image=$(RUNNER_IMAGE)',
      '--rejected-retry-seconds=300',
      '--unschedulable-grace-seconds=180',
    ]);
    const env = Object.fromEntries(
      (container!.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom?.fieldRef?.fieldPath]),
    );
    expect(env).toEqual({ POD_NAME: 'metadata.name', POD_NAMESPACE: 'metadata.namespace', RUNNER_IMAGE: IMAGE });
  });

  it('probes /healthz and /readyz on 8081 and exposes metrics on 8080 through the Service', () => {
    const [container] = deploymentSpec(findObject(objects, 'Deployment')).template.spec.containers;
    expect(container!.ports).toEqual([
      { name: 'metrics', containerPort: 8080, protocol: 'TCP' },
      { name: 'health', containerPort: 8081, protocol: 'TCP' },
    ]);
    expect(container!.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'health' });
    expect(container!.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'health' });
    const service = findObject(objects, 'Service');
    expect(service.spec).toMatchObject({ ports: [{ name: 'metrics', port: 8080, targetPort: 'metrics' }] });
  });

  it('selects the controller pods with the Service and the PodDisruptionBudget', () => {
    const spec = deploymentSpec(findObject(objects, 'Deployment'));
    const podLabels = spec.template.metadata.labels;
    for (const selector of [
      (findObject(objects, 'Service').spec as { selector: Record<string, string> }).selector,
      (findObject(objects, 'PodDisruptionBudget').spec as { selector: { matchLabels: Record<string, string> } })
        .selector.matchLabels,
      spec.selector.matchLabels,
    ])
      expect(podLabels).toMatchObject(selector);
  });

  it('runs the controller non-root, read-only, without capabilities, under RuntimeDefault seccomp', () => {
    const pod = deploymentSpec(findObject(objects, 'Deployment')).template.spec;
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 65532,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(pod.containers[0]!.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
    expect(pod.containers[0]!.resources?.requests).toBeDefined();
    expect(pod.containers[0]!.resources?.limits?.memory).toBeDefined();
  });

  it('copies an overridden controller image into the runner image, so `kustomize edit set image` changes both', async () => {
    const kustomization = parse(await readFile(path.join(manifestsDir, 'kustomization.yaml'), 'utf8')) as {
      replacements: Array<{ source: { fieldPath: string }; targets: Array<{ fieldPaths: string[] }> }>;
    };
    expect(kustomization.replacements).toHaveLength(1);
    expect(kustomization.replacements[0]!.source.fieldPath).toBe(
      'spec.template.spec.containers.[name=controller].image',
    );
    expect(kustomization.replacements[0]!.targets[0]!.fieldPaths).toEqual([
      'spec.template.spec.containers.[name=controller].env.[name=RUNNER_IMAGE].value',
    ]);
  });
});

describe('the samples', () => {
  it('hold an obviously fake database URL (a .invalid host), never a real credential', async () => {
    const secret = parse(await readFile(path.join(manifestsDir, 'samples', 'database-secret.yaml'), 'utf8')) as {
      stringData: { url: string };
    };
    expect(new URL(secret.stringData.url).hostname).toMatch(/\.invalid$/);
  });

  it('describe a MidiCorpus of this CRD that references the sample Secret', async () => {
    const sample = parse(
      await readFile(path.join(manifestsDir, 'samples', 'midicorpus.yaml'), 'utf8'),
    ) as KubeObject & {
      spec: { database: { secretRef: { name: string; key: string } } };
    };
    const secret = parse(
      await readFile(path.join(manifestsDir, 'samples', 'database-secret.yaml'), 'utf8'),
    ) as KubeObject & { stringData: Record<string, string> };
    expect([sample.apiVersion, sample.kind]).toEqual([API_VERSION, KIND]);
    expect(sample.spec.database.secretRef.name).toBe(secret.metadata.name);
    expect(Object.keys(secret.stringData)).toContain(sample.spec.database.secretRef.key);
  });

  it('label the sample Secret so that the operator may use it', async () => {
    const secret = parse(
      await readFile(path.join(manifestsDir, 'samples', 'database-secret.yaml'), 'utf8'),
    ) as KubeObject;
    expect(secret.metadata.labels?.[DATABASE_SECRET_LABEL]).toBe(DATABASE_SECRET_LABEL_VALUE);
  });
});
