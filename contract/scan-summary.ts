/**
 * The scan's answer: the JSON object `midi-corpus scan --json` prints as its last stdout line and writes to its
 * termination log, which the controller reads back from the scan pod (controller/plan/scan-result.ts) to size the run
 * Job. Kubernetes keeps at most 4 KiB of a termination message, plenty for this.
 */
export interface ScanSummary {
  /** The corpus key it was run with (corpus-key.ts). */
  corpus: string;
  /** Entries recorded, problems included. */
  files: number;
  /** Bytes of the readable files. */
  bytes: number;
  shards: number;
  /** Entries recorded as skipped or failed by the scan itself. */
  problems: number;
}
