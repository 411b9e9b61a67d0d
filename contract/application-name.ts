/**
 * The `application_name` every connection carries, so `pg_stat_activity` shows which corpus, shard and pod holds it.
 * Postgres keeps at most NAMEDATALEN − 1 = 63 bytes and replaces non-ASCII characters, so the name is made of
 * printable ASCII and fitted to 63 bytes here, where we choose what to cut: the corpus name gives way first (the pod
 * name already contains it in a cluster), then the pod name loses its beginning (its unique suffix is at the end).
 *
 * A process that claims connections in the server's ledger (ledger.ts) says so in the head: `mco run/3 …`.
 */
import os from 'node:os';
import { claimHead, claimOf, WAITING_PREFIX } from './ledger.js';

export const APPLICATION_NAME_MAX_BYTES = 63;

export interface ConnectionOwner {
  /** What the process does: 'run', 'scan', 'migrate', 'local'... */
  role: string;
  corpus?: string;
  shard?: number;
  pod?: string;
  /** The connections this process claims in the server's ledger: its pool's maximum. */
  claim?: number;
}

export function applicationNameFor(owner: ConnectionOwner): string {
  const head = owner.claim !== undefined ? claimHead(owner.role, owner.claim) : `mco ${ascii(owner.role)}`;
  const tail = [owner.shard !== undefined ? `s${owner.shard}` : '', owner.pod ? ascii(owner.pod) : '']
    .filter((s) => s !== '')
    .join(' ');
  const corpus = owner.corpus ? ascii(owner.corpus) : '';
  const join = (...parts: string[]) => parts.filter((s) => s !== '').join(' ');

  const full = join(head, corpus, tail);
  if (full.length <= APPLICATION_NAME_MAX_BYTES) return full;
  const withoutCorpus = join(head, tail);
  const room = APPLICATION_NAME_MAX_BYTES - withoutCorpus.length - 1;
  // Keep a recognisable corpus prefix when at least a few characters fit; '~' marks the cut.
  if (corpus && room >= 4) return join(head, `${corpus.slice(0, room - 1)}~`, tail);
  if (withoutCorpus.length <= APPLICATION_NAME_MAX_BYTES) return withoutCorpus;
  return `${head} ~${withoutCorpus.slice(withoutCorpus.length - (APPLICATION_NAME_MAX_BYTES - head.length - 2))}`;
}

/** Printable ASCII only: anything else becomes '?', as older Postgres versions would do anyway. */
function ascii(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '?');
}

/**
 * The pod (or its end, when the name had to be cut) an application name ends with: `mco run/3 ns/c s0 pod-x7k2q`
 * gives `pod-x7k2q`; undefined when the name names no pod. What the controller matches against its pods' names.
 */
export function podTail(applicationName: string): string | undefined {
  const last = applicationName.slice(applicationName.lastIndexOf(' ') + 1);
  // A whole pod name starts like a DNS label; a cut one starts wherever the cut fell, a dash or a dot included.
  const cut = last.startsWith('~');
  const pod = cut ? last.slice(1) : last;
  if (!(cut ? /^[a-z0-9.-]+$/ : /^[a-z0-9][a-z0-9.-]*$/).test(pod) || !pod.includes('-')) return undefined;
  return pod;
}

/**
 * What names this process when it is no pod: `<host>-<pid>`. A claim is keyed by its application_name, so two
 * processes claiming under one name would be counted once: local mode's runners and a scan outside a cluster use this.
 */
export function processName(): string {
  const host = os.hostname().split('.')[0]!.toLowerCase() || 'host';
  return `${host}-${process.pid}`;
}

/**
 * The application_name of a holder's admission probe: `mco wait run/2 <pod>`, the holder's role and claim (which
 * claimOf does not read as a claim: "wait run" is no role) and its pod, kept whole where podTail finds one, so that
 * the holder's reader (the controller, local mode) recognises its own waiting pods by the same rule as their pools.
 */
export function waitingName(holder: string): string {
  const claim = claimOf(holder);
  const head = `${WAITING_PREFIX}${claim ? `${claim.role}/${claim.claim}` : holder.replace(/^mco /, '').split(' ')[0]}`;
  const tail = podTail(holder);
  if (tail === undefined) return head.slice(0, APPLICATION_NAME_MAX_BYTES);
  const room = APPLICATION_NAME_MAX_BYTES - head.length - 1;
  // A pod name too long for the room loses its beginning, as in applicationNameFor: its unique end stays.
  return `${head} ${tail.length <= room ? tail : `~${tail.slice(tail.length - room + 1)}`}`;
}
