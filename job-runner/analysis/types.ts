/**
 * The analysis contract between the parser (job-runner/analysis) and everything that stores or prints its results.
 * Every number here is finite: the analysis guarantees it, the database enforces it with CHECK constraints.
 */

export type Division =
  | { kind: 'ppq'; ticksPerQuarter: number }
  | { kind: 'smpte'; framesPerSecond: 24 | 25 | 29 | 30; ticksPerFrame: number };

export interface TempoPoint {
  tick: number;
  seconds: number;
  bpm: number;
}
export interface TimeSignaturePoint {
  tick: number;
  seconds: number;
  numerator: number;
  denominator: number;
}
/** A key-signature meta event, decoded correctly for minor keys (sf = sharps (+) or flats (−), mi = 0 major / 1 minor). */
export interface KeySignaturePoint {
  tick: number;
  seconds: number;
  sharpsFlats: number;
  mode: 'major' | 'minor';
  key: string;
}

export interface EstimatedKey {
  /** Pitch-class name of the tonic, with sharps: 'C', 'C#', ... 'B'. */
  tonic: string;
  mode: 'major' | 'minor';
  /** Pearson correlation of the best profile, in [-1, 1]. */
  correlation: number;
  /** How far the best key stands above the runner-up, in [0, 1]. */
  confidence: number;
}

export interface ChannelInstrument {
  /** 0-15. Channel 9 (MIDI channel 10) is the General MIDI drum channel. */
  channel: number;
  /** General MIDI program 0-127 in force at the channel's first note: the last program change at or before that
   *  tick (0, the General MIDI default, when none). On the drum channel it selects a drum kit. */
  program: number;
  programName: string;
  family: string;
  isDrum: boolean;
  noteCount: number;
}

export interface TrackAnalysis {
  /** Index of the track chunk in the file. */
  index: number;
  name: string | null;
  /** Channels whose notes appear in this track. */
  channels: number[];
  noteCount: number;
  pitchMin: number | null;
  pitchMax: number | null;
  /** Seconds from 0 to the end of the last note (or the last event when it has no notes). */
  durationSeconds: number;
  /** General MIDI program of the track's first program change, null when none. */
  program: number | null;
  isDrum: boolean;
}

export interface FileAnalysis {
  format: 0 | 1 | 2;
  division: Division;
  trackCount: number;
  /** Distinct channels that carry note events. */
  channelCount: number;
  /** End of the last note (as @tonejs/midi's duration), or of the last event when the file has no notes. */
  durationSeconds: number;
  durationTicks: number;
  tempoMap: TempoPoint[];
  /** The tempo in force for the longest time (120 when the file has no tempo event). */
  mainBpm: number;
  timeSignatures: TimeSignaturePoint[];
  keySignatures: KeySignaturePoint[];
  /** Null when the file has no pitched (non-drum) notes. */
  estimatedKey: EstimatedKey | null;
  noteCount: number;
  pitchMin: number | null;
  pitchMax: number | null;
  distinctPitches: number;
  velocityMin: number | null;
  velocityMean: number | null;
  velocityMax: number | null;
  /** Notes per second over the file's duration (0 for a file of zero duration). */
  noteDensity: number;
  /** Most notes sounding at one instant (drums included); a note sounds over [start, end). */
  maxPolyphony: number;
  /** Time-weighted mean number of notes sounding, over the time when at least one sounds (silence excluded). */
  meanPolyphony: number;
  /** Duration-weighted, drums excluded, normalised to sum 1 (all zeros when there are no pitched notes). */
  pitchClassHistogram: number[];
  hasDrums: boolean;
  controlChangeCount: number;
  pitchBendCount: number;
  channels: ChannelInstrument[];
  tracks: TrackAnalysis[];
}

/** What analysing one file's bytes gives: a result with warnings, or a precise reason it failed. Never throws. */
export type AnalysisOutcome =
  { ok: true; analysis: FileAnalysis; warnings: string[] } | { ok: false; reason: string; warnings: string[] };
