import type { CorpusCounts, Failure } from '../db/store.js';
import type { ShardSummary } from '../runner/run-shard.js';

/** The end of a local run: the `--json` object and the summary a person reads. Pure. */

/**
 * `empty`: the directory held no file to ingest (none matched the include globs). Not an error, since an empty
 * directory is a corpus of nothing, but not "complete" either: the summary says so, with the globs, because the
 * usual cause is a wrong directory or pattern.
 */
export type LocalOutcome = 'complete' | 'empty' | 'incomplete' | 'interrupted' | 'failed';

export interface LocalRunReport {
  corpus: string;
  outcome: LocalOutcome;
  /** Why the run is not complete, when it is not. */
  message: string | null;
  /** The corpus as recorded in the database at the end (all runs so far, not just this one). */
  files: CorpusCounts;
  /**
   * Files not analysed, with their reasons: failed ones, and those the scan or a runner would not read (a symlink
   * leading out of the root...). Up to a limit; `files.failed` + `files.skipped` is the count.
   */
  failures: Failure[];
  thisRun: {
    shards: number;
    shardsCompleted: number;
    /** Runner processes at once as planned at the start, beside what others held then. */
    runners: number;
    /** Most runner processes that did run at once: more than `runners` when others left, fewer when they grew. */
    peakRunners: number;
    retries: number;
    /** Results written by this run, and files found identical to what an earlier run recorded. */
    recorded: { ok: number; failed: number; skipped: number };
    unchanged: number;
    /** The server ledger's tries that found no room for a runner (summed over finished runners), and their wait. */
    admission: { waits: number; waitedMs: number };
  };
  connections: {
    /**
     * The server's cap: max_connections − reserved − headroom, which this run (its own control connection included)
     * and everyone else on the server never pass together.
     */
    budget: number;
    /** Most connections of this run seen at once in pg_stat_activity (its control connection, its runners'). */
    peak: number;
    samples: number;
    perRunner: number;
    maxConnections: number;
    reserved: number;
    headroom: number;
    /** What everyone else took from the cap: other applications, and other runs' and pods' claims. */
    others: SeenOverRun;
    /** Client sessions of other applications (no claim of the operator's), of `others`. */
    foreign: SeenOverRun & {
      /** False when this role may not see every session's type: the counts are then an upper bound. */
      exact: boolean;
    };
  };
  durationSeconds: number;
  /** Host, port and database: never credentials. */
  database: string;
  logsDir: string;
}

/** A count seen in pg_stat_activity: when the run started, the most while it ran, and at its end. */
export interface SeenOverRun {
  atStart: number;
  peak: number;
  last: number;
}

export function sumRunnerSummaries(
  summaries: ShardSummary[],
): Pick<LocalRunReport['thisRun'], 'recorded' | 'unchanged' | 'admission'> {
  const recorded = { ok: 0, failed: 0, skipped: 0 };
  const admission = { waits: 0, waitedMs: 0 };
  let unchanged = 0;
  for (const s of summaries) {
    recorded.ok += s.recorded.ok;
    recorded.failed += s.recorded.failed;
    recorded.skipped += s.recorded.skipped;
    unchanged += s.unchanged;
    admission.waits += s.admission.waits;
    admission.waitedMs += s.admission.waitedMs;
  }
  return { recorded, unchanged, admission };
}

const TOP_FAILURES = 10;

function seen(s: SeenOverRun): string {
  return s.atStart === s.peak ? `${s.peak}` : `${s.atStart} at the start, peak ${s.peak}`;
}

/** The summary printed at the end of `midi-corpus local`. `lookAt` lines say how to see the results afterwards. */
export function humanSummary(r: LocalRunReport, lookAt: string[]): string {
  const n = (x: number) => x.toLocaleString('en-US');
  const c = r.connections;
  const lines = [
    '',
    `midi-corpus local: corpus ${r.corpus} — ${r.outcome} in ${r.durationSeconds.toFixed(1)} s`,
    ...(r.message ? [`  ${r.message}`] : []),
    `  files        ${n(r.files.total)}: ${n(r.files.ok)} ok, ${n(r.files.failed)} failed, ${n(r.files.skipped)} skipped` +
      (r.files.pending ? `, ${n(r.files.pending)} still pending` : ''),
    `  this run     ${n(r.thisRun.recorded.ok + r.thisRun.recorded.failed + r.thisRun.recorded.skipped)} recorded, ` +
      `${n(r.thisRun.unchanged)} unchanged since the last run; ${r.thisRun.shardsCompleted}/${r.thisRun.shards} shards ` +
      `on ${r.thisRun.runners} runner(s) at once` +
      (r.thisRun.peakRunners !== r.thisRun.runners ? ` (at most ${r.thisRun.peakRunners} as others changed)` : '') +
      (r.thisRun.retries ? `, ${r.thisRun.retries} runner(s) retried` : ''),
    `  connections  peak ${c.peak} of a cap of ${c.budget} (max_connections ${c.maxConnections} − reserved ${c.reserved} − headroom ${c.headroom}; ` +
      `${c.perRunner} per runner)`,
    `  beside it    other applications ${seen(c.foreign)}` +
      (c.foreign.exact ? ' (exact)' : ' (an upper bound: grant pg_monitor for an exact count)') +
      `; in all, others held ${seen(c.others)}` +
      (r.thisRun.admission.waits ? `; runners waited for room ${r.thisRun.admission.waits} time(s)` : ''),
  ];
  if (r.failures.length > 0) {
    const shown = r.failures.slice(0, TOP_FAILURES);
    const count = r.files.failed + r.files.skipped;
    lines.push(`  failed or skipped${count > shown.length ? ` (first ${shown.length} of ${n(count)})` : ''}:`);
    for (const f of shown) lines.push(`    ${f.path}: ${f.reason}`);
  }
  lines.push(`  runner logs  ${r.logsDir}`);
  if (lookAt.length > 0) lines.push('', 'Look at the results:', ...lookAt.map((l) => `  ${l}`));
  return `${lines.join('\n')}\n`;
}
