/**
 * The scan's answer: the JSON object `midi-corpus scan --json` prints as its last stdout line and writes to its
 * termination log, which the controller reads back from the scan pod (controller/plan/scan-result.ts) to size the run
 * Job. Kubernetes keeps at most 4 KiB of a termination message: a handful of numbers, far below it.
 *
 * A scan of a corpus key that was scanned before (a run again) compares with the last scan: `shards` then cover only
 * the `work` files (added, changed, pending, failed), and the rest keep their results untouched.
 */
export interface ScanSummary {
  /** The corpus key it was run with (corpus-key.ts). */
  corpus: string;
  /** Entries recorded, problems included. */
  files: number;
  /** Bytes of the readable files. */
  bytes: number;
  /** Shards of this run: the run Job's completions, over the `work` files only. */
  shards: number;
  /** Entries recorded as skipped or failed by the scan itself. */
  problems: number;
  /** Entries recorded for the first time. */
  added: number;
  /** Known entries whose size or modification time differs from the last scan: analysed again. */
  changed: number;
  /** Known entries as the last scan saw them. */
  unchanged: number;
  /** Files recorded by an earlier scan and gone from the volume: marked missing, their results kept. */
  missing: number;
  /** Files given a shard of this run: the ones a runner will look at. */
  work: number;
}
