/**
 * Dividing one database's connection allowance among the corpora that want runner pods.
 *
 * Policy: max-min fairness over connections, in whole pods, work-conserving.
 * - Pods are handed out one at a time, each to the claimant that holds the fewest connections so far among those that
 *   still want a pod and whose next pod still fits. So a corpus with small pods is not starved by one with big pods,
 *   and no corpus can gain by asking for more than it can use.
 * - Ties go to the older claim (creation time), then to the smaller key: the answer is a function of the input alone,
 *   and an older corpus keeps its pods when a newer one with the same holding arrives.
 * - Work-conserving: a corpus that wants fewer pods than its even share (a short tail of shards, a low maxParallelism)
 *   leaves the rest to the others; handing out stops only when nobody's next pod fits or everyone is satisfied.
 * Pure: no I/O, no clock.
 */

export interface Claim {
  /** Unique and stable: `namespace/name` of the MidiCorpus. */
  key: string;
  /** Creation time in ms since the epoch (metadata.creationTimestamp). */
  createdAt: number;
  /** Connections one of its pods may hold (the pool maximum). ≥ 1. */
  perPod: number;
  /** Most pods it can use now: min(maxParallelism, shards not yet done). 0: it takes nothing. */
  demand: number;
}

/** Pods granted to each claim, by key. Every claim appears, with 0 when it gets nothing. */
export function fairShares(allowance: number, claims: readonly Claim[]): Map<string, number> {
  if (!Number.isInteger(allowance) || allowance < 0)
    throw new RangeError(`allowance must be a whole number ≥ 0, got ${allowance}`);
  const order = [...claims].sort((a, b) => a.createdAt - b.createdAt || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const pods = new Map(order.map((c) => [c.key, 0]));
  const held = new Map(order.map((c) => [c.key, 0]));
  for (const c of order) {
    if (!Number.isInteger(c.perPod) || c.perPod < 1)
      throw new RangeError(`${c.key}: perPod must be a whole number ≥ 1, got ${c.perPod}`);
    if (!Number.isInteger(c.demand) || c.demand < 0)
      throw new RangeError(`${c.key}: demand must be a whole number ≥ 0, got ${c.demand}`);
  }
  let left = allowance;
  // Each round grants one pod; at most allowance rounds (every pod costs ≥ 1), so this ends.
  while (true) {
    let pick: Claim | undefined;
    for (const c of order) {
      if (pods.get(c.key)! >= c.demand || c.perPod > left) continue;
      // `order` is already sorted by the tie-break, so a strict < keeps the first (older) claim on ties.
      if (pick === undefined || held.get(c.key)! < held.get(pick.key)!) pick = c;
    }
    if (pick === undefined) return pods;
    pods.set(pick.key, pods.get(pick.key)! + 1);
    held.set(pick.key, held.get(pick.key)! + pick.perPod);
    left -= pick.perPod;
  }
}
