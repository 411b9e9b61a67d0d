/**
 * What `midi-corpus report` shows about a corpus: every figure already counted, so the renderer (html.ts) is a pure
 * function of it and the SQL that fills it (query.ts) returns aggregates only. A corpus of millions of files makes a
 * model of the same size as a small one: histograms have fixed bins, lists are cut to a limit with their full count.
 *
 * The bins are here rather than in the SQL so that a test (and a reader) can see them: they are fixed, not fitted to
 * the data, so two reports of two corpora compare bar for bar.
 */

/** A labelled count: a status, a failure kind, a meter, an instrument family. */
export interface Count {
  label: string;
  count: number;
}

/** Counts over fixed bins: `counts[i]` is the number of values in bin i of `edges` (see binLabels). */
export interface Histogram {
  /** Ascending bin edges: bin 0 is below edges[0], bin i is [edges[i−1], edges[i]), the last is edges[n−1] and above. */
  edges: readonly number[];
  counts: number[];
}

export interface FailureKindCount {
  /** The failure kind (the reason up to its first ': ', job-runner/analysis/failure.ts), or the whole reason. */
  kind: string;
  count: number;
  /** One file that failed so, for a person to look at first. */
  example: string;
}

export interface FailedFile {
  path: string;
  status: string;
  reason: string;
}

export interface KeyCount {
  tonic: string;
  mode: string;
  count: number;
}

export interface ReportModel {
  corpus: string;
  /** Host, port and database: never credentials (contract/describe-error.ts describeDatabaseUrl). */
  database: string;
  /** ISO 8601. */
  generatedAt: string;
  /** When the corpus was last scanned and last analysed (ISO 8601), null when never. */
  lastScannedAt: string | null;
  lastAnalysedAt: string | null;
  /**
   * Files by status, the known ones first in STATUS_ORDER, then any other status a newer schema records (shown, not
   * refused: a report from an older release must still draw).
   */
  statuses: Count[];
  totalFiles: number;
  /** Failed and skipped files by kind, most frequent first, at most `limits.failureKinds`. */
  failureKinds: FailureKindCount[];
  /** Every failure kind's count: more than `failureKinds` lists when there are many. */
  failureKindTotal: number;
  /** The first failed or skipped files in path order, at most `limits.failedFiles`; `notOk` counts them all. */
  failedFiles: FailedFile[];
  notOk: number;
  /** The analysed ('ok') files. */
  analysed: {
    files: number;
    totalSeconds: number;
    notes: number;
  };
  /** Estimated keys, in KEY_TONICS × KEY_MODES order (zeros included), and the files without one (no pitched notes). */
  keys: KeyCount[];
  noKey: number;
  /** Main tempo (BPM) of the analysed files. */
  tempo: Histogram;
  /** The first time signature of each analysed file, most frequent first, at most `limits.meters` and "other". */
  meters: Count[];
  /** Duration in seconds. */
  duration: Histogram;
  /** Notes per second. */
  density: Histogram;
  /** Files using each instrument family (GM_FAMILIES, then drums), in that order, zeros included. */
  families: Count[];
  drums: {
    /** Analysed files with notes on the drum channel. */
    withDrums: number;
    /** Notes on the drum channel over all files. */
    drumNotes: number;
    /** Drum kits by files using them, most frequent first. */
    kits: Count[];
  };
}

/** Statuses in the order people read them; others (a newer schema's 'missing') follow, alphabetically. */
export const STATUS_ORDER: readonly string[] = ['ok', 'failed', 'skipped', 'pending'];

export const KEY_TONICS: readonly string[] = ['C', 'C#', 'D', 'D#', 'E', 'F', 'F#', 'G', 'G#', 'A', 'A#', 'B'];
export const KEY_MODES: readonly string[] = ['major', 'minor'];

/** 10-BPM bins from 40 to 240: below 40 and from 240 up are a bin each. */
export const TEMPO_EDGES: readonly number[] = Array.from({ length: 21 }, (_, i) => 40 + i * 10);
/** Seconds: short sketches apart from songs, songs by the minute, long pieces together. */
export const DURATION_EDGES: readonly number[] = [15, 30, 60, 120, 180, 240, 300, 420, 600, 900, 1800];
/** Notes per second. */
export const DENSITY_EDGES: readonly number[] = [1, 2, 3, 4, 6, 8, 10, 12, 16, 20, 30, 50];

export const REPORT_LIMITS = {
  failureKinds: 10,
  failedFiles: 50,
  meters: 10,
  drumKits: 8,
} as const;

/** Bin index of `value` among `edges` (as Postgres' width_bucket with a thresholds array): 0 … edges.length. */
export function binOf(value: number, edges: readonly number[]): number {
  let i = 0;
  while (i < edges.length && value >= edges[i]!) i++;
  return i;
}

/** An empty histogram over `edges`. */
export function emptyHistogram(edges: readonly number[]): Histogram {
  return { edges, counts: new Array<number>(edges.length + 1).fill(0) };
}

/** Labels of a histogram's bins, `format` writing one edge: "< 40", "40–50", …, "≥ 240". */
export function binLabels(edges: readonly number[], format: (edge: number) => string = String): string[] {
  const labels = [`< ${format(edges[0]!)}`];
  for (let i = 1; i < edges.length; i++) labels.push(`${format(edges[i - 1]!)}–${format(edges[i]!)}`);
  labels.push(`≥ ${format(edges[edges.length - 1]!)}`);
  return labels;
}

/** A duration edge for people: 45 s, 1 min, 1.5 min, 30 min. */
export function formatSeconds(seconds: number): string {
  if (seconds < 60) return `${seconds} s`;
  const minutes = seconds / 60;
  return `${Number.isInteger(minutes) ? minutes : minutes.toFixed(1)} min`;
}

/** Statuses sorted by STATUS_ORDER, unknown ones after the known, alphabetically. */
export function orderStatuses(counts: readonly Count[]): Count[] {
  const rank = (s: string) => {
    const i = STATUS_ORDER.indexOf(s);
    return i === -1 ? STATUS_ORDER.length : i;
  };
  return [...counts].sort((a, b) => rank(a.label) - rank(b.label) || a.label.localeCompare(b.label));
}

/** The `limit` largest counts (ties by label), the rest summed into one "other" entry when there is a rest. */
export function topWithOther(counts: readonly Count[], limit: number, other = 'other'): Count[] {
  const sorted = [...counts].sort((a, b) => b.count - a.count || a.label.localeCompare(b.label));
  if (sorted.length <= limit) return sorted;
  const rest = sorted.slice(limit - 1).reduce((sum, c) => sum + c.count, 0);
  return [...sorted.slice(0, limit - 1), { label: other, count: rest }];
}
