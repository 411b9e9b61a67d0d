import type { Options } from 'yargs';
import { nonEmpty, oneOf, wholeNumber } from '../common/flags.js';
import { DEFAULT_LEDGER_DATABASE } from './ledger.js';

/**
 * How a process reaches the server. direct: its own connections, admitted by the server ledger. transaction: through
 * a pooler in transaction mode (PgBouncer pool_mode=transaction), where each transaction may run on another server
 * connection: no ledger (its lock is session-level, its claims are read from the server's sessions, which are the
 * pooler's), no named prepared statements, no session settings. The controller's pod cap against the pooler's client
 * limit is what keeps the connections within it there.
 */
export const POOL_MODES = ['direct', 'transaction'] as const;
export type PoolMode = (typeof POOL_MODES)[number];

/**
 * The connection cap on a command line: what `local` plans with and what every `run-shard` is admitted against by
 * the server ledger (ledger.ts), so the cap the controller (or local mode) planned is the cap each runner checks.
 */
export interface CapSettings {
  /** Absent: direct. */
  poolMode?: PoolMode;
  /** A lower max_connections than the server's. */
  maxConnections?: number;
  /** Overrides the server's superuser_reserved_connections + reserved_connections. */
  reserved?: number;
  headroom: number;
  /** Where the ledger's lock lives: one database that every consumer of the server may connect to. */
  ledgerDatabase: string;
}

export const DEFAULT_HEADROOM = 2;

export const CAP_OPTIONS = {
  'max-connections': {
    coerce: wholeNumber('--max-connections', { min: 1 }),
    describe: "Connection limit to plan for (default: the server's max_connections)",
  },
  reserved: {
    coerce: wholeNumber('--reserved', { min: 0 }),
    describe:
      "Connections to leave alone (default: the server's superuser_reserved_connections + reserved_connections)",
  },
  headroom: {
    coerce: wholeNumber('--headroom', { min: 0 }),
    default: DEFAULT_HEADROOM,
    describe: 'Safety margin left free on top of the reserved connections',
  },
  'ledger-database': {
    type: 'string',
    coerce: nonEmpty('--ledger-database'),
    default: DEFAULT_LEDGER_DATABASE,
    describe: "Database of the server ledger's lock: the same for every consumer of one server",
  },
} as const satisfies Record<string, Options>;

/**
 * --pool-mode, for the processes the controller starts (scan, run-shard): local mode plans with the server's ledger
 * itself, so it takes none.
 */
export const POOL_MODE_OPTIONS = {
  'pool-mode': {
    type: 'string',
    coerce: oneOf('--pool-mode', POOL_MODES),
    default: 'direct',
    describe:
      'direct: connections to the server, admitted by its ledger; transaction: through a transaction-mode pooler (no ledger, no named statements, no session settings)',
  },
} as const satisfies Record<string, Options>;

export interface CapArgs {
  'pool-mode'?: PoolMode;
  'max-connections'?: number;
  reserved?: number;
  headroom: number;
  'ledger-database': string;
}

export function capSettingsFrom(args: CapArgs): CapSettings {
  return {
    ...(args['pool-mode'] !== undefined && args['pool-mode'] !== 'direct' ? { poolMode: args['pool-mode'] } : {}),
    ...(args['max-connections'] !== undefined ? { maxConnections: args['max-connections'] } : {}),
    ...(args.reserved !== undefined ? { reserved: args.reserved } : {}),
    headroom: args.headroom,
    ledgerDatabase: args['ledger-database'],
  };
}

/** The inverse of capSettingsFrom: the flags that ask for `cap`. direct is the default, left off. */
export function capFlags(cap: CapSettings): string[] {
  return [
    ...(cap.poolMode !== undefined && cap.poolMode !== 'direct' ? ['--pool-mode', cap.poolMode] : []),
    ...(cap.maxConnections !== undefined ? ['--max-connections', String(cap.maxConnections)] : []),
    ...(cap.reserved !== undefined ? ['--reserved', String(cap.reserved)] : []),
    '--headroom',
    String(cap.headroom),
    '--ledger-database',
    cap.ledgerDatabase,
  ];
}
