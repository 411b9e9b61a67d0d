import { describe, expect, it } from 'vitest';
import { runJob, scanJob, SAFE_TO_EVICT } from '../../../controller/plan/desired-jobs.js';
import { childName } from '../../../controller/plan/names.js';
import { cpuMillis } from '../../../controller/plan/cpu.js';
import { makeCorpus } from '../fixtures.js';

const options = {
  defaultImage: 'ghcr.io/midi-corpus/midi-corpus-operator:0.1.0',
  budgetKey: 'server-0123456789abcdef',
};

describe('the run Job', () => {
  const corpus = makeCorpus({ spec: { runner: { resources: { requests: { cpu: '2', memory: '1Gi' } } } } });
  const job = runJob(corpus, { ...options, shards: 3000, parallelism: 7, perPod: 3 });
  const pod = job.spec!.template.spec!;
  const container = pod.containers[0]!;

  it("is one Indexed Job with a completion per shard and the budget's parallelism", () => {
    expect(job.metadata!.name).toBe('bach-run');
    expect(job.spec).toMatchObject({ completionMode: 'Indexed', completions: 3000, parallelism: 7, suspend: false });
  });

  it('replaces a pod only once it is gone, retries per shard, and ignores evictions', () => {
    expect(job.spec).toMatchObject({
      podReplacementPolicy: 'Failed',
      backoffLimitPerIndex: 6,
      ttlSecondsAfterFinished: 86_400,
    });
    expect(job.spec!.backoffLimit).toBeUndefined();
    expect(job.spec!.podFailurePolicy!.rules).toEqual([
      { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] },
      { action: 'FailIndex', onExitCodes: { containerName: 'runner', operator: 'In', values: [64] } },
    ]);
    expect(pod.restartPolicy).toBe('Never'); // podFailurePolicy is refused without it
  });

  it('is owned by its MidiCorpus, so deleting the corpus deletes it', () => {
    expect(job.metadata!.ownerReferences).toEqual([
      {
        apiVersion: 'midi.corpus.dev/v1alpha1',
        kind: 'MidiCorpus',
        name: 'bach',
        uid: corpus.metadata.uid,
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
  });

  it('runs run-shard on the corpus key with the pool the budget counted', () => {
    expect(container.image).toBe(options.defaultImage);
    expect(container.args).toEqual([
      'run-shard',
      '--corpus',
      'music/bach',
      '--root',
      '/corpus',
      '--connections-per-worker',
      '1',
      '--extra-connections',
      '1',
      '--max-per-pod',
      '16',
      '--warm-fraction',
      '1',
      '--reserved',
      '3',
      '--headroom',
      '2',
      '--ledger-database',
      'postgres',
      '--json',
    ]);
  });

  it("is admitted in the spec's ledger database, against the cap the budget plans with", () => {
    const other = makeCorpus({ spec: { database: { maxConnections: 40, ledgerDatabase: 'mco_ledger' } } });
    const args = runJob(other, { ...options, shards: 1, parallelism: 1, perPod: 2 }).spec!.template.spec!.containers[0]!
      .args!;
    expect(args.join(' ')).toContain('--max-connections 40 --reserved 3 --headroom 2 --ledger-database mco_ledger');
    const scanArgs = scanJob(other, options).spec!.template.spec!.containers[0]!.args!;
    expect(scanArgs.join(' ')).toContain('--max-connections 40 --reserved 3 --headroom 2 --ledger-database mco_ledger');
  });

  it('hands the process its database URL from the Secret, its CPU request in millicores, its memory limit in bytes and its pod name', () => {
    expect(container.env).toEqual([
      { name: 'DATABASE_URL', valueFrom: { secretKeyRef: { name: 'db', key: 'url' } } },
      { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      {
        name: 'CPU_REQUEST_MILLIS',
        valueFrom: { resourceFieldRef: { containerName: 'runner', resource: 'requests.cpu', divisor: '1m' } },
      },
      {
        name: 'MEMORY_LIMIT_BYTES',
        valueFrom: { resourceFieldRef: { containerName: 'runner', resource: 'limits.memory', divisor: '1' } },
      },
    ]);
    expect(container.resources!.requests).toEqual({ cpu: '2', memory: '1Gi' });
  });

  it('runs locked down: non-root, read-only root, no privilege escalation, no capabilities, RuntimeDefault seccomp', () => {
    expect(container.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(pod.securityContext).toEqual({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    expect(pod.automountServiceAccountToken).toBe(false);
  });

  it('mounts the corpus read-only and a writable /tmp', () => {
    expect(pod.volumes).toEqual([
      { name: 'corpus', persistentVolumeClaim: { claimName: 'midi' } },
      { name: 'tmp', emptyDir: { sizeLimit: '256Mi' } },
    ]);
    expect(container.volumeMounts).toEqual([
      { name: 'corpus', mountPath: '/corpus', readOnly: true },
      { name: 'tmp', mountPath: '/tmp' },
    ]);
  });

  it('lets the autoscaler evict runner pods', () => {
    expect(job.spec!.template.metadata!.annotations![SAFE_TO_EVICT]).toBe('true');
  });

  it('marks the Job and every pod with the budget they draw on and their connections, for accounting after the corpus is gone', () => {
    const want = {
      'midi.corpus.dev/budget-key': 'server-0123456789abcdef',
      'midi.corpus.dev/connections-per-pod': '3',
      'midi.corpus.dev/corpus': 'bach',
    };
    expect(job.metadata!.annotations).toEqual(want);
    expect(job.spec!.template.metadata!.annotations).toMatchObject(want);
    expect(job.spec!.template.metadata!.labels).toEqual({
      'app.kubernetes.io/name': 'midi-corpus',
      'app.kubernetes.io/managed-by': 'midi-corpus-operator',
      'midi.corpus.dev/corpus-uid': corpus.metadata.uid,
      'midi.corpus.dev/role': 'run',
    });
  });

  it('passes the optional knobs, the split-track volume, scheduling and a failed-index cap', () => {
    const full = makeCorpus({
      spec: {
        source: { volume: { nfs: { server: 'nas', path: '/m' } }, path: 'classical/' },
        splitTracks: { volume: { persistentVolumeClaim: { claimName: 'out' } }, path: 'split' },
        runner: {
          image: 'example/runner:1',
          imagePullPolicy: 'IfNotPresent',
          maxFileBytes: 1_000_000,
          fileTimeoutMs: 5000,
          maxFailedIndexes: 10,
          nodeSelector: { pool: 'batch' },
          tolerations: [{ key: 'batch', operator: 'Exists', effect: 'NoSchedule' }],
          priorityClassName: 'low',
        },
        suspend: true,
      },
    });
    const j = runJob(full, { ...options, shards: 4, parallelism: 0, perPod: 3 });
    const c = j.spec!.template.spec!.containers[0]!;
    expect(c.args).toEqual(
      expect.arrayContaining([
        '--root',
        '/corpus/classical',
        '--split-output',
        '/split-tracks/split',
        '--max-file-bytes',
        '1000000',
        '--file-timeout-ms',
        '5000',
      ]),
    );
    expect(c.image).toBe('example/runner:1');
    expect(c.imagePullPolicy).toBe('IfNotPresent');
    expect(j.spec).toMatchObject({ suspend: true, parallelism: 0, maxFailedIndexes: 10 });
    expect(j.spec!.template.spec).toMatchObject({
      nodeSelector: { pool: 'batch' },
      priorityClassName: 'low',
      tolerations: [{ key: 'batch', operator: 'Exists', effect: 'NoSchedule' }],
    });
    expect(j.spec!.template.spec!.volumes).toContainEqual({
      name: 'split-tracks',
      persistentVolumeClaim: { claimName: 'out' },
    });
    expect(c.volumeMounts).toContainEqual({ name: 'split-tracks', mountPath: '/split-tracks' });
  });
});

describe('the scan Job', () => {
  it('runs scan once, reports through its termination message, and fails at once on bad configuration', () => {
    const job = scanJob(makeCorpus({ spec: { source: { include: ['**/*.mid'] } } }), options);
    const c = job.spec!.template.spec!.containers[0]!;
    expect(job.metadata!.name).toBe('bach-scan');
    expect(job.spec).toMatchObject({ completions: 1, parallelism: 1, podReplacementPolicy: 'Failed' });
    expect(c.args).toEqual([
      'scan',
      '--corpus',
      'music/bach',
      '--root',
      '/corpus',
      '--include',
      '**/*.mid',
      '--files-per-shard',
      '1000',
      '--reserved',
      '3',
      '--headroom',
      '2',
      '--ledger-database',
      'postgres',
      '--termination-log',
      '/dev/termination-log',
      '--json',
    ]);
    expect(c.terminationMessagePath).toBe('/dev/termination-log');
    expect(job.spec!.podFailurePolicy!.rules[1]).toEqual({
      action: 'FailJob',
      onExitCodes: { containerName: 'scan', operator: 'In', values: [64] },
    });
    expect(job.spec!.template.metadata!.annotations![SAFE_TO_EVICT]).toBe('false');
  });

  it('asks for a shard count when the spec gives targetShards', () => {
    const job = scanJob(makeCorpus({ spec: { sharding: { targetShards: 40 } } }), options);
    expect(job.spec!.template.spec!.containers[0]!.args).toEqual(expect.arrayContaining(['--shards', '40']));
    expect(job.spec!.template.spec!.containers[0]!.args).not.toContain('--files-per-shard');
  });
});

describe('spec.database.tls in the pods', () => {
  const tls = (extra: Record<string, unknown> = {}) =>
    makeCorpus({
      spec: {
        database: { secretRef: { name: 'db' }, tls: { secretRef: { name: 'db-ca' }, caKey: 'root.pem', ...extra } },
      },
    });
  const run = (corpus: ReturnType<typeof makeCorpus>) =>
    runJob(corpus, { ...options, shards: 3, parallelism: 1, perPod: 2 }).spec!.template.spec!;
  const scan = (corpus: ReturnType<typeof makeCorpus>) => scanJob(corpus, options).spec!.template.spec!;

  it.each([
    ['run', run],
    ['scan', scan],
  ])(
    'the %s pod mounts only the named keys of the Secret, read-only, and is told their paths by flag',
    (_role, podOf) => {
      const pod = podOf(tls({ certKey: 'client.crt', keyKey: 'client.key' }));
      const c = pod.containers[0]!;
      const secretVolumes = pod.volumes!.filter((v) => v.secret !== undefined);
      expect(secretVolumes).toEqual([
        {
          name: 'database-tls',
          secret: {
            secretName: 'db-ca',
            items: [
              { key: 'root.pem', path: 'ca.crt' },
              { key: 'client.crt', path: 'tls.crt' },
              { key: 'client.key', path: 'tls.key' },
            ],
            defaultMode: 0o444,
          },
        },
      ]);
      expect(c.volumeMounts).toContainEqual({
        name: 'database-tls',
        mountPath: '/etc/midi-corpus/database-tls',
        readOnly: true,
      });
      const args = c.args!.join(' ');
      expect(args).toContain(
        '--ssl-root-cert /etc/midi-corpus/database-tls/ca.crt --ssl-cert /etc/midi-corpus/database-tls/tls.crt ' +
          '--ssl-key /etc/midi-corpus/database-tls/tls.key',
      );
      // The certificates reach the pod as files only: nothing of the TLS Secret in the environment.
      expect(JSON.stringify(c.env)).not.toContain('db-ca');
    },
  );

  it('without a client certificate: the CA only', () => {
    const pod = run(tls());
    expect(pod.volumes!.find((v) => v.name === 'database-tls')!.secret!.items).toEqual([
      { key: 'root.pem', path: 'ca.crt' },
    ]);
    expect(pod.containers[0]!.args).not.toContain('--ssl-cert');
  });

  it('without spec.database.tls: no volume, no flag', () => {
    const pod = run(makeCorpus());
    expect(pod.volumes!.map((v) => v.name)).toEqual(['corpus', 'tmp']);
    expect(pod.containers[0]!.args!.some((a) => a.startsWith('--ssl'))).toBe(false);
  });
});

describe('childName', () => {
  const table = [
    { name: 'short names get a plain suffix', corpus: 'bach', role: 'run' as const, want: 'bach-run' },
    {
      name: 'dots become dashes (pod hostnames are DNS labels)',
      corpus: 'bach.wtc',
      role: 'scan' as const,
      want: 'bach-wtc-scan',
    },
    {
      name: 'a name of exactly 59 characters still fits',
      corpus: 'a'.repeat(59),
      role: 'run' as const,
      want: `${'a'.repeat(59)}-run`,
    },
  ];
  for (const row of table) it(row.name, () => expect(childName(row.corpus, row.role)).toBe(row.want));

  it('cuts long names to 63 characters with a hash, keeping names that share a prefix apart', () => {
    const a = childName(`${'x'.repeat(100)}-one`, 'scan');
    const b = childName(`${'x'.repeat(100)}-two`, 'scan');
    expect(a.length).toBeLessThanOrEqual(63);
    expect(a).toMatch(/^x+-[0-9a-f]{8}-scan$/);
    expect(a).not.toBe(b);
    expect(childName(`${'x'.repeat(100)}-one`, 'scan')).toBe(a);
  });
});

describe('cpuMillis', () => {
  const table: Array<[string | number | undefined, number | undefined]> = [
    ['2', 2000],
    [2, 2000],
    ['500m', 500],
    ['1.5', 1500],
    ['1.1', 1100],
    ['0.0001', 1],
    ['.5', 500],
    ['0', undefined],
    ['-1', undefined],
    ['1Gi', undefined],
    ['lots', undefined],
    [undefined, undefined],
  ];
  for (const [q, want] of table) it(`${String(q)} → ${String(want)}`, () => expect(cpuMillis(q)).toBe(want));
});
