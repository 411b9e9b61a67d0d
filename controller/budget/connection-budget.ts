/**
 * The connection budget of one database (one budget key), and what each corpus on it may run now. Pure.
 *
 *   ceiling   = max_connections − reserved − headroom − the operator's own connection
 *   allowance = ceiling − one connection per corpus that is scanning or about to scan
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
 */
import { connectionAllowance } from '../../contract/pool-sizing.js';
import { fairShares } from './fair-share.js';

export interface DatabaseLimits {
  maxConnections: number;
  reservedConnections: number;
  headroom: number;
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
  /** A scan pod may be created now without exceeding the ceiling. */
  scanFits: boolean;
}

export interface BudgetPlan {
  limits: DatabaseLimits;
  /** The operator's own connection plus the scan connections set aside. */
  operator: number;
  /** What all runner pods on this database may hold together. */
  allowance: number;
  corpora: Map<string, CorpusBudget>;
}

/** Connections the operator process itself may hold on a database (SHOW max_connections, progress counts). */
export const OPERATOR_CONNECTIONS = 1;

export function connectionBudget(limits: DatabaseLimits, corpora: readonly CorpusBudgetInput[]): BudgetPlan {
  const ceiling = connectionAllowance({
    maxConnections: limits.maxConnections,
    reservedConnections: limits.reservedConnections,
    headroom: limits.headroom,
    otherConnections: OPERATOR_CONNECTIONS,
  });
  const scanReserve = corpora.reduce((n, c) => n + Math.max(c.scanPods, c.scanPending ? 1 : 0), 0);
  const allowance = Math.max(0, ceiling - scanReserve);
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
      scanFits: potentialConnections + scanConnections + 1 <= ceiling,
    };
    if (parallelism < c.demand)
      budget.limitedBy = c.perPod > allowance ? 'nothingFits' : parallelism < mine ? 'draining' : 'allowance';
    out.set(c.key, budget);
  }
  return { limits, operator: OPERATOR_CONNECTIONS + scanReserve, allowance, corpora: out };
}

/**
 * Several corpora on one budget may give different figures (or none: detected). The budget takes the most cautious:
 * the smallest max_connections, the largest reserved and headroom.
 */
export function mergeLimits(all: readonly DatabaseLimits[]): DatabaseLimits {
  if (all.length === 0) throw new RangeError('no limits to merge');
  return {
    maxConnections: Math.min(...all.map((l) => l.maxConnections)),
    reservedConnections: Math.max(...all.map((l) => l.reservedConnections)),
    headroom: Math.max(...all.map((l) => l.headroom)),
  };
}
