import type { AnalysisOutcome } from '../analysis/types.js';

/** The messages between the runner's main thread and its parse workers (job-runner/runner/parse-worker.ts). */

export interface ParseTask {
  id: number;
  /** Absolute path as raw bytes (names need not be UTF-8). */
  path: Uint8Array;
  /** The corpus root's real path: a file whose real path leaves it is not read (it may have become a symlink). */
  root: Uint8Array;
  /** Hex sha256 recorded by an earlier run, when there is one: the same hash means the file needs no new analysis. */
  knownSha256: string | null;
  /** Files larger than this are refused before a single byte is read. */
  maxFileBytes: number;
  /** Files with more events than this fail (memory.ts derives it from the pod's memory limit). */
  maxEvents: number;
  /** When set, each note-holding track of a multi-track file is written as its own file under this directory. */
  splitOutputDir: string | null;
}

/** One single-track file written by --split-output. */
export interface SplitTrackFile {
  trackIndex: number;
  /** Absolute path of the written file. */
  outputPath: string;
  size: number;
  sha256: string;
}

/** What happened to one file. */
export type ParseResult =
  /** Same bytes as the recorded result: nothing to write. */
  | { kind: 'unchanged'; sha256: string; size: number }
  /** The analysis ran; its outcome may be a failure with a precise reason (a bad MIDI file). */
  | { kind: 'analysed'; sha256: string; size: number; outcome: AnalysisOutcome; splitTracks: SplitTrackFile[] }
  /** The file was not analysed: unreadable, not a regular file, outside the root, or over the size limit. */
  | { kind: 'refused'; status: 'failed' | 'skipped'; reason: string; size: number | null; sha256: null }
  /**
   * The analysis was cut off: it ran past the time limit, or it crashed its worker. The hash is set when the worker
   * had read the file before it was stopped.
   */
  | { kind: 'aborted'; reason: string; size: number | null; sha256: string | null };

export type ParseReply =
  /**
   * Sent once by a worker whose modules are loaded and whose listener is installed: a file's time limit runs from
   * here at the earliest, so a worker slow to start (a loaded machine can take a second) does not eat its first
   * file's time.
   */
  | { ready: true }
  /** Sent once the file is read and hashed, before the analysis: a worker killed after this still told us the hash. */
  | { id: number; hashed: { sha256: string; size: number } }
  | { id: number; result: ParseResult };
