/**
 * What the server's ledger (contract/ledger.ts) tells the reconcile, beside what it counts from its own objects. Pure,
 * apart from the clock readings VanishedPods is given.
 *
 * - **Foreign connections**: every connection on the server that this operator does not already count from its Jobs
 *   and pods. The holders that name one of its live pods drawing on the budget are its own (counted from their
 *   objects, at their Job's potential: counting their sessions too would count them twice); everything else is
 *   foreign: other applications, another cluster's or a local run's runners, this operator's pods that draw on another
 *   budget (a Secret or poolKey changed under them: they are counted where they really connect), and the backends of
 *   its pods that no longer exist.
 * - **Vanished pods**: a holder that names a pod of one of this operator's corpora (the corpus key, the Job's pod
 *   naming, the corpus's own database and user) while no such pod exists. Its backends outlived their process (a
 *   force-deleted pod, a node gone with its kernel) and would hold their slots until the server's keepalives give up;
 *   after a grace (a pod just created may not be in the cache yet) the controller ends them.
 */
import { currentRun } from '../plan/rerun.js';
import type { V1Pod } from '@kubernetes/client-node';
import { podTail } from '../../contract/application-name.js';
import { claimOf, inUseByOthers, type LedgerPicture, type LocatedSessionRow } from '../../contract/ledger.js';
import { corpusKey } from '../../contract/corpus-key.js';
import type { MidiCorpus } from '../api/v1alpha1/midicorpus.js';
import { ANNOTATION_BUDGET_KEY, childName } from '../plan/names.js';
import { podHoldsConnections } from './observe.js';

/** How long a holder must be seen without its pod before its backends are ended. Exported so tests can shrink it. */
export const VANISHED_GRACE_MS = 15_000;

/**
 * A cut pod name (application_name keeps at most 63 bytes) must keep at least this much before its random end to be
 * taken for a pod at all: a few characters would match too much. applicationNameFor keeps 40 or more.
 */
const MIN_CUT_STEM = 16;

/** Kubernetes cuts a generateName to 58 characters before it adds 5 random ones (SimpleNameGenerator). */
const GENERATED_BASE_MAX = 58;
const RANDOM_SUFFIX = /^[a-z0-9]{5}$/;

/** Does `tail` (podTail of an application_name: the whole pod name or its end) name the pod `podName`? */
export function tailNamesPod(tail: string, podName: string): boolean {
  return podName === tail || (tail.length >= MIN_CUT_STEM && podName.endsWith(tail));
}

/** Pods whose processes may hold connections, by name: every phase but Succeeded and Failed. */
export function livePodNames(pods: readonly V1Pod[], budgetKey?: string): string[] {
  return pods
    .filter(
      (p) =>
        podHoldsConnections(p) &&
        (budgetKey === undefined || p.metadata?.annotations?.[ANNOTATION_BUDGET_KEY] === budgetKey),
    )
    .map((p) => p.metadata?.name ?? '')
    .filter((n) => n !== '');
}

/** Whether a holder's application_name names one of `names`. */
function namesOneOf(names: readonly string[]): (applicationName: string) => boolean {
  return (applicationName) => {
    const tail = podTail(applicationName);
    return tail !== undefined && names.some((n) => tailNamesPod(tail, n));
  };
}

/** Connections on the server that the budget of `budgetKey` does not count from its own pods. */
export function foreignConnections(picture: LedgerPicture, pods: readonly V1Pod[], budgetKey: string): number {
  return inUseByOthers(picture, namesOneOf(livePodNames(pods, budgetKey)));
}

/** A previous reading older than this is not compared with: the count is taken as it is. */
export const FOREIGN_CONFIRM_WINDOW_MS = 30_000;

/**
 * The foreign count a budget plans with: the lower of what this reading and the one before it show. A connection that
 * comes and goes between two readings (a monitoring probe, a psql session, a health check) would otherwise take a pod
 * away and give it back, each time deleting a runner mid-batch; a consumer that stays is counted from the second
 * reading on (a few seconds later), and one that leaves is let go at the first reading without it. Whatever is there
 * at the instant a runner starts, its admission in the ledger counts anyway.
 */
export class ForeignCounts {
  private readonly byBudget = new Map<string, { reading: object; value: number; at: number; previous?: number }>();

  /** `reading`: the LedgerReading the value was computed from (a cached reading is the same object). */
  settle(budgetKey: string, reading: object, value: number, now: number): number {
    const last = this.byBudget.get(budgetKey);
    let previous: number | undefined;
    if (last && last.reading === reading) previous = last.previous;
    else if (last && now - last.at <= FOREIGN_CONFIRM_WINDOW_MS) previous = last.value;
    this.byBudget.set(budgetKey, { reading, value, at: now, previous });
    return previous === undefined ? value : Math.min(previous, value);
  }
}

/** The parts of an application_name after its head: `[corpus] [s<shard>] [pod]` (contract/application-name.ts). */
export function ownerParts(applicationName: string): { corpus?: string; shard?: number; pod?: string } {
  const words = applicationName.split(' ').slice(2);
  const out: { corpus?: string; shard?: number; pod?: string } = {};
  const pod = podTail(applicationName);
  if (pod !== undefined) {
    out.pod = pod;
    words.pop();
  }
  const shard = /^s(\d+)$/.exec(words.at(-1) ?? '');
  if (shard) {
    out.shard = Number(shard[1]);
    words.pop();
  }
  if (words.length > 0) out.corpus = words.join(' ');
  return out;
}

/** The corpus part of an application_name (possibly cut, marked `~`) is this corpus's key. */
function namesCorpus(written: string, key: string): boolean {
  return written === key || (written.endsWith('~') && key.startsWith(written.slice(0, -1)));
}

/**
 * Could `tail` be (the end of) the name Kubernetes gave a pod of Job `job`: `<job>-` (an Indexed Job's:
 * `<job>-<index>-`) cut to 58 characters, then 5 random ones? `shard`, when the application_name still says it, is
 * the pod's completion index.
 */
export function couldBePodOf(tail: string, job: string, indexed: boolean, shard?: number): boolean {
  if (tail.length <= 5 || !RANDOM_SUFFIX.test(tail.slice(-5))) return false;
  const stem = tail.slice(0, -5);
  const bases: string[] = [];
  if (!indexed) bases.push(`${job}-`);
  else if (shard !== undefined) bases.push(`${job}-${shard}-`);
  else {
    // The index is read back from the name; when the cut at 58 fell inside it or before it, so does this.
    const index = /(\d+)-?$/.exec(stem)?.[1];
    if (index !== undefined) bases.push(`${job}-${index}-`);
    if (`${job}-`.length >= GENERATED_BASE_MAX) bases.push(`${job}-`);
  }
  return bases.some((b) => {
    const base = b.slice(0, GENERATED_BASE_MAX);
    return base === stem || (stem.length >= MIN_CUT_STEM && base.endsWith(stem));
  });
}

/** Where a URL's sessions are: its database and user, as pg_stat_activity names them; undefined when not said. */
export function sessionPlace(url: string): { database: string; user: string } | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return undefined;
  }
  const user = decodeURIComponent(u.username);
  if (user === '') return undefined;
  // libpq's and pg's default database is the user's name.
  const database = decodeURIComponent(u.pathname.replace(/^\//, '')) || user;
  return { database, user };
}

/** One of this operator's corpora on the budget, with the URL its pods connect with. */
export interface CorpusOnServer {
  corpus: MidiCorpus;
  url: string;
}

/** A holder whose pod is gone, with the backends to end. */
export interface VanishedHolder {
  applicationName: string;
  /** The pod it names (or the end of its name). */
  pod: string;
  /** The corpus it belongs to: the Event goes there. */
  corpus: MidiCorpus;
  pids: number[];
}

/**
 * Holders that name a pod of one of `corpora` that is not among the live `pods` (any budget: a pod that runs is not
 * vanished, whichever budget counts it). Only sessions on the corpus's own database and as its own user count: a
 * namesake of another cluster (the same namespace and name, the same Job naming) on another database is not taken
 * for one of ours. Two clusters whose corpora share a key and a database already write over each other's rows.
 */
export function vanishedHolders(
  sessions: readonly LocatedSessionRow[],
  corpora: readonly CorpusOnServer[],
  pods: readonly V1Pod[],
): VanishedHolder[] {
  const live = livePodNames(pods);
  const found = new Map<string, VanishedHolder>();
  for (const s of sessions) {
    const name = s.application_name;
    const claim = claimOf(name);
    if (name === null || claim === undefined || (claim.role !== 'run' && claim.role !== 'scan')) continue;
    const parts = ownerParts(name);
    if (parts.pod === undefined || live.some((n) => tailNamesPod(parts.pod!, n))) continue;
    const known = found.get(name);
    if (known) {
      known.pids.push(s.pid);
      continue;
    }
    const owner = corpora.find(({ corpus, url }) => {
      const key = corpusKey(corpus.metadata.namespace, corpus.metadata.name);
      if (parts.corpus !== undefined && !namesCorpus(parts.corpus, key)) return false;
      const place = sessionPlace(url);
      if (place === undefined || s.datname !== place.database || s.usename !== place.user) return false;
      const job = childName(corpus.metadata.name, claim.role as 'run' | 'scan', currentRun(corpus));
      return couldBePodOf(parts.pod!, job, claim.role === 'run', parts.shard);
    });
    if (owner) found.set(name, { applicationName: name, pod: parts.pod, corpus: owner.corpus, pids: [s.pid] });
  }
  return [...found.values()];
}

/**
 * Since when each vanished holder has been seen, per budget: a holder is due once it has been seen for the grace,
 * and again a grace after each attempt (its backends may take a moment to go, or the attempt may have failed).
 */
export class VanishedPods {
  private readonly since = new Map<string, number>();

  constructor(private readonly graceMs = VANISHED_GRACE_MS) {}

  /** The holders of `budgetKey` due now; forgets the holders of that budget that are no longer seen. */
  due(budgetKey: string, holders: readonly VanishedHolder[], now: number): VanishedHolder[] {
    const prefix = `${budgetKey}\0`;
    const seen = new Set(holders.map((h) => prefix + h.applicationName));
    for (const k of this.since.keys()) if (k.startsWith(prefix) && !seen.has(k)) this.since.delete(k);
    const out: VanishedHolder[] = [];
    for (const h of holders) {
      const k = prefix + h.applicationName;
      const since = this.since.get(k);
      if (since === undefined) this.since.set(k, now);
      else if (now - since >= this.graceMs) out.push(h);
    }
    return out;
  }

  /** An attempt was made: the next one waits a grace more. */
  attempted(budgetKey: string, holder: VanishedHolder, now: number): void {
    this.since.set(`${budgetKey}\0${holder.applicationName}`, now);
  }
}
