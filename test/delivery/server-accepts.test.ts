import os from 'node:os';
import path from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { parse, stringify } from 'yaml';
import { AuthorizationV1Api } from '@kubernetes/client-node';
import { describeWithCluster, eventually, useCluster } from '../cluster/vitest.js';
import { controllerRules, leaderElectionRules } from './rbac.js';
import { chartDir, manifestsDir, parseObjects, run, type KubeObject } from './support.js';

/**
 * The delivery files against a real API server (test/cluster): it, not a YAML parser, decides whether the CRD's
 * schema and CEL rules compile, whether the sample MidiCorpus is valid, and what the installed RBAC allows.
 * Nothing here starts the controller: the Deployment is only dry-run.
 */
const OPERATOR_NS = 'midi-corpus-system';
const CORPUS_NS = 'corpora';
const CONTROLLER_SA = `system:serviceaccount:${OPERATOR_NS}:midi-corpus-operator`;

/** The Prometheus Operator release whose CRDs validate the chart's ServiceMonitor and PrometheusRule. */
const PROMETHEUS_OPERATOR_MODULE = 'github.com/prometheus-operator/prometheus-operator';
const PROMETHEUS_OPERATOR_VERSION = 'v0.85.0';

const yamlOf = (objects: KubeObject[]) => objects.map((o) => stringify(o)).join('---\n');

describeWithCluster('the delivery files on a real API server', () => {
  // The API server is all this needs: no node (a node costs ~5 s and ~190 MB).
  const cluster = useCluster({ nodes: [] });
  beforeAll(async () => {
    await cluster().createNamespace(CORPUS_NS);
    await cluster().createNamespace('team-a');
  });

  async function kubectl(args: string[], input?: string): Promise<string> {
    const r = await cluster().kubectl(args, input);
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.code}):\n${r.stderr}`);
    return r.stdout;
  }

  async function kustomized(): Promise<KubeObject[]> {
    const { stdout } = await run(process.env.KUBECTL ?? 'kubectl', ['kustomize', manifestsDir], {
      maxBuffer: 16 << 20,
    });
    return parseObjects(stdout);
  }

  /** Whether the controller's ServiceAccount may do `verb` on `resource` (SubjectAccessReview, as the authorizer decides). */
  async function controllerMay(verb: string, group: string, resource: string, namespace: string): Promise<boolean> {
    const [plural, subresource] = resource.split('/');
    const review = await cluster()
      .kc.makeApiClient(AuthorizationV1Api)
      .createSubjectAccessReview({
        body: {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SubjectAccessReview',
          spec: {
            user: CONTROLLER_SA,
            groups: ['system:serviceaccounts', `system:serviceaccounts:${OPERATOR_NS}`, 'system:authenticated'],
            resourceAttributes: { verb, group, resource: plural, ...(subresource ? { subresource } : {}), namespace },
          },
        },
      });
    return review.status?.allowed === true;
  }

  it('accepts everything `kubectl apply -k manifests/` sends, and installs the CRD and RBAC for real', async () => {
    const objects = await kustomized();
    // Namespace and CRD first: a dry run cannot validate objects in a namespace, or of a kind, that does not exist yet.
    await kubectl(
      ['apply', '-f', '-'],
      yamlOf(objects.filter((o) => o.kind === 'Namespace' || o.kind === 'CustomResourceDefinition')),
    );
    await kubectl(['wait', '--for=condition=Established', 'crd/midicorpora.midi.corpus.dev', '--timeout=60s']);
    const dryRun = await cluster().kubectl(['apply', '--dry-run=server', '-k', manifestsDir]);
    expect(dryRun.code, dryRun.stderr).toBe(0);
    // The namespace warns under the restricted Pod Security level: a Deployment it would refuse pods of gets a warning.
    expect(dryRun.stderr).not.toContain('PodSecurity');
    // Everything but the Deployment for real: the RBAC below is then the installed one. No controller process starts.
    await kubectl(['apply', '-f', '-'], yamlOf(objects.filter((o) => o.kind !== 'Deployment')));
  });

  it("lets a namespace's `edit` and `admin` manage its MidiCorpora and `view` read them, through the aggregated roles", async () => {
    // The ServiceAccounts and their RoleBindings to the built-in roles, in team-a only, as a namespace admin would.
    const users = { viewer: 'view', editor: 'edit', owner: 'admin' } as const;
    for (const [sa, role] of Object.entries(users)) {
      await kubectl(['-n', 'team-a', 'create', 'serviceaccount', sa]);
      await kubectl([
        '-n',
        'team-a',
        'create',
        'rolebinding',
        sa,
        `--clusterrole=${role}`,
        `--serviceaccount=team-a:${sa}`,
      ]);
    }
    const sample = await readFile(path.join(manifestsDir, 'samples', 'midicorpus.yaml'), 'utf8');
    /** A real request, impersonating the ServiceAccount: the API server's authorizer decides. */
    const as = (sa: string, args: string[], input?: string) =>
      cluster().kubectl([`--as=system:serviceaccount:team-a:${sa}`, '-n', 'team-a', ...args], input);
    const forbidden = (r: { code: number; stderr: string }) => r.code !== 0 && /forbidden/i.test(r.stderr);

    // The clusterrole-aggregation controller copies the rules into view, edit and admin a moment after they appear.
    for (const sa of ['editor', 'owner']) {
      await eventually(
        `${sa} to create a MidiCorpus`,
        async () => {
          const r = await as(sa, ['create', '-f', '-'], sample.replace('name: lakh', `name: by-${sa}`));
          return r.code === 0 ? r : undefined;
        },
        60_000,
      );
    }
    const viewerGets = await eventually(
      'the viewer to list MidiCorpora',
      async () => {
        const r = await as('viewer', ['get', 'midicorpora', '-o', 'name']);
        return r.code === 0 ? r.stdout : undefined;
      },
      60_000,
    );
    expect(viewerGets.split('\n').filter(Boolean).sort()).toEqual([
      'midicorpus.midi.corpus.dev/by-editor',
      'midicorpus.midi.corpus.dev/by-owner',
    ]);
    expect((await as('viewer', ['get', 'midicorpus', 'by-editor', '-o', 'jsonpath={.metadata.name}'])).stdout).toBe(
      'by-editor',
    );
    const status = await as('viewer', [
      'get',
      '--raw',
      '/apis/midi.corpus.dev/v1alpha1/namespaces/team-a/midicorpora/by-editor/status',
    ]);
    expect(status.code, status.stderr).toBe(0);

    // The viewer may change nothing.
    expect(forbidden(await as('viewer', ['create', '-f', '-'], sample.replace('name: lakh', 'name: by-viewer')))).toBe(
      true,
    );
    expect(
      forbidden(
        await as('viewer', ['patch', 'midicorpus', 'by-editor', '--type=merge', '-p', '{"spec":{"suspend":true}}']),
      ),
    ).toBe(true);
    expect(forbidden(await as('viewer', ['delete', 'midicorpus', 'by-editor']))).toBe(true);

    // The editor changes the spec and deletes, but writes no status: that is the controller's.
    const patched = await as('editor', [
      'patch',
      'midicorpus',
      'by-editor',
      '--type=merge',
      '-p',
      '{"spec":{"suspend":true}}',
    ]);
    expect(patched.code, patched.stderr).toBe(0);
    const statusWrite = await as('editor', [
      'patch',
      'midicorpus',
      'by-editor',
      '--subresource=status',
      '--type=merge',
      '-p',
      '{"status":{"phase":"Succeeded"}}',
    ]);
    expect(forbidden(statusWrite), statusWrite.stderr).toBe(true);
    for (const sa of ['editor', 'owner']) {
      const deleted = await as(sa, ['delete', 'midicorpus', `by-${sa}`, '--wait=false']);
      expect(deleted.code, deleted.stderr).toBe(0);
    }
    // Nothing reaches another namespace: the bindings are team-a's.
    expect(
      forbidden(
        await cluster().kubectl(['--as=system:serviceaccount:team-a:editor', '-n', CORPUS_NS, 'get', 'midicorpora']),
      ),
    ).toBe(true);
  });

  it("accepts the samples, validated by the CRD's schema and CEL rules", async () => {
    const out = await kubectl(['apply', '--dry-run=server', '-n', CORPUS_NS, '-f', path.join(manifestsDir, 'samples')]);
    expect(out).toContain('midicorpus.midi.corpus.dev/lakh created (server dry run)');
  });

  it('lets spec.rerun only grow, spec.deletionPolicy be only Keep or Delete (defaulting to Keep), and rescans be no more often than a minute', async () => {
    const sample = parse(await readFile(path.join(manifestsDir, 'samples', 'midicorpus.yaml'), 'utf8')) as KubeObject;
    const name = 'rerun-rules';
    await kubectl(
      ['apply', '-n', CORPUS_NS, '-f', '-'],
      stringify({ ...sample, metadata: { ...sample.metadata, name, namespace: CORPUS_NS } }),
    );
    const spec = JSON.parse(await kubectl(['get', 'mco', name, '-n', CORPUS_NS, '-o', 'jsonpath={.spec}'])) as {
      rerun: number;
      deletionPolicy: string;
    };
    expect([spec.rerun, spec.deletionPolicy]).toEqual([0, 'Keep']);
    const patch = (p: Record<string, unknown>) =>
      cluster().kubectl(['patch', 'mco', name, '-n', CORPUS_NS, '--type=merge', '-p', JSON.stringify({ spec: p })]);
    expect((await patch({ rerun: 2 })).code).toBe(0);
    const lower = await patch({ rerun: 1 });
    expect(lower.code).not.toBe(0);
    expect(lower.stderr).toContain('rerun may only grow: bump it to run again');
    expect((await patch({ rerun: 3, deletionPolicy: 'Delete' })).code).toBe(0);
    const odd = await patch({ deletionPolicy: 'Maybe' });
    expect(odd.stderr).toContain('Unsupported value: "Maybe"');
    expect((await patch({ rescanEverySeconds: 10 })).stderr).toContain('should be greater than or equal to 60');
    expect((await patch({ rescanEverySeconds: 86_400 })).code).toBe(0);
    await kubectl(['delete', 'mco', name, '-n', CORPUS_NS]);
  });

  it("refuses, through the manifests' pod policy, the sample on a hostPath or with a foreign image, saying why", async () => {
    const sample = parse(
      await readFile(path.join(manifestsDir, 'samples', 'midicorpus.yaml'), 'utf8'),
    ) as KubeObject & {
      spec: { source: Record<string, unknown>; runner: Record<string, unknown> };
    };
    const dryRun = (spec: Record<string, unknown>) =>
      cluster().kubectl(
        ['apply', '--dry-run=server', '-n', CORPUS_NS, '-f', '-'],
        stringify({ ...sample, spec: { ...sample.spec, ...spec } }),
      );
    const hostPath = { source: { ...sample.spec.source, volume: { hostPath: { path: '/' } } } };
    // A new policy takes a moment to reach the admission plugin.
    const refused = await eventually(
      'the pod policy to refuse a hostPath',
      async () => {
        const r = await dryRun(hostPath);
        return r.code !== 0 ? r.stderr : undefined;
      },
      30_000,
    );
    expect(refused).toContain('spec.source.volume is a hostPath volume');
    expect(refused).toContain('Allowed volume types: persistentVolumeClaim, ephemeral, csi, nfs.');
    expect(refused).toContain('ValidatingAdmissionPolicy midi-corpus-operator-pod-policy');
    const split = await dryRun({ splitTracks: { volume: { hostPath: { path: '/tmp' } } } });
    expect(split.stderr).toContain('spec.splitTracks.volume is a hostPath volume');
    for (const image of ['docker.io/library/busybox:1.37', 'ghcr.io/midi-corpus/midi-corpus-operator-evil:0.1.0']) {
      const r = await dryRun({ runner: { ...sample.spec.runner, image } });
      expect(r.stderr, image).toContain(`spec.runner.image ${image} is not an image this cluster allows`);
    }
    const allowed = await dryRun({
      runner: { ...sample.spec.runner, image: 'ghcr.io/midi-corpus/midi-corpus-operator@sha256:' + '0'.repeat(64) },
      splitTracks: { volume: { nfs: { server: 'nas.invalid', path: '/tracks' } } },
    });
    expect(allowed.code, allowed.stderr).toBe(0);
  });

  it.each([[[]], [['watchNamespace=team-a']], [['crds.create=false', 'replicaCount=1']]])(
    'accepts every object the chart renders with %j',
    async (set) => {
      const { stdout } = await run(
        path.join(cluster().binDir, 'helm'),
        [
          'template',
          'midi-corpus-operator',
          chartDir,
          '--namespace',
          OPERATOR_NS,
          '--kube-version',
          '1.34.0',
          ...set.flatMap((s) => ['--set', s]),
        ],
        { maxBuffer: 16 << 20 },
      );
      const dryRun = await cluster().kubectl(['apply', '--dry-run=server', '-f', '-'], stdout);
      expect(dryRun.code, dryRun.stderr).toBe(0);
      expect(dryRun.stderr).not.toContain('PodSecurity'); // the release namespace warns under `restricted` (see above)
    },
  );

  it("accepts the chart's ServiceMonitor, PrometheusRule and dashboard ConfigMap, validated by the Prometheus Operator's own CRDs", async () => {
    // The CRDs as the Prometheus Operator release ships them, from its Go module (the Go module proxy is reachable
    // where nothing else is). `create`, not `apply`: they are too large for the last-applied annotation.
    const { stdout } = await run(
      'go',
      ['mod', 'download', '-json', `${PROMETHEUS_OPERATOR_MODULE}@${PROMETHEUS_OPERATOR_VERSION}`],
      {
        env: { ...process.env, GOFLAGS: '-mod=mod' },
        cwd: os.tmpdir(),
      },
    );
    const crdDir = path.join((JSON.parse(stdout) as { Dir: string }).Dir, 'example', 'prometheus-operator-crd');
    for (const kind of ['servicemonitors', 'prometheusrules']) {
      await kubectl(['create', '-f', path.join(crdDir, `monitoring.coreos.com_${kind}.yaml`)]);
      await kubectl(['wait', '--for=condition=Established', `crd/${kind}.monitoring.coreos.com`, '--timeout=60s']);
    }
    const switches = [
      'metrics.serviceMonitor.enabled=true',
      'metrics.grafanaDashboard.enabled=true',
      'metrics.prometheusRule.enabled=true',
    ];
    const rendered = await run(
      path.join(cluster().binDir, 'helm'),
      [
        'template',
        'midi-corpus-operator',
        chartDir,
        '--namespace',
        OPERATOR_NS,
        '--kube-version',
        '1.34.0',
        ...switches.flatMap((s) => ['--set', s]),
      ],
      { maxBuffer: 16 << 20 },
    );
    const kinds = parseObjects(rendered.stdout).map((o) => o.kind);
    expect(kinds).toEqual(expect.arrayContaining(['ServiceMonitor', 'PrometheusRule', 'ConfigMap']));
    const dryRun = await cluster().kubectl(['apply', '--dry-run=server', '-f', '-'], rendered.stdout);
    expect(dryRun.code, dryRun.stderr).toBe(0);
    expect(dryRun.stdout).toContain(
      'prometheusrule.monitoring.coreos.com/midi-corpus-operator created (server dry run)',
    );
    expect(dryRun.stdout).toContain(
      'servicemonitor.monitoring.coreos.com/midi-corpus-operator created (server dry run)',
    );
    expect(dryRun.stdout).toContain('configmap/midi-corpus-operator-dashboard created (server dry run)');
  });

  it('lets the controller do what its rules list, in any namespace, and take the Lease in its own', async () => {
    const denied: string[] = [];
    for (const rule of controllerRules) {
      for (const verb of rule.verbs) {
        if (!(await controllerMay(verb, rule.apiGroups[0]!, rule.resources[0]!, CORPUS_NS)))
          denied.push(`${verb} ${rule.resources[0]}`);
      }
    }
    for (const verb of leaderElectionRules[0]!.verbs) {
      if (!(await controllerMay(verb, 'coordination.k8s.io', 'leases', OPERATOR_NS))) denied.push(`${verb} leases`);
    }
    expect(denied).toEqual([]);
  });

  it.each([
    ['delete', '', 'pods', CORPUS_NS],
    ['create', '', 'pods', CORPUS_NS],
    ['list', '', 'secrets', CORPUS_NS],
    ['watch', '', 'secrets', CORPUS_NS],
    ['update', 'midi.corpus.dev', 'midicorpora', CORPUS_NS],
    ['delete', 'midi.corpus.dev', 'midicorpora', CORPUS_NS],
    ['update', 'batch', 'jobs', CORPUS_NS],
    ['patch', 'midi.corpus.dev', 'midicorpora/status', CORPUS_NS],
    ['create', 'coordination.k8s.io', 'leases', CORPUS_NS],
    ['list', '', 'nodes', ''],
    ['create', '', 'serviceaccounts/token', CORPUS_NS],
    ['escalate', 'rbac.authorization.k8s.io', 'clusterroles', ''],
  ])('refuses the controller `%s` on %s/%s (namespace %s)', async (verb, group, resource, namespace) => {
    expect(await controllerMay(verb, group, resource, namespace)).toBe(false);
  });
});
