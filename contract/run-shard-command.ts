import { capFlags, type CapSettings } from './cap-options.js';
import { poolFlags } from './pool-options.js';
import type { PoolTuning } from './pool-sizing.js';
import type { TlsFiles } from './database-tls.js';
import { tlsFlags } from './tls-options.js';

/**
 * The runner's command line, `run-shard …`: the args of a run Job's container (the image's entrypoint is the CLI) and
 * what local mode starts for each shard, built in one place so that the two cannot drift. The flags are the options
 * of cli/commands/run-shard.ts. The database URL is never on it (`ps` would show it): the runner reads DATABASE_URL
 * from its environment.
 */
export interface RunShardInvocation {
  /** The corpus key (corpus-key.ts), as given to the scan. */
  corpus: string;
  /** The corpus directory, as given to the scan. */
  root: string;
  /** Absent in a Job: the runner takes JOB_COMPLETION_INDEX. */
  shard?: number;
  /** Absent in a Job: the runner takes CPU_REQUEST_MILLIS (the Downward API's view of its CPU request). */
  cpuMillis?: number;
  splitOutput?: string;
  /** Fields left undefined are left to the runner's defaults. */
  pool: PoolTuning;
  /** The cap the runner is admitted against by the server ledger. */
  cap: CapSettings;
  /** The certificate files of the TLS connection to the database (the controller's mounted Secret); paths only. */
  tls?: TlsFiles;
  maxFileBytes?: number;
  fileTimeoutMs?: number;
  retryFailed?: boolean;
}

/**
 * The one message a runner sends over the IPC channel local mode spawns it with (shutdown.ts): its pool is open, the
 * server ledger admitted it. Until then it may be waiting for room, probing the ledger over a connection that no
 * admission counts (the headroom absorbs those): local mode starts its next runner only once the last one is
 * admitted, so a run keeps at most one runner waiting, and at most one such probe open.
 */
export const ADMITTED_MESSAGE = { mco: 'admitted' } as const;

export function isAdmittedMessage(message: unknown): boolean {
  return typeof message === 'object' && message !== null && (message as { mco?: unknown }).mco === ADMITTED_MESSAGE.mco;
}

export function runShardArgs(run: RunShardInvocation): string[] {
  const flag = (name: string, value: number | string | undefined) =>
    value === undefined ? [] : [`--${name}`, String(value)];
  return [
    'run-shard',
    '--corpus',
    run.corpus,
    '--root',
    run.root,
    ...flag('shard', run.shard),
    ...flag('cpu-millis', run.cpuMillis),
    ...flag('split-output', run.splitOutput),
    ...poolFlags(run.pool),
    ...capFlags(run.cap),
    ...tlsFlags(run.tls ?? {}),
    ...flag('max-file-bytes', run.maxFileBytes),
    ...flag('file-timeout-ms', run.fileTimeoutMs),
    ...(run.retryFailed ? ['--retry-failed'] : []),
    '--json',
  ];
}
