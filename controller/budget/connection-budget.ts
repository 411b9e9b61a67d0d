/**
 * The connection budget of one database (one budget key), and what each corpus on it may run now. Pure.
 *
 *   ceiling   = max_connections − reserved − headroom − the operator's own connection
 *               (behind a transaction pooler: maxClientConnections − headroom − the operator's own connection)
 *   free      = ceiling − foreign (what the server's other consumers hold now, as the server's ledger shows them)
 *   allowance = free − one connection per corpus that is scanning or about to scan
 *   planned   = fairShares(allowance, corpora)          (whole pods; see fair-share.ts)
 *   parallelism(i) = min(planned(i), ⌊(allowance − Σ_{j≠i} potential(j)·perPod(j)) / perPod(i)⌋), never below 0
 *
 * `potential(j)` is how many pods corpus j may have at any moment without the operator doing anything: the larger of
 * its Job's parallelism (the Job controller may create pods up to it at any time), its live pods (Terminating ones
 * included: they still hold connections until their process is gone) and what the Job's status reports. The second
 * term is what makes a change of shares safe: when one corpus's parallelism is lowered, the Job controller deletes
 * its excess pods, which take a grace period to stop; until they are gone the other corpora are not allowed to grow
 * into the connections those pods still hold. With `podReplacementPolicy: Failed` the Job controller itself also
 * counts terminating pods (active + terminating ≤ parallelism before it creates one), so no Job overlaps old and new
 * pods above its own parallelism either. Together: Σ potential·perPod ≤ allowance holds at every instant, provided
 * decisions are taken one at a time with the operator's latest writes (the controller runs one reconcile at a time).
 *
 * `foreign` (contract/ledger.ts: inUseByOthers) is everything on the server that this operator does not count from
 * its own Jobs and pods: other applications, another cluster's runners, local runs, and this operator's own pods whose
 * objects are gone but whose backends are not. It is a reading, not a promise: it shrinks the budget while another
 * consumer holds connections and gives them back once it has left. What it cannot see coming (a consumer that opens
 * connections between two readings) the runners' admission in the ledger still stops at the server.
 *
 * Behind a transaction pooler there is no ledger: the pooler's server connections carry whichever client's
 * application_name ran last, and a session-level advisory lock does not outlive one transaction. `foreign` is 0 there
 * and the ceiling is the pooler's client limit from the spec; the controller's pod cap is then the only guard of it,
 * and the pooler's pool size the guard of the server (docs/databases/pgbouncer.md).
 */
import { connectionAllowance } from '../../contract/pool-sizing.js';
import { fairShares } from './fair-share.js';

export interface DatabaseLimits {
  /** The limit planned against: the server's max_connections, or behind a pooler its maxClientConnections. */
  maxConnections: number;
  /** 0 behind a pooler: the pooler keeps no client slots for superusers. */
  reservedConnections: number;
  headroom: number;
  /**
   * Behind a transaction pooler (spec.database.pooler): maxConnections is then the pooler's client limit, and poolSize
   * the server connections it may open, which the pooler itself enforces (clients beyond it wait inside the pooler).
   */
  pooler?: { poolSize: number };
}

export interface CorpusBudgetInput {
  /** `namespace/name`. */
  key: string;
  createdAt: number;
  /** Connections per runner pod: poolSizeFor(cpu, pool).max. */
  perPod: number;
  /** Pods it could use now: min(maxParallelism, shards not done); 0 while scanning, suspended or finished. */
  demand: number;
  /** Runner pods that exist and have not terminated (Terminating included). */
  livePods: number;
  /** max(Job parallelism (0 if suspended or finished), livePods, Job status active + terminating). */
  potentialPods: number;
  /** Scan pods that exist and have not terminated: one connection each. */
  scanPods: number;
  /** The corpus still has to scan (no finished scan yet): one connection is set aside for it. */
  scanPending: boolean;
}

/** nothingFits: not one pod fits the allowance; allowance: the (fair share of the) allowance is below demand; draining: other corpora's pods still hold the connections this corpus's share needs. */
export type LimitKind = 'nothingFits' | 'allowance' | 'draining';

export interface CorpusBudget {
  perPod: number;
  /** Pods the fair policy gives this corpus. */
  planned: number;
  /** planned · perPod. */
  share: number;
  /** Pods allowed right now (planned, less what other corpora's not-yet-gone pods still hold). */
  parallelism: number;
  /** livePods · perPod. */
  inUse: number;
  /** Why parallelism is below demand; undefined when it is not. */
  limitedBy?: LimitKind;
  /** A scan pod may be created now without exceeding the ceiling (less the other consumers' connections). */
  scanFits: boolean;
}

/** What the server itself says, beside the limits. */
export interface ServerReading {
  /** Connections held by the server's other consumers (inUseByOthers): subtracted before anything is shared. */
  foreign: number;
}

export interface BudgetPlan {
  limits: DatabaseLimits;
  /** The operator's own connection plus the scan connections set aside. */
  operator: number;
  /** The other consumers' connections subtracted (0 when the server's ledger was not read). */
  foreign: number;
  /** What all runner pods on this database may hold together. */
  allowance: number;
  corpora: Map<string, CorpusBudget>;
}

/** Connections the operator process itself may hold on a database (SHOW max_connections, progress counts). */
export const OPERATOR_CONNECTIONS = 1;

export function connectionBudget(
  limits: DatabaseLimits,
  corpora: readonly CorpusBudgetInput[],
  server: ServerReading = { foreign: 0 },
): BudgetPlan {
  if (!Number.isInteger(server.foreign) || server.foreign < 0)
    throw new RangeError(`foreign must be a whole number ≥ 0, got ${server.foreign}`);
  const free = Math.max(
    0,
    connectionAllowance({
      maxConnections: limits.maxConnections,
      reservedConnections: limits.reservedConnections,
      headroom: limits.headroom,
      otherConnections: OPERATOR_CONNECTIONS,
    }) - server.foreign,
  );
  const scanReserve = corpora.reduce((n, c) => n + Math.max(c.scanPods, c.scanPending ? 1 : 0), 0);
  const allowance = Math.max(0, free - scanReserve);
  const planned = fairShares(
    allowance,
    corpora.map(({ key, createdAt, perPod, demand }) => ({ key, createdAt, perPod, demand })),
  );

  const potentialConnections = corpora.reduce((n, c) => n + c.potentialPods * c.perPod, 0);
  const scanConnections = corpora.reduce((n, c) => n + c.scanPods, 0);
  const out = new Map<string, CorpusBudget>();
  for (const c of corpora) {
    const mine = planned.get(c.key) ?? 0;
    const othersHold = potentialConnections - c.potentialPods * c.perPod;
    const room = Math.max(0, Math.floor((allowance - othersHold) / c.perPod));
    const parallelism = Math.min(mine, room);
    const budget: CorpusBudget = {
      perPod: c.perPod,
      planned: mine,
      share: mine * c.perPod,
      parallelism,
      inUse: c.livePods * c.perPod,
      scanFits: potentialConnections + scanConnections + 1 <= free,
    };
    if (parallelism < c.demand)
      budget.limitedBy = c.perPod > allowance ? 'nothingFits' : parallelism < mine ? 'draining' : 'allowance';
    out.set(c.key, budget);
  }
  return { limits, operator: OPERATOR_CONNECTIONS + scanReserve, foreign: server.foreign, allowance, corpora: out };
}

/**
 * Several corpora on one budget may give different figures (or none: detected). The budget takes the most cautious:
 * the smallest max_connections (behind a pooler: maxClientConnections), the largest reserved and headroom, the
 * smallest pool size. A budget that any corpus puts behind a pooler is planned as one: its ledger cannot be read.
 */
export function mergeLimits(all: readonly DatabaseLimits[]): DatabaseLimits {
  if (all.length === 0) throw new RangeError('no limits to merge');
  const poolSizes = all.flatMap((l) => (l.pooler ? [l.pooler.poolSize] : []));
  return {
    maxConnections: Math.min(...all.map((l) => l.maxConnections)),
    reservedConnections: Math.max(...all.map((l) => l.reservedConnections)),
    headroom: Math.max(...all.map((l) => l.headroom)),
    ...(poolSizes.length > 0 ? { pooler: { poolSize: Math.min(...poolSizes) } } : {}),
  };
}

/**
 * Why the corpora of one budget disagree about its pooler, or undefined when they agree: some put it behind a pooler
 * and some not (one poolKey for a pooler and a server), or they give it different limits. mergeLimits plans with the
 * most cautious figures either way; this is what status says about it, since only the user can tell which is right.
 */
export function poolerDisagreement(all: readonly DatabaseLimits[]): string | undefined {
  const behind = all.filter((l) => l.pooler);
  if (behind.length === 0) return undefined;
  if (behind.length < all.length)
    return `${behind.length} of the ${all.length} corpora on this budget are behind a pooler and the others are not: it is planned as a pooler, with the smallest limit of all`;
  const clients = new Set(behind.map((l) => l.maxConnections));
  const sizes = new Set(behind.map((l) => l.pooler!.poolSize));
  if (clients.size === 1 && sizes.size === 1) return undefined;
  const differ = [
    ...(clients.size > 1 ? [`maxClientConnections (${[...clients].sort((a, b) => a - b).join(', ')})`] : []),
    ...(sizes.size > 1 ? [`poolSize (${[...sizes].sort((a, b) => a - b).join(', ')})`] : []),
  ];
  return `the corpora on this pooler give different ${differ.join(' and ')}: the smallest is used`;
}
