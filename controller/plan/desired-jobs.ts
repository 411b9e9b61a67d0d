/**
 * The Jobs a MidiCorpus wants, as plain objects. Pure: the reconcile creates them when absent and patches only
 * parallelism and suspend afterwards (the rest of a Job's spec is immutable anyway).
 *
 * Flow: one scan Job (`midi-corpus scan`: lists the corpus, records it in Postgres, assigns shards, writes its totals
 * to the termination message), then one Indexed Job whose completion index is the shard number.
 */
import { capFlags, type CapSettings } from '../../contract/cap-options.js';
import type {
  V1EnvVar,
  V1Job,
  V1OwnerReference,
  V1PodSpec,
  V1PodTemplateSpec,
  V1Volume,
  V1VolumeMount,
} from '@kubernetes/client-node';
import { corpusKey } from '../../contract/corpus-key.js';
import { EXIT_USAGE } from '../../contract/exit-codes.js';
import { SCAN_CONNECTIONS } from '../../contract/pool-sizing.js';
import { runShardArgs } from '../../contract/run-shard-command.js';
import type { TlsFiles } from '../../contract/database-tls.js';
import { tlsFlags } from '../../contract/tls-options.js';
import { API_VERSION, KIND, type MidiCorpus } from '../api/v1alpha1/midicorpus.js';
import {
  ANNOTATION_BUDGET_KEY,
  ANNOTATION_CONNECTIONS,
  ANNOTATION_CORPUS,
  childLabels,
  childName,
  type ChildRole,
} from './names.js';
import { currentRun } from './rerun.js';

export const CORPUS_MOUNT = '/corpus';
export const SPLIT_MOUNT = '/split-tracks';
export const TERMINATION_LOG = '/dev/termination-log';
/**
 * Where spec.database.tls's Secret is mounted, read-only, with only the keys the spec names, under fixed file names:
 * the scan and the runners are told these paths by flag (--ssl-root-cert and its siblings), never the certificates.
 */
export const DATABASE_TLS_MOUNT = '/etc/midi-corpus/database-tls';
export const DATABASE_TLS_VOLUME = 'database-tls';
const TLS_FILE_NAMES = { rootCert: 'ca.crt', cert: 'tls.crt', key: 'tls.key' } as const;
export const RUNNER_CONTAINER = 'runner';
export const SCAN_CONTAINER = 'scan';

/**
 * The cluster autoscaler's per-pod switch. Runner pods say "true": a runner stopped by an eviction rolls back only its
 * batch in flight and the shard resumes (recorded files are skipped), the eviction burns no retry (DisruptionTarget is
 * ignored by the podFailurePolicy), and without the annotation their emptyDir /tmp would keep the autoscaler from ever
 * removing a node they run on. The scan pod says "false": a scan cannot resume, so an eviction would throw away the
 * whole listing; it is short, and blocking one node's scale-down for its duration is the cheaper side.
 */
export const SAFE_TO_EVICT = 'cluster-autoscaler.kubernetes.io/safe-to-evict';

/** Seconds a stopping runner gets to roll back its batch in flight and close its connections. */
export const TERMINATION_GRACE_SECONDS = 30;

/** Retries of the scan (exit 75: database unreachable). Exit 64 fails the scan at once. */
export const SCAN_BACKOFF_LIMIT = 4;

export interface DesiredJobOptions {
  /** The operator's --runner-image, used when spec.runner.image is absent. */
  defaultImage: string;
  /** The budget (see budget/pool-key.ts) the Job's pods draw on. */
  budgetKey: string;
}

export interface RunJobOptions extends DesiredJobOptions {
  /** Shards found by the scan: the Indexed Job's completions. */
  shards: number;
  /** Pods allowed by the connection budget now. */
  parallelism: number;
  /** Connections one runner pod may hold: poolSizeFor(cpu, pool).max. */
  perPod: number;
}

export function ownerReference(corpus: MidiCorpus): V1OwnerReference {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    name: corpus.metadata.name,
    uid: corpus.metadata.uid!,
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** The cap the server ledger admits the corpus's scan and runners against: the one the budget plans with. */
function capOf(corpus: MidiCorpus): CapSettings {
  const { database } = corpus.spec;
  return {
    ...(database.maxConnections !== undefined ? { maxConnections: database.maxConnections } : {}),
    reserved: database.reservedConnections,
    headroom: database.headroom,
    ledgerDatabase: database.ledgerDatabase,
  };
}

/** The paths of spec.database.tls's files in the pods (none without it). */
function tlsFilesOf(corpus: MidiCorpus): TlsFiles {
  const tls = corpus.spec.database.tls;
  if (tls === undefined) return {};
  const at = (name: string) => `${DATABASE_TLS_MOUNT}/${name}`;
  return {
    rootCert: at(TLS_FILE_NAMES.rootCert),
    ...(tls.certKey !== undefined && tls.keyKey !== undefined
      ? { cert: at(TLS_FILE_NAMES.cert), key: at(TLS_FILE_NAMES.key) }
      : {}),
  };
}

/**
 * The volume of spec.database.tls's Secret: only the keys the spec names (a Secret holding more shows no more), each
 * under its fixed name; read-only to the container's user (the runner runs as a user the Secret's files must not be
 * kept from: 0444, there is no other container in the pod to hide them from).
 */
function tlsVolume(corpus: MidiCorpus): V1Volume | undefined {
  const tls = corpus.spec.database.tls;
  if (tls === undefined) return undefined;
  const items: Array<{ key: string; path: string }> = [{ key: tls.caKey, path: TLS_FILE_NAMES.rootCert }];
  if (tls.certKey !== undefined && tls.keyKey !== undefined)
    items.push({ key: tls.certKey, path: TLS_FILE_NAMES.cert }, { key: tls.keyKey, path: TLS_FILE_NAMES.key });
  return { name: DATABASE_TLS_VOLUME, secret: { secretName: tls.secretRef.name, items, defaultMode: 0o444 } };
}

export function scanJob(corpus: MidiCorpus, options: DesiredJobOptions): V1Job {
  const { spec } = corpus;
  const args = ['scan', '--corpus', key(corpus), '--root', rootDir(spec.source.path)];
  for (const glob of spec.source.include ?? []) args.push('--include', glob);
  if (spec.sharding.targetShards !== undefined) args.push('--shards', String(spec.sharding.targetShards));
  else args.push('--files-per-shard', String(spec.sharding.filesPerShard));
  args.push(
    ...capFlags(capOf(corpus)),
    ...tlsFlags(tlsFilesOf(corpus)),
    '--termination-log',
    TERMINATION_LOG,
    '--json',
  );
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: childMetadata(corpus, 'scan', budgetAnnotations(options.budgetKey, SCAN_CONNECTIONS)),
    spec: {
      completions: 1,
      parallelism: 1,
      backoffLimit: SCAN_BACKOFF_LIMIT,
      // A replacement scan starts only after the failed one is gone: never two scans (two connections) at once.
      podReplacementPolicy: 'Failed',
      podFailurePolicy: {
        rules: [
          { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] },
          { action: 'FailJob', onExitCodes: { containerName: SCAN_CONTAINER, operator: 'In', values: [EXIT_USAGE] } },
        ],
      },
      ttlSecondsAfterFinished: spec.retention.ttlSecondsAfterFinished,
      template: podTemplate(corpus, 'scan', SCAN_CONTAINER, args, options, {
        [SAFE_TO_EVICT]: 'false',
        ...budgetAnnotations(options.budgetKey, SCAN_CONNECTIONS),
      }),
    },
  };
}

export function runJob(corpus: MidiCorpus, options: RunJobOptions): V1Job {
  const { spec } = corpus;
  // The shard is the pod's completion index and its CPU its request, both read from the environment.
  const args = runShardArgs({
    corpus: key(corpus),
    root: rootDir(spec.source.path),
    splitOutput: spec.splitTracks && joinPath(SPLIT_MOUNT, spec.splitTracks.path),
    // Every pool knob explicitly (the CRD defaults them), so the pool the runner opens is the one the budget counted.
    pool: spec.runner.pool,
    cap: capOf(corpus),
    tls: tlsFilesOf(corpus),
    maxFileBytes: spec.runner.maxFileBytes,
    fileTimeoutMs: spec.runner.fileTimeoutMs,
  });
  const job: V1Job = {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: childMetadata(corpus, 'run', budgetAnnotations(options.budgetKey, options.perPod)),
    spec: {
      completionMode: 'Indexed',
      completions: options.shards,
      parallelism: options.parallelism,
      suspend: spec.suspend,
      backoffLimitPerIndex: spec.runner.backoffLimitPerIndex,
      // Required by podFailurePolicy, and the heart of the budget: a replacement pod is created only once the pod it
      // replaces has terminated, so old and new never hold connections at the same time.
      podReplacementPolicy: 'Failed',
      podFailurePolicy: {
        rules: [
          // An eviction (autoscaler scale-down, preemption, node drain) is not the shard's fault: no retry burnt.
          { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] },
          // Bad configuration: retrying the shard cannot help, fail this index at once.
          {
            action: 'FailIndex',
            onExitCodes: { containerName: RUNNER_CONTAINER, operator: 'In', values: [EXIT_USAGE] },
          },
        ],
      },
      ttlSecondsAfterFinished: spec.retention.ttlSecondsAfterFinished,
      template: podTemplate(corpus, 'run', RUNNER_CONTAINER, args, options, {
        [SAFE_TO_EVICT]: 'true',
        ...budgetAnnotations(options.budgetKey, options.perPod),
      }),
    },
  };
  if (spec.runner.maxFailedIndexes !== undefined) job.spec!.maxFailedIndexes = spec.runner.maxFailedIndexes;
  return job;
}

function key(corpus: MidiCorpus): string {
  return corpusKey(corpus.metadata.namespace, corpus.metadata.name);
}

function budgetAnnotations(budgetKey: string, connections: number): Record<string, string> {
  return { [ANNOTATION_BUDGET_KEY]: budgetKey, [ANNOTATION_CONNECTIONS]: String(connections) };
}

function childMetadata(corpus: MidiCorpus, role: ChildRole, annotations: Record<string, string>): V1Job['metadata'] {
  return {
    // The run the status is on: a run again (spec.rerun) gets Jobs of its own names.
    name: childName(corpus.metadata.name, role, currentRun(corpus)),
    namespace: corpus.metadata.namespace,
    labels: childLabels(corpus.metadata.uid!, role),
    annotations: { ...annotations, [ANNOTATION_CORPUS]: corpus.metadata.name },
    ownerReferences: [ownerReference(corpus)],
  };
}

function podTemplate(
  corpus: MidiCorpus,
  role: ChildRole,
  container: string,
  args: string[],
  options: DesiredJobOptions,
  annotations: Record<string, string>,
): V1PodTemplateSpec {
  const { spec } = corpus;
  const volumes: V1Volume[] = [
    { name: 'corpus', ...spec.source.volume },
    // The root file system is read-only; Node, pg and worker threads still want a writable /tmp.
    { name: 'tmp', emptyDir: { sizeLimit: '256Mi' } },
  ];
  const mounts: V1VolumeMount[] = [
    { name: 'corpus', mountPath: CORPUS_MOUNT, readOnly: true },
    { name: 'tmp', mountPath: '/tmp' },
  ];
  const tls = tlsVolume(corpus);
  if (tls) {
    volumes.push(tls);
    mounts.push({ name: DATABASE_TLS_VOLUME, mountPath: DATABASE_TLS_MOUNT, readOnly: true });
  }
  if (role === 'run' && spec.splitTracks) {
    volumes.push({ name: 'split-tracks', ...spec.splitTracks.volume });
    mounts.push({ name: 'split-tracks', mountPath: SPLIT_MOUNT });
  }
  const env: V1EnvVar[] = [
    {
      name: 'DATABASE_URL',
      valueFrom: { secretKeyRef: { name: spec.database.secretRef.name, key: spec.database.secretRef.key } },
    },
    { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    {
      name: 'CPU_REQUEST_MILLIS',
      valueFrom: { resourceFieldRef: { containerName: container, resource: 'requests.cpu', divisor: '1m' } },
    },
    // The per-file memory bounds derive from it (job-runner/runner/memory.ts); without a limit, the node's allocatable.
    {
      name: 'MEMORY_LIMIT_BYTES',
      valueFrom: { resourceFieldRef: { containerName: container, resource: 'limits.memory', divisor: '1' } },
    },
  ];
  const podSpec: V1PodSpec = {
    restartPolicy: 'Never', // podFailurePolicy requires it; retries are the Job's, per index.
    automountServiceAccountToken: false, // runners never talk to the Kubernetes API
    enableServiceLinks: false,
    terminationGracePeriodSeconds: TERMINATION_GRACE_SECONDS,
    securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
    containers: [
      {
        name: container,
        image: spec.runner.image ?? options.defaultImage,
        args,
        env,
        resources: {
          requests: stringQuantities(spec.runner.resources.requests),
          limits: stringQuantities(spec.runner.resources.limits),
        },
        volumeMounts: mounts,
        terminationMessagePath: TERMINATION_LOG,
        terminationMessagePolicy: 'File',
        securityContext: {
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          runAsNonRoot: true,
          capabilities: { drop: ['ALL'] },
          seccompProfile: { type: 'RuntimeDefault' },
        },
      },
    ],
    volumes,
  };
  if (spec.runner.imagePullPolicy !== undefined) podSpec.containers[0]!.imagePullPolicy = spec.runner.imagePullPolicy;
  if (spec.runner.nodeSelector !== undefined) podSpec.nodeSelector = spec.runner.nodeSelector;
  if (spec.runner.tolerations !== undefined) podSpec.tolerations = spec.runner.tolerations;
  if (spec.runner.priorityClassName !== undefined) podSpec.priorityClassName = spec.runner.priorityClassName;
  return {
    metadata: {
      labels: childLabels(corpus.metadata.uid!, role),
      annotations: { ...annotations, [ANNOTATION_CORPUS]: corpus.metadata.name },
    },
    spec: podSpec,
  };
}

function stringQuantities(q: Record<string, string | number> | undefined): Record<string, string> | undefined {
  return q === undefined ? undefined : Object.fromEntries(Object.entries(q).map(([k, v]) => [k, String(v)]));
}

function rootDir(path: string): string {
  return joinPath(CORPUS_MOUNT, path);
}

function joinPath(mount: string, path: string): string {
  const rel = path.replace(/^\/+|\/+$/g, '');
  return rel === '' ? mount : `${mount}/${rel}`;
}
