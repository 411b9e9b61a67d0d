import type { CorpusCounts, Failure } from '../db/store.js';
import type { ShardSummary } from '../runner/run-shard.js';

/** The end of a local run: the `--json` object and the summary a person reads. Pure. */

export type LocalOutcome = 'complete' | 'incomplete' | 'interrupted' | 'failed';

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
    runners: number;
    retries: number;
    /** Results written by this run, and files found identical to what an earlier run recorded. */
    recorded: { ok: number; failed: number; skipped: number };
    unchanged: number;
  };
  connections: {
    /** What this run may hold in all (its own control connection included): max_connections − reserved − headroom. */
    budget: number;
    /** Most connections of this run seen at once in pg_stat_activity. */
    peak: number;
    samples: number;
    perRunner: number;
    maxConnections: number;
    reserved: number;
    headroom: number;
  };
  durationSeconds: number;
  /** Host, port and database: never credentials. */
  database: string;
  logsDir: string;
}

export function sumRunnerSummaries(
  summaries: ShardSummary[],
): Pick<LocalRunReport['thisRun'], 'recorded' | 'unchanged'> {
  const recorded = { ok: 0, failed: 0, skipped: 0 };
  let unchanged = 0;
  for (const s of summaries) {
    recorded.ok += s.recorded.ok;
    recorded.failed += s.recorded.failed;
    recorded.skipped += s.recorded.skipped;
    unchanged += s.unchanged;
  }
  return { recorded, unchanged };
}

const TOP_FAILURES = 10;

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
      `on ${r.thisRun.runners} runner(s) at once${r.thisRun.retries ? `, ${r.thisRun.retries} runner(s) retried` : ''}`,
    `  connections  peak ${c.peak} of a budget of ${c.budget} (max_connections ${c.maxConnections} − reserved ${c.reserved} − headroom ${c.headroom}; ` +
      `${c.perRunner} per runner)`,
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
