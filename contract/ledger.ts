/**
 * The server's ledger of connections: how every consumer of one Postgres server (runner pods of any cluster, local
 * runs, scans) agrees on its connection slots, with no table, no schema and no privilege beyond CONNECT.
 *
 * - **A claim is written in application_name**: `mco <role>/<n> …` says "this process may hold up to n
 *   connections". Every connection of the process carries the same name, so the claim lives exactly as long as one of
 *   them does: a holder that dies loses its claim when the server ends its backends (their keepalive and connection
 *   check settings bound how long that takes: see server-session.ts).
 * - **Every consumer sees every claim**: pg_stat_activity is server-wide, and it shows every session's pid, datid,
 *   usesysid and application_name to every role (only state, query, backend_type and addresses are kept from roles
 *   without pg_read_all_stats, which pg_monitor includes).
 * - **Claims are taken one at a time**, under a session-level advisory lock that is tried, never waited on, in the
 *   ledger database. Advisory locks belong to one database, so every consumer of a server must take it in the same
 *   one: `postgres` by default, the database that exists on every server whichever database a corpus writes to.
 * - **Under the lock a newcomer counts what is in use**: for each holder its claim (or its live connections, if more),
 *   plus every other client session: other applications, the operator's own sessions that carry no claim, and any
 *   session still under the newcomer's own name (inUseBeside). It is admitted when that plus its claim fits the cap;
 *   it then opens its first connection, which publishes the claim, before it lets the lock go
 *   (job-runner/pool/admission.ts).
 *
 * What pg_stat_activity hides from a role without pg_read_all_stats is backend_type: then a session counts as a
 * client when it has a database and a role, which also counts the odd parallel worker or logical walsender of other
 * users: too many, never too few. `exact` says which of the two counts a picture holds.
 *
 * Pure apart from readLedger(), which runs one query on a connection its caller owns.
 */

/** The database the ledger's lock lives in unless a consumer is told otherwise. */
export const DEFAULT_LEDGER_DATABASE = 'postgres';

/** The advisory lock every consumer takes to admit a claim: the two int4 keys of pg_try_advisory_lock(int, int). */
export const LEDGER_LOCK: readonly [number, number] = [0x6d636f, 1]; // 'mco', version 1 of the protocol

const CLAIM = /^mco ([a-z][a-z-]*)\/(\d+)(?: |$)/;

/**
 * The head of a waiting holder's probe (admission.ts): `mco wait run/2 <pod>` carries no claim (claimOf finds none),
 * so every reader counts it as the one connection it is; it ends with the holder's pod, so the holder's own reader
 * can tell it from another application's (application-name.ts waitingName).
 */
export const WAITING_PREFIX = 'mco wait ';

/** `mco <role>/<claim>`: the head of a claiming application_name (naming.ts writes the rest). */
export function claimHead(role: string, claim: number): string {
  if (!/^[a-z][a-z-]*$/.test(role)) throw new RangeError(`a role is lower-case letters and dashes, got ${role}`);
  if (!Number.isInteger(claim) || claim < 1) throw new RangeError(`a claim is a whole number ≥ 1, got ${claim}`);
  return `mco ${role}/${claim}`;
}

/** The claim an application_name carries, or undefined when it carries none. */
export function claimOf(applicationName: string | null): { role: string; claim: number } | undefined {
  const m = applicationName === null ? null : CLAIM.exec(applicationName);
  return m ? { role: m[1]!, claim: Number(m[2]) } : undefined;
}

/** One row of LEDGER_SQL. */
export interface SessionRow {
  pid: number;
  has_database: boolean;
  has_role: boolean;
  application_name: string | null;
  /** Null when the reading role may not see this session's details. */
  backend_type: string | null;
}

/**
 * Every session but the reader's own: the reader knows what it holds itself. One statement, so one snapshot of the
 * server's backend table.
 */
export const LEDGER_SQL = `SELECT pid, datid IS NOT NULL AS has_database, usesysid IS NOT NULL AS has_role,
  application_name, backend_type FROM pg_stat_activity WHERE pid <> pg_backend_pid()`;

export interface Holder {
  claim: number;
  /** Its connections open now. */
  live: number;
}

export interface LedgerPicture {
  /** By application_name: every connection of a holder carries the same one. */
  holders: Map<string, Holder>;
  /**
   * Client sessions that carry no claim: other applications, operator sessions that claim nothing, and the probes of
   * holders waiting for admission (`probes`).
   */
  unclaimed: number;
  /** The application_names of the waiting probes among `unclaimed` (WAITING_PREFIX), one entry per session. */
  probes: string[];
  /** The reader saw every session's backend_type: `unclaimed` is exact, not an upper bound. */
  exact: boolean;
}

export function pictureOf(rows: readonly SessionRow[]): LedgerPicture {
  const holders = new Map<string, Holder>();
  const probes: string[] = [];
  let unclaimed = 0;
  let exact = true;
  for (const row of rows) {
    if (row.backend_type === null) exact = false;
    if (!isClient(row)) continue;
    const claim = claimOf(row.application_name);
    if (claim === undefined) {
      unclaimed++;
      if (row.application_name?.startsWith(WAITING_PREFIX)) probes.push(row.application_name);
      continue;
    }
    const name = row.application_name!;
    const holder = holders.get(name) ?? { claim: 0, live: 0 };
    holder.claim = Math.max(holder.claim, claim.claim);
    holder.live++;
    holders.set(name, holder);
  }
  return { holders, unclaimed, probes, exact };
}

/** A client backend, or (details hidden) a session with a database and a role: background processes have neither. */
function isClient(row: SessionRow): boolean {
  if (row.backend_type !== null) return row.backend_type === 'client backend';
  return row.has_database && row.has_role;
}

/** What a holder takes from the cap: its claim, or what it really holds when that is more. */
export function heldBy(holder: Holder): number {
  return Math.max(holder.claim, holder.live);
}

/**
 * Connections in use on the server, by everyone except the holders `mine` accepts: the reader subtracts what it
 * accounts for itself (a process its own claim, the controller its own pods, which it counts from their objects).
 */
export function inUseByOthers(
  picture: LedgerPicture,
  mine: (applicationName: string) => boolean = () => false,
): number {
  let n = unclaimedBesides(picture, mine);
  for (const [name, holder] of picture.holders) if (!mine(name)) n += heldBy(holder);
  return n;
}

/**
 * The unclaimed sessions, less the waiting probes `mine` accepts (by their application_name, which ends with their
 * holder's pod like the holder's own): a reader that counts its waiting holders itself (the controller its pods, local
 * mode its runners) must not count their probes as another application's.
 */
export function unclaimedBesides(picture: LedgerPicture, mine: (applicationName: string) => boolean): number {
  return picture.unclaimed - picture.probes.filter((name) => mine(name)).length;
}

/**
 * What a holder about to be admitted must fit its claim beside: everyone else's connections, and the sessions still
 * carrying its own name. It is admitted only while it holds no connection (its first, or the first after it lost them
 * all), so no such session is one it can use: it is a closing backend of its own, or one of an earlier process under
 * the same name (a container restarted in its pod), and it keeps its slot until the server ends it. Counted as what
 * it is (live), not as the claim: the claim is the newcomer's own.
 */
export function inUseBeside(picture: LedgerPicture, holder: string): number {
  return inUseByOthers(picture, (name) => name === holder) + (picture.holders.get(holder)?.live ?? 0);
}

/** What a consumer may never exceed together with everyone else: the server's limit less reserved and headroom. */
export interface CapInput {
  /** The server's max_connections. */
  serverMaxConnections: number;
  /** superuser_reserved_connections + reserved_connections, as the server reports them. */
  serverReserved: number;
  /** A lower max_connections to plan for (the MidiCorpus's maxConnections, --max-connections). */
  maxConnections?: number;
  /** Overrides the server's reserved slots (the MidiCorpus's reservedConnections, --reserved). */
  reserved?: number;
  headroom: number;
}

export function connectionCap(input: CapInput): number {
  const limit = Math.min(input.serverMaxConnections, input.maxConnections ?? Number.POSITIVE_INFINITY);
  return Math.max(0, limit - (input.reserved ?? input.serverReserved) - input.headroom);
}

export interface ServerLimits {
  maxConnections: number;
  /** superuser_reserved_connections + reserved_connections (the latter exists from Postgres 16 on). */
  reserved: number;
}

type Queryable = { query: (sql: string) => Promise<{ rows: unknown[] }> };

export async function readServerLimits(client: Queryable): Promise<ServerLimits> {
  const { rows } = await client.query(
    `SELECT current_setting('max_connections') AS max,
            current_setting('superuser_reserved_connections') AS superuser,
            current_setting('reserved_connections', true) AS reserved`,
  );
  const r = rows[0] as { max: string; superuser: string; reserved: string | null };
  return { maxConnections: Number(r.max), reserved: Number(r.superuser) + Number(r.reserved ?? 0) };
}

/** The one query of the ledger, on any connection to the server (any database: pg_stat_activity is server-wide). */
export async function readLedger(client: Queryable): Promise<LedgerPicture> {
  const { rows } = await client.query(LEDGER_SQL);
  return pictureOf(rows as SessionRow[]);
}

/**
 * The URL a consumer reaches the ledger's database with: its own URL (server, user, password, options) with the
 * database replaced. The runners' admission probes connect with it, and so does the controller when it reads the
 * ledger, so a ledger database the runners cannot use is one the controller cannot read either, and says so.
 */
export function ledgerDatabaseUrl(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(database)}`;
  u.searchParams.delete('dbname');
  return u.toString();
}

/**
 * One row of LEDGER_SESSIONS_SQL: a SessionRow with the database and role of the session, which pg_stat_activity
 * shows to every role like the application_name. For a reader that acts on one holder's sessions (the controller
 * ends those of its pods that no longer exist) and must not take a namesake on another database for one of them.
 */
export interface LocatedSessionRow extends SessionRow {
  datname: string | null;
  usename: string | null;
}

/** LEDGER_SQL with where each session is: the same snapshot, the same rows, two columns more. */
export const LEDGER_SESSIONS_SQL = `SELECT pid, datid IS NOT NULL AS has_database, usesysid IS NOT NULL AS has_role,
  application_name, backend_type, datname, usename FROM pg_stat_activity WHERE pid <> pg_backend_pid()`;

/** The picture and the sessions it was made from (every session but the reader's own). */
export interface LedgerReading {
  picture: LedgerPicture;
  sessions: LocatedSessionRow[];
}

/** readLedger with the sessions kept: one query, so the pids belong to the picture's holders. */
export async function readLedgerSessions(client: Queryable): Promise<LedgerReading> {
  const { rows } = await client.query(LEDGER_SESSIONS_SQL);
  const sessions = rows as LocatedSessionRow[];
  return { picture: pictureOf(sessions), sessions };
}
