/**
 * analyzeMidi: one file's bytes to a FileAnalysis, or a precise reason it cannot be analysed. Never throws, and every
 * number in a result is finite (one guard at the end turns anything else into a failure naming the field).
 *
 * Definitions the contract leaves open:
 * - durationSeconds/durationTicks: the end of the last note (what @tonejs/midi calls a file's duration); for a file
 *   without notes, the last event. Seconds follow the tempo map (tempo-map.ts).
 * - pitch range, distinct pitches, velocities and polyphony count every note, drums included; the pitch-class
 *   histogram and the estimated key exclude the drum channel.
 * - maxPolyphony: the most notes sounding at one instant; a note sounds over [start, end), so a note ending where
 *   another starts does not overlap it, and zero-length notes never sound.
 * - meanPolyphony: time-weighted over the time when at least one note sounds (silences do not dilute it):
 *   Σ note durations / length of the union of the notes' intervals, in seconds. 0 when nothing sounds.
 */
import type {
  AnalysisOutcome, ChannelInstrument, FileAnalysis, KeySignaturePoint, TimeSignaturePoint, TrackAnalysis,
} from './types.js';
import { FailureKind, MidiFormatError, describeThrown } from './failure.js';
import { DEFAULT_READER_LIMITS, readSmf, type SmfContent } from './smf-reader.js';
import { buildTempoMap, type TempoMap } from './tempo-map.js';
import { estimateKey, keySignatureName } from './key.js';
import { DRUM_CHANNEL, programFamily, programName } from './gm.js';

export interface AnalysisOptions {
  /** Refuse files with more events than this (all tracks), so a hostile file cannot exhaust memory. */
  maxEvents?: number;
  /** Refuse files whose events run longer than this after tempo mapping: absurd delta times. Default 24 h. */
  maxDurationSeconds?: number;
}

export const DEFAULT_MAX_DURATION_SECONDS = 24 * 3600;

/** More simultaneous notes than this is worth a warning: no instrument plays that many. */
const POLYPHONY_WARNING = 1000;

export function analyzeMidi(bytes: Uint8Array, options: AnalysisOptions = {}): AnalysisOutcome {
  const warnings: string[] = [];
  try {
    const content = readSmf(bytes, { maxEvents: options.maxEvents ?? DEFAULT_READER_LIMITS.maxEvents }, warnings);
    const analysis = describe(content, options.maxDurationSeconds ?? DEFAULT_MAX_DURATION_SECONDS);
    const nonFinite = findNonFinite(analysis, 'analysis');
    if (nonFinite !== null) return { ok: false, reason: `${FailureKind.nonFinite}: ${nonFinite}`, warnings };
    return { ok: true, analysis, warnings };
  } catch (thrown) {
    if (thrown instanceof MidiFormatError) return { ok: false, reason: thrown.message, warnings };
    return { ok: false, reason: `${FailureKind.internal}: ${describeThrown(thrown)}`, warnings };
  }
}

/** The path of the first number that is NaN or ±Infinity, or null when all are finite. */
export function findNonFinite(value: unknown, path: string): string | null {
  if (typeof value === 'number') return Number.isFinite(value) ? null : `${path} is ${value}`;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findNonFinite(value[i], `${path}[${i}]`);
      if (found !== null) return found;
    }
    return null;
  }
  if (value !== null && typeof value === 'object') {
    for (const [key, inner] of Object.entries(value)) {
      const found = findNonFinite(inner, `${path}.${key}`);
      if (found !== null) return found;
    }
  }
  return null;
}

function describe(content: SmfContent, maxDurationSeconds: number): FileAnalysis {
  const { notes, tracks, division, warnings } = content;
  const tempo = buildTempoMap(division, content.tempos);

  let lastEventTick = 0;
  for (const track of tracks) lastEventTick = Math.max(lastEventTick, track.endTick);
  const lastEventSeconds = tempo.toSeconds(lastEventTick);
  if (lastEventSeconds > maxDurationSeconds) {
    throw new MidiFormatError(FailureKind.absurdTiming,
      `events run to ${(lastEventSeconds / 3600).toFixed(1)} h, beyond the ${(maxDurationSeconds / 3600).toFixed(1)} h bound ` +
      `(largest delta time: ${content.largestDelta.ticks} ticks, in track ${content.largestDelta.track})`);
  }
  if (division.kind === 'smpte') {
    warnings.push(`SMPTE division (${division.framesPerSecond} fps × ${division.ticksPerFrame} ticks per frame): ` +
      'times come from the frame rate, tempo events do not change them');
  }
  if (tracks.length === 0) warnings.push('the file holds no tracks');

  const n = notes.count;
  const histogram = new Array<number>(12).fill(0);
  const pitchSeen = new Uint8Array(128);
  const channelNotes = new Int32Array(16);
  const channelFirstTick = new Float64Array(16).fill(Infinity);
  let pitchMin = 127;
  let pitchMax = 0;
  let velocityMin = 127;
  let velocityMax = 0;
  let velocitySum = 0;
  let durationTicks = 0;
  let soundingNoteSeconds = 0;
  for (let i = 0; i < n; i++) {
    const pitch = notes.pitch[i]!;
    const velocity = notes.velocity[i]!;
    const channel = notes.channel[i]!;
    const start = notes.startTick[i]!;
    const end = notes.endTick[i]!;
    if (pitch < pitchMin) pitchMin = pitch;
    if (pitch > pitchMax) pitchMax = pitch;
    pitchSeen[pitch] = 1;
    if (velocity < velocityMin) velocityMin = velocity;
    if (velocity > velocityMax) velocityMax = velocity;
    velocitySum += velocity;
    if (end > durationTicks) durationTicks = end;
    channelNotes[channel]!++;
    if (start < channelFirstTick[channel]!) channelFirstTick[channel] = start;
    if (end > start) {
      const seconds = tempo.toSeconds(end) - tempo.toSeconds(start);
      soundingNoteSeconds += seconds;
      if (channel !== DRUM_CHANNEL) histogram[pitch % 12]! += seconds;
    }
  }
  if (n === 0) durationTicks = lastEventTick;
  const durationSeconds = tempo.toSeconds(durationTicks);

  const histogramTotal = histogram.reduce((a, b) => a + b, 0);
  const pitchClassHistogram = histogram.map((v) => (histogramTotal > 0 ? v / histogramTotal : 0));
  const estimatedKey = histogramTotal > 0 ? estimateKey(pitchClassHistogram) : null;
  if (histogramTotal > 0 && estimatedKey === null) warnings.push('no key estimated: every pitch class sounds equally long');

  const polyphony = measurePolyphony(content, tempo);
  if (polyphony.max > POLYPHONY_WARNING) warnings.push(`${polyphony.max} notes sound at once`);

  const channels: ChannelInstrument[] = [];
  for (let channel = 0; channel < 16; channel++) {
    if (channelNotes[channel] === 0) continue;
    const isDrum = channel === DRUM_CHANNEL;
    const program = programAtFirstNote(content, channel, channelFirstTick[channel]!);
    channels.push({
      channel,
      program,
      programName: programName(program, isDrum),
      family: programFamily(program, isDrum),
      isDrum,
      noteCount: channelNotes[channel]!,
    });
  }

  let distinctPitches = 0;
  for (let p = 0; p < 128; p++) distinctPitches += pitchSeen[p]!;

  return {
    format: content.format,
    division,
    trackCount: tracks.length,
    channelCount: channels.length,
    durationSeconds,
    durationTicks,
    tempoMap: tempo.points,
    mainBpm: tempo.mainBpm(durationTicks),
    timeSignatures: timeSignatures(content, tempo),
    keySignatures: keySignatures(content, tempo),
    estimatedKey,
    noteCount: n,
    pitchMin: n > 0 ? pitchMin : null,
    pitchMax: n > 0 ? pitchMax : null,
    distinctPitches,
    velocityMin: n > 0 ? velocityMin : null,
    velocityMean: n > 0 ? velocitySum / n : null,
    velocityMax: n > 0 ? velocityMax : null,
    noteDensity: durationSeconds > 0 ? n / durationSeconds : 0,
    maxPolyphony: polyphony.max,
    meanPolyphony: polyphony.soundingSeconds > 0 ? soundingNoteSeconds / polyphony.soundingSeconds : 0,
    pitchClassHistogram,
    hasDrums: channelNotes[DRUM_CHANNEL]! > 0,
    controlChangeCount: content.controlChangeCount,
    pitchBendCount: content.pitchBendCount,
    channels,
    tracks: tracks.map((track) => describeTrack(content, tempo, track.index)),
  };
}

/** The program in force on `channel` when its first note starts: the last program change at or before that tick
 *  (file order breaks ties); 0, the General MIDI default, when there is none. */
function programAtFirstNote(content: SmfContent, channel: number, firstTick: number): number {
  let program = 0;
  let programTick = -1;
  for (const change of content.programChanges) {
    if (change.channel === channel && change.tick <= firstTick && change.tick >= programTick) {
      program = change.program;
      programTick = change.tick;
    }
  }
  return program;
}

/**
 * Sweeps the sorted note starts and ends once: the most notes sounding together, and how long at least one sounds.
 * O(n log n) for the sorts; @tonejs/midi's pairing alone is O(n²).
 */
function measurePolyphony(content: SmfContent, tempo: TempoMap): { max: number; soundingSeconds: number } {
  const { notes } = content;
  const starts = new Float64Array(notes.count);
  const ends = new Float64Array(notes.count);
  let m = 0;
  for (let i = 0; i < notes.count; i++) {
    if (notes.endTick[i]! > notes.startTick[i]!) {
      starts[m] = notes.startTick[i]!;
      ends[m] = notes.endTick[i]!;
      m++;
    }
  }
  const s = starts.subarray(0, m).sort();
  const e = ends.subarray(0, m).sort();
  let sounding = 0;
  let max = 0;
  let soundingSeconds = 0;
  let soundingSince = 0;
  let i = 0;
  let j = 0;
  while (i < m) {
    // Ends first at equal ticks: intervals are half-open.
    if (e[j]! <= s[i]!) {
      if (--sounding === 0) soundingSeconds += tempo.toSeconds(e[j]!) - soundingSince;
      j++;
    } else {
      if (sounding++ === 0) soundingSince = tempo.toSeconds(s[i]!);
      if (sounding > max) max = sounding;
      i++;
    }
  }
  if (m > 0) soundingSeconds += tempo.toSeconds(e[m - 1]!) - soundingSince;
  return { max, soundingSeconds };
}

/** One event per tick (the last wins, as for tempo), in tick order. */
function lastPerTick<T extends { tick: number }>(events: readonly T[]): T[] {
  const sorted = events.map((e, order) => ({ e, order })).sort((a, b) => a.e.tick - b.e.tick || a.order - b.order);
  const result: T[] = [];
  for (const { e } of sorted) {
    if (result.length > 0 && result[result.length - 1]!.tick === e.tick) result[result.length - 1] = e;
    else result.push(e);
  }
  return result;
}

function timeSignatures(content: SmfContent, tempo: TempoMap): TimeSignaturePoint[] {
  return lastPerTick(content.timeSignatures).map((t) => ({
    tick: t.tick, seconds: tempo.toSeconds(t.tick), numerator: t.numerator, denominator: t.denominator,
  }));
}

function keySignatures(content: SmfContent, tempo: TempoMap): KeySignaturePoint[] {
  return lastPerTick(content.keySignatures).map((k) => ({
    tick: k.tick,
    seconds: tempo.toSeconds(k.tick),
    sharpsFlats: k.sharpsFlats,
    mode: k.minor ? 'minor' : 'major',
    key: keySignatureName(k.sharpsFlats, k.minor),
  }));
}

function describeTrack(content: SmfContent, tempo: TempoMap, index: number): TrackAnalysis {
  const track = content.tracks[index]!;
  const { notes } = content;
  let channelMask = 0;
  let pitchMin = 127;
  let pitchMax = 0;
  let endTick = 0;
  for (let i = track.noteFrom; i < track.noteTo; i++) {
    channelMask |= 1 << notes.channel[i]!;
    const pitch = notes.pitch[i]!;
    if (pitch < pitchMin) pitchMin = pitch;
    if (pitch > pitchMax) pitchMax = pitch;
    if (notes.endTick[i]! > endTick) endTick = notes.endTick[i]!;
  }
  const noteCount = track.noteTo - track.noteFrom;
  const channels: number[] = [];
  for (let c = 0; c < 16; c++) if (channelMask & (1 << c)) channels.push(c);
  return {
    index,
    name: track.name,
    channels,
    noteCount,
    pitchMin: noteCount > 0 ? pitchMin : null,
    pitchMax: noteCount > 0 ? pitchMax : null,
    durationSeconds: tempo.toSeconds(noteCount > 0 ? endTick : track.endTick),
    program: track.firstProgram,
    isDrum: noteCount > 0 && channelMask === 1 << DRUM_CHANNEL,
  };
}

