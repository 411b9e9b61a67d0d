/**
 * The MidiCorpus API, v1alpha1: the one source of truth for the CRD's OpenAPI schema (defaults, CEL rules) and for the
 * TypeScript types the controller reads. `controller/api/crd.ts` wraps this schema into the CustomResourceDefinition.
 */
import type { V1ObjectMeta, V1Toleration, V1Volume } from '@kubernetes/client-node';
import { DEFAULT_LEDGER_DATABASE } from '../../../contract/ledger.js';
import { DEFAULT_POOL_TUNING, type PoolTuning } from '../../../contract/pool-sizing.js';
import { PHASES } from './conditions.js';
import {
  arrayOf,
  boolean,
  integer,
  mapOf,
  number,
  object,
  positiveQuantity,
  preserved,
  required,
  string,
  type TypeOf,
} from '../openapi.js';

export const GROUP = 'midi.corpus.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = 'MidiCorpus';
export const PLURAL = 'midicorpora';
export const SINGULAR = 'midicorpus';
export const SHORT_NAMES = ['mco'];

/**
 * The label a Secret must carry, with DATABASE_SECRET_LABEL_VALUE, before a MidiCorpus may name it. The operator hands
 * the Secret to pods it creates, so without this opt-in anyone allowed to create MidiCorpora could have any Secret of
 * their namespace mounted into a pod they control, even without the right to read Secrets themselves.
 */
export const DATABASE_SECRET_LABEL = `${GROUP}/database`;
export const DATABASE_SECRET_LABEL_VALUE = 'true';

/** Indexed Jobs refuse more completions than this when backoffLimitPerIndex is set (Kubernetes' own limit). */
export const MAX_SHARDS = 100_000;

/** spec.rescanEverySeconds at most: the reconcile's look-again timer is a setTimeout, which stops at 2^31 − 1 ms. */
export const MAX_RESCAN_SECONDS = 2_000_000;

/**
 * The most connections the CRD lets one runner pod's pool hold (spec.runner.pool.maxPerPod). The budget counts a pod
 * it cannot size (an object without its connections annotation) as this large: never too small.
 */
export const MAX_CONNECTIONS_PER_POD = 1000;

/** A core VolumeSource (the `volumes[]` entry of a pod, without its name): `{persistentVolumeClaim: {claimName: x}}`. */
export type VolumeSource = Omit<V1Volume, 'name'>;

/** A Secret's data key, as Kubernetes allows it. */
const SECRET_KEY = '^[-._a-zA-Z0-9]+$';

const DNS_SUBDOMAIN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';

/** The name of a Secret in the MidiCorpus's namespace (secretRef.name of the database and of its TLS files). */
function secretName(description: string) {
  return required(string({ minLength: 1, maxLength: 253, pattern: DNS_SUBDOMAIN, description }));
}

/** A key of such a Secret. */
function secretKey<const O extends { default?: string; description: string }>(o: O) {
  return string({ minLength: 1, maxLength: 253, pattern: SECRET_KEY, ...o });
}

function volumeSource(description: string) {
  return required(
    preserved<VolumeSource>({
      description: `${description} Any Kubernetes volume source, exactly as in a pod's volumes[] entry without \`name\`, e.g. \`{persistentVolumeClaim: {claimName: midi}}\`, \`{nfs: {server: nas, path: /midi}}\`.`,
      // Exactly one source: key counts are checked by the schema itself (CEL's size() has no overload for a
      // preserve-unknown object). `name` is declared only so that the rule below compiles.
      minProperties: 1,
      maxProperties: 1,
      properties: { name: string({ maxLength: 253 }) },
      validations: [
        {
          rule: '!has(self.name)',
          message:
            'give the volume source only (persistentVolumeClaim, nfs, ...): the operator names the volume itself',
        },
      ],
    }),
  );
}

/** A path relative to a volume's root: no leading slash, no `..` segment (it must stay inside the volume). */
function relativePath(description: string) {
  return string({
    description,
    default: '',
    maxLength: 4096,
    validations: [
      { rule: "!self.startsWith('/')", message: 'must be relative to the volume root (no leading /)' },
      {
        rule: "!(self == '..' || self.startsWith('../') || self.endsWith('/..') || self.contains('/../'))",
        message: 'must stay inside the volume (no .. segments)',
      },
    ],
  });
}

const sourceSchema = object(
  {
    volume: volumeSource('The volume that holds the corpus. Mounted read-only.'),
    path: relativePath('Directory inside the volume to scan, relative to its root. Empty: the whole volume.'),
    include: arrayOf(string({ minLength: 1, maxLength: 1024 }), {
      description:
        "Glob patterns (picomatch syntax, relative to path) of the files to ingest. Empty or absent: the runner's default (MIDI file extensions).",
      maxItems: 64,
      listType: 'atomic',
    }),
  },
  {
    description: 'Where the corpus is. Immutable: the files are recorded and sharded once, by the scan.',
    validations: [
      { rule: 'self == oldSelf', message: 'source is immutable: create a new MidiCorpus for another corpus' },
    ],
  },
);

/**
 * How the corpus reaches the server through a connection pooler. Only transaction pooling needs one: a session pooler
 * gives each client a server connection of its own for the whole session, so named statements, session settings and
 * the server's ledger (its session-level advisory lock, its claims in application_name) behave as on a direct
 * connection, and the corpus is configured as direct, with maxConnections at what the pooler lets through.
 */
const poolerSchema = object(
  {
    mode: required(
      string({
        enum: ['transaction'],
        description:
          "The pooler's pool_mode. transaction: each transaction may run on another server connection, so the runners use no named prepared statements and no session state, and the server's ledger (a session-level advisory lock, claims read from pg_stat_activity) is not used: the budget is planned against maxClientConnections instead of the server's max_connections.",
      }),
    ),
    maxClientConnections: required(
      integer({
        minimum: 1,
        maximum: 1_000_000,
        description:
          "Client connections the pooler accepts from this operator's pods (its max_client_conn, less what its other clients use). The budget's limit: maxClientConnections − headroom − the operator's own connection is what the runner and scan pods of every corpus on this pooler may hold together.",
      }),
    ),
    poolSize: required(
      integer({
        minimum: 1,
        maximum: 262_143,
        description:
          "Server connections the pooler may open for this database and user (its default_pool_size or the database's pool_size, bounded by max_db_connections). Not planned with (the pooler enforces it: clients beyond it wait in the pooler for a server connection) but shown in status, and checked against maxConnections when that is given.",
      }),
    ),
  },
  {
    description:
      'Absent: the URL reaches the PostgreSQL server directly. Set when it reaches a pooler in transaction mode (PgBouncer pool_mode=transaction): see docs/databases/pgbouncer.md.',
  },
);

const databaseSchema = object(
  {
    secretRef: required(
      object(
        {
          name: secretName(
            `Name of a Secret in the MidiCorpus's namespace, labelled ${DATABASE_SECRET_LABEL}=${DATABASE_SECRET_LABEL_VALUE} (the operator refuses any other: it passes the Secret to the pods it creates).`,
          ),
          key: secretKey({ default: 'url', description: 'Key of the Secret that holds the postgres:// URL.' }),
        },
        {
          description:
            'The Secret holding the database URL (postgres://user:password@host:port/db). Only the runner pods and the operator read it; it never appears in status, Events or logs.',
        },
      ),
    ),
    tls: object(
      {
        secretRef: required(
          object(
            {
              name: secretName(
                `Name of a Secret in the MidiCorpus's namespace, labelled ${DATABASE_SECRET_LABEL}=${DATABASE_SECRET_LABEL_VALUE} like the database Secret (the operator mounts it into the pods it creates).`,
              ),
            },
            { description: 'The Secret holding the CA certificate, and the client certificate and key if any.' },
          ),
        ),
        caKey: secretKey({
          default: 'ca.crt',
          description:
            "Key of the Secret holding the CA certificate (PEM) the server's certificate must chain to: libpq's sslrootcert.",
        }),
        certKey: secretKey({
          description: 'Key of the client certificate (PEM), for a server that asks for one: sslcert. Needs keyKey.',
        }),
        keyKey: secretKey({
          description: "Key of the client certificate's private key (PEM, unencrypted): sslkey. Needs certKey.",
        }),
      },
      {
        description:
          "Certificates for a TLS connection to the database. What is checked is the URL's sslmode, with libpq's meaning: require (encrypted; with this CA the chain is verified too), verify-ca (the chain), verify-full (the chain and the host name: what a managed database wants). The runner and scan pods get the Secret mounted read-only as files, never in their environment; the operator reads it through the API and keeps it in memory.",
        validations: [
          {
            rule: 'has(self.certKey) == has(self.keyKey)',
            message: 'certKey and keyKey go together: a client certificate needs its key',
          },
        ],
      },
    ),
    maxConnections: integer({
      minimum: 1,
      maximum: 262_143,
      description:
        "The server's max_connections. Absent: the operator asks the server (SHOW max_connections) with one short-lived connection and caches the answer.",
    }),
    reservedConnections: integer({
      default: 3,
      minimum: 0,
      description:
        "Connections runners must never take: the server's superuser_reserved_connections (3 by default in Postgres) and reserved_connections, and whatever else you set aside. Other applications' connections need no reserve: the operator reads them from the server on every pass and subtracts them (status.budget.foreignConnections).",
    }),
    headroom: integer({
      default: 2,
      minimum: 0,
      description: 'A safety margin left free on top of the reserved connections.',
    }),
    ledgerDatabase: string({
      default: DEFAULT_LEDGER_DATABASE,
      minLength: 1,
      maxLength: 63,
      pattern: '^[A-Za-z0-9_][-A-Za-z0-9_.$]*$',
      description:
        "The database of the server's ledger: runner and scan pods take its advisory lock to be admitted one at a time against the connections everyone else on the server holds, and the operator reads the server's connections through it. Every consumer of one server (every corpus, cluster and local run) must name the same one, and the URL's user needs CONNECT on it. Default postgres, which every server has. A Postgres identifier: at most 63 characters, letters, digits, _ . - $.",
    }),
    poolKey: string({
      minLength: 1,
      maxLength: 253,
      description:
        "Corpora with the same poolKey share one connection budget. Absent: the key is a hash of the URL's host:port, because max_connections belongs to the server, not to one database (credentials and database name are ignored); behind a pooler, the pooler's host:port (a key of its own, apart from any server's). Set it when two URLs reach one server or one pooler by different names.",
    }),
    pooler: poolerSchema,
  },
  {
    description: 'The PostgreSQL database the corpus is ingested into, and its connection budget.',
    validations: [
      {
        rule: '!has(self.maxConnections) || self.reservedConnections < self.maxConnections',
        message: 'reservedConnections must be less than maxConnections',
      },
      {
        rule: '!has(self.maxConnections) || self.reservedConnections + self.headroom < self.maxConnections',
        message:
          'reservedConnections + headroom must leave at least one connection below maxConnections for the runners',
      },
      {
        rule: '!has(self.pooler) || self.headroom < self.pooler.maxClientConnections',
        message: 'headroom must leave at least one connection below pooler.maxClientConnections for the runners',
      },
      {
        rule: '!has(self.pooler) || !has(self.maxConnections) || self.pooler.poolSize + self.reservedConnections <= self.maxConnections',
        message:
          "pooler.poolSize + reservedConnections must fit the server's maxConnections: the pooler would open more server connections than the server has",
      },
    ],
  },
);

const shardingSchema = object(
  {
    filesPerShard: integer({
      minimum: 1,
      maximum: 10_000_000,
      description: 'Files per shard (one shard = one pod run). The scan derives the shard count.',
    }),
    targetShards: integer({
      minimum: 1,
      maximum: MAX_SHARDS,
      description: 'Number of shards; the scan spreads the files evenly over them.',
    }),
  },
  {
    default: { filesPerShard: 1000 },
    description:
      'How the corpus is cut into shards, one Indexed Job completion each. Give exactly one of filesPerShard or targetShards. Immutable.',
    validations: [
      {
        rule: 'has(self.filesPerShard) != has(self.targetShards)',
        message: 'set exactly one of filesPerShard or targetShards',
      },
      { rule: 'self == oldSelf', message: 'sharding is immutable: the scan has already assigned shards' },
    ],
  },
);

const poolSchema = object(
  {
    connectionsPerWorker: number({
      default: DEFAULT_POOL_TUNING.connectionsPerWorker,
      minimum: 0,
      exclusiveMinimum: true,
      maximum: 64,
      description: 'Batch-writer connections per parse worker (one worker per whole CPU requested).',
    }),
    extraConnections: integer({
      default: DEFAULT_POOL_TUNING.extraConnections,
      minimum: 0,
      maximum: 64,
      description: 'Connections beyond the writers (claims, heartbeats, migrations).',
    }),
    maxPerPod: integer({
      default: DEFAULT_POOL_TUNING.maxPerPod,
      minimum: 1,
      maximum: MAX_CONNECTIONS_PER_POD,
      description: "Hard cap on one pod's connections, whatever its CPU request.",
    }),
    warmFraction: number({
      default: DEFAULT_POOL_TUNING.warmFraction,
      minimum: 0,
      exclusiveMinimum: true,
      maximum: 1,
      description: 'Share of the pool opened before the first file (rounded up, at least one).',
    }),
  },
  { default: {}, description: "Connection pool of each runner pod. The budget counts each pod at the pool's maximum." },
);

const resourcesSchema = object(
  {
    // Positive quantities only (a zero or negative request or limit is nonsense for a runner, and requests.cpu must be
    // positive): checked by pattern, see positiveQuantity().
    requests: mapOf(positiveQuantity({ description: 'A positive quantity.' }), { maxProperties: 32 }),
    limits: mapOf(positiveQuantity({ description: 'A positive quantity.' }), { maxProperties: 32 }),
  },
  {
    default: { requests: { cpu: '1', memory: '512Mi' }, limits: { memory: '1Gi' } },
    description:
      'Resources of each runner pod. requests.cpu is required: it sets the parse workers and so the connection pool.',
    validations: [
      {
        rule: "has(self.requests) && 'cpu' in self.requests",
        message: 'requests.cpu is required: the runner sizes its workers and connection pool from it',
      },
    ],
  },
);

const runnerSchema = object(
  {
    image: string({
      minLength: 1,
      maxLength: 1024,
      description: "Runner image. Absent: the operator's --runner-image (the operator's own image).",
    }),
    imagePullPolicy: string({ enum: ['Always', 'IfNotPresent', 'Never'] }),
    resources: resourcesSchema,
    pool: poolSchema,
    maxParallelism: integer({
      default: 50,
      minimum: 1,
      maximum: MAX_SHARDS,
      description: 'Most runner pods at once. The connection budget may allow fewer.',
    }),
    nodeSelector: mapOf(string({ maxLength: 63 }), { maxProperties: 64 }),
    tolerations: arrayOf(preserved<V1Toleration>(), {
      maxItems: 64,
      listType: 'atomic',
      description: 'Pod tolerations, as in a pod spec.',
    }),
    priorityClassName: string({ maxLength: 253 }),
    backoffLimitPerIndex: integer({
      default: 6,
      minimum: 0,
      maximum: 100,
      description:
        'Retries per shard. Evictions (DisruptionTarget) are not counted; exit code 64 (bad configuration) fails the shard at once.',
    }),
    maxFailedIndexes: integer({
      minimum: 0,
      maximum: MAX_SHARDS,
      description: 'Stop the run once this many shards have failed. Absent: every shard is tried.',
    }),
    fileTimeoutMs: integer({
      minimum: 1,
      maximum: 3_600_000,
      description: "Per-file parse time limit. Absent: the runner's default.",
    }),
    maxFileBytes: integer({
      minimum: 1,
      format: 'int64',
      description: "Files larger than this are recorded as skipped. Absent: the runner's default.",
    }),
  },
  { default: {}, description: 'The runner pods (one per shard at a time).' },
);

const splitTracksSchema = object(
  {
    volume: volumeSource('Where split single-track files are written. Mounted read-write.'),
    path: relativePath('Directory inside the volume. Empty: its root.'),
  },
  { description: 'Optional: write each note-bearing track of every file as its own MIDI file.' },
);

const retentionSchema = object(
  {
    ttlSecondsAfterFinished: integer({
      default: 86_400,
      minimum: 0,
      description: "Seconds a finished Job (and its pods' logs) is kept before Kubernetes deletes it.",
    }),
  },
  { default: {} },
);

export const midiCorpusSpecSchema = object(
  {
    source: required(sourceSchema),
    database: required(databaseSchema),
    sharding: shardingSchema,
    runner: runnerSchema,
    splitTracks: splitTracksSchema,
    suspend: boolean({
      default: false,
      description:
        "Stop the runner pods: the run Job is suspended, so its running pods are deleted (each gets its grace period to roll back its batch in flight; what it recorded stays) and none is started. Frees the corpus's budget share once they are gone. false: the shards resume where they stopped, recorded files skipped. A scan already running finishes; none starts while suspended.",
    }),
    rerun: integer({
      default: 0,
      minimum: 0,
      format: 'int64',
      description:
        'Bump to run the corpus again, under the same corpus key and rows: a new scan compares the volume with the last scan (a file is changed when its size or modification time differs; gone files are marked missing, their results kept), then a new run Job analyses only what needs it (added, changed, failed or pending files). Unchanged results are never analysed again. On a running corpus, the run in flight is stopped first (its pods deleted, what they recorded kept). May only grow.',
      validations: [{ rule: 'self >= oldSelf', message: 'rerun may only grow: bump it to run again' }],
    }),
    rescanEverySeconds: integer({
      minimum: 60,
      maximum: MAX_RESCAN_SECONDS,
      description:
        'Optional: run again by itself this many seconds after a run finished (Succeeded or Failed), as a bump of spec.rerun would: a rescan that analyses only what changed on the volume. Absent: only a bump of spec.rerun runs again.',
    }),
    retention: retentionSchema,
    deletionPolicy: string({
      enum: ['Keep', 'Delete'],
      default: 'Keep',
      description:
        "What deleting this MidiCorpus does to its rows in Postgres. Keep: they stay (a new MidiCorpus of the same namespace and name finds them again). Delete: a finalizer holds the deletion until the controller has stopped the corpus's pods and deleted its rows; if the database cannot be reached it says so (condition Progressing, reason RowsNotDeleted, and an Event), tries again, and lets the object go with its rows kept after 10 minutes. Setting Keep on a corpus being deleted lets it go at once.",
    }),
  },
  { description: 'A MIDI corpus to ingest into PostgreSQL.' },
);

const conditionSchema = object({
  type: required(string({ maxLength: 316 })),
  status: required(string({ enum: ['True', 'False', 'Unknown'] })),
  reason: required(string({ maxLength: 1024 })),
  message: required(string({ maxLength: 32_768 })),
  lastTransitionTime: required(string({ format: 'date-time' })),
  observedGeneration: integer({ minimum: 0, format: 'int64' }),
});

const count = (description: string) => integer({ minimum: 0, format: 'int64', description });

export const midiCorpusStatusSchema = object({
  phase: string({ enum: PHASES }),
  reason: string({
    maxLength: 1024,
    description:
      'What needs a person, in one word: the reason of the first of the InvalidSpec, WriteRejected, PodsFailing and Degraded conditions that is True (e.g. Invalid, ImagePullFailed, OOMKilled). Absent when none is.',
  }),
  observedGeneration: integer({ format: 'int64' }),
  observedRerun: count('The spec.rerun this status is about: the run the phase, counts and Jobs belong to.'),
  run: count(
    'Which run this is: 0 the first, one more for each run again (a spec.rerun bump or a scheduled rescan). The Jobs are named after it.',
  ),
  lastScan: object({
    added: count("Files recorded for the first time by this run's scan."),
    changed: count('Files whose size or modification time differed from the last scan: analysed again.'),
    unchanged: count('Files as the last scan saw them: their results are kept.'),
    missing: count('Files recorded by an earlier scan and gone from the volume: marked missing, results kept.'),
    work: count("Files given to this run's shards: added, changed, failed or pending ones."),
  }),
  conditions: arrayOf(conditionSchema, { listType: 'map', listMapKeys: ['type'], maxItems: 16 }),
  files: object({
    total: count('Files found by the scan.'),
    processed: count('Files recorded (ok, failed or skipped), from the database.'),
    failed: count('Files recorded as failed (per-file reasons are in the database, never here).'),
  }),
  shards: object({
    total: count('Shards (completions of the run Job).'),
    succeeded: count('Shards done.'),
    failed: count('Shards that exhausted their retries.'),
  }),
  pods: object({
    active: count('Runner pods running or pending.'),
    terminating: count('Runner pods being deleted; they still hold connections and count against the budget.'),
  }),
  budget: object({
    poolKey: string({
      description: 'The budget this corpus shares (spec.database.poolKey, or a hash of the server host:port).',
    }),
    limit: count(
      "What the budget is planned against: the server's max_connections, or behind a pooler its maxClientConnections (limitSource says which).",
    ),
    limitSource: string({
      enum: ['server', 'pooler'],
      description:
        "server: limit is the server's max_connections (the spec's, else SHOW max_connections). pooler: limit is spec.database.pooler.maxClientConnections, the smallest of the corpora on this pooler.",
    }),
    poolerPoolSize: count(
      'Behind a pooler: the server connections it may open for this database and user (spec.database.pooler.poolSize, the smallest of the corpora on this pooler).',
    ),
    reserved: count('reservedConnections (0 behind a pooler: the pooler keeps no client slots for superusers).'),
    headroom: count('headroom.'),
    operator: count('Connections held by scan pods and the operator itself on this database.'),
    foreignConnections: count(
      "Connections on the server that are not this operator's pods': other applications, other clusters' and local runs' runners, and backends of this operator's pods that no longer exist. Read from pg_stat_activity: what two readings a few seconds apart both show, so a connection that comes and goes moves no pod; an upper bound when the operator's role may not see other users' sessions (see the ForeignConnectionsUncertain condition); 0 when it could not be read.",
    ),
    allowance: count(
      'limit − reserved − headroom − operator − foreignConnections: what all runner pods on this database may hold.',
    ),
    share: count("This corpus's fair share of the allowance."),
    perPod: count('Connections one runner pod may hold (its pool maximum).'),
    parallelism: count('Runner pods allowed now.'),
    inUse: count("Connections held by this corpus's existing runner pods (Terminating included)."),
  }),
  jobs: object({ scan: string(), run: string() }),
  startTime: string({ format: 'date-time' }),
  completionTime: string({ format: 'date-time' }),
});

export type MidiCorpusSpec = TypeOf<typeof midiCorpusSpecSchema>;
export type MidiCorpusStatus = TypeOf<typeof midiCorpusStatusSchema>;
export type MidiCorpusCondition = TypeOf<typeof conditionSchema>;
export type BudgetStatus = NonNullable<MidiCorpusStatus['budget']>;

export interface MidiCorpus {
  apiVersion: typeof API_VERSION;
  kind: typeof KIND;
  metadata: V1ObjectMeta & { name: string; namespace: string };
  spec: MidiCorpusSpec;
  status?: MidiCorpusStatus;
}

// Compile-time guard: the CRD's pool block is exactly what the runner's pool function accepts.
const _poolTuningMatches: PoolTuning = {} as MidiCorpusSpec['runner']['pool'];
void _poolTuningMatches;
