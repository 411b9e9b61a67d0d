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
  AnalysisOutcome,
  ChannelInstrument,
  FileAnalysis,
  KeySignaturePoint,
  TimeSignaturePoint,
  TrackAnalysis,
} from './types.js';
import { FailureKind, MidiFormatError, describeThrown } from './failure.js';
import { firstNonFinite } from './finite.js';
import { DEFAULT_READER_LIMITS, readSmf, type SmfContent } from './smf-reader.js';
import { Warnings } from './warnings.js';
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
  const warnings = new Warnings();
  try {
    const limits = { maxEvents: options.maxEvents ?? DEFAULT_READER_LIMITS.maxEvents, borrowNotes: true };
    const content = readSmf(bytes, limits, warnings);
    const analysis = describe(content, options.maxDurationSeconds ?? DEFAULT_MAX_DURATION_SECONDS);
    const nonFinite = firstNonFinite(analysis, 'analysis');
    if (nonFinite !== null) {
      return { ok: false, reason: `${FailureKind.nonFinite}: ${nonFinite}`, warnings: warnings.list() };
    }
    return { ok: true, analysis, warnings: warnings.list() };
  } catch (thrown) {
    if (thrown instanceof MidiFormatError) return { ok: false, reason: thrown.message, warnings: warnings.list() };
    return { ok: false, reason: `${FailureKind.internal}: ${describeThrown(thrown)}`, warnings: warnings.list() };
  }
}

function describe(content: SmfContent, maxDurationSeconds: number): FileAnalysis {
  const { notes, tracks, division, warnings } = content;
  const tempo = buildTempoMap(division, content.tempos);

  let lastEventTick = 0;
  for (const track of tracks) lastEventTick = Math.max(lastEventTick, track.endTick);
  const lastEventSeconds = tempo.toSeconds(lastEventTick);
  if (lastEventSeconds > maxDurationSeconds) {
    throw new MidiFormatError(
      FailureKind.absurdTiming,
      `events run to ${(lastEventSeconds / 3600).toFixed(1)} h, beyond the ${(maxDurationSeconds / 3600).toFixed(1)} h bound ` +
        `(largest delta time: ${content.largestDelta.ticks} ticks, in track ${content.largestDelta.track})`,
    );
  }
  if (division.kind === 'smpte') {
    warnings.push(
      `SMPTE division (${division.framesPerSecond} fps × ${division.ticksPerFrame} ticks per frame): ` +
        'times come from the frame rate, tempo events do not change them',
    );
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
  if (histogramTotal > 0 && estimatedKey === null)
    warnings.push('no key estimated: every pitch class sounds equally long');

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
 * The most notes sounding together, and how long at least one sounds, in O(n log k + n log p) for k tracks and
 * polyphony p, without sorting all notes (two full sorts took half the analysis time): each track's notes are
 * already in start order, so the tracks' runs are merged; a min-heap holds the ends of the notes sounding.
 */
function measurePolyphony(content: SmfContent, tempo: TempoMap): { max: number; soundingSeconds: number } {
  const { startTick, endTick } = content.notes;
  const order = notesByStart(content);
  const heap = new Float64Array(order.length);
  let size = 0;
  let max = 0;
  let soundingSeconds = 0;
  let clusterStart = 0;
  let clusterEnd = -Infinity;
  for (let k = 0; k < order.length; k++) {
    const note = order[k]!;
    const start = startTick[note]!;
    const end = endTick[note]!;
    // Notes ending at or before this start no longer sound: intervals are half-open.
    while (size > 0 && heap[0]! <= start) {
      const last = heap[--size]!;
      let i = 0;
      while (true) {
        const left = 2 * i + 1;
        if (left >= size) break;
        const child = left + 1 < size && heap[left + 1]! < heap[left]! ? left + 1 : left;
        if (heap[child]! >= last) break;
        heap[i] = heap[child]!;
        i = child;
      }
      heap[i] = last;
    }
    let i = size++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent]! <= end) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = end;
    if (size > max) max = size;
    // Union of the intervals, cluster by cluster.
    if (start >= clusterEnd) {
      if (clusterEnd > -Infinity) soundingSeconds += tempo.toSeconds(clusterEnd) - tempo.toSeconds(clusterStart);
      clusterStart = start;
      clusterEnd = end;
    } else if (end > clusterEnd) {
      clusterEnd = end;
    }
  }
  if (clusterEnd > -Infinity) soundingSeconds += tempo.toSeconds(clusterEnd) - tempo.toSeconds(clusterStart);
  return { max, soundingSeconds };
}

/** Indices of the notes that last longer than zero ticks, by start tick: a bottom-up merge of the tracks' runs. */
function notesByStart(content: SmfContent): Int32Array {
  const { notes, tracks } = content;
  let src = new Int32Array(notes.count);
  const runEnds: number[] = [];
  let m = 0;
  for (const track of tracks) {
    for (let i = track.noteFrom; i < track.noteTo; i++) if (notes.endTick[i]! > notes.startTick[i]!) src[m++] = i;
    if (runEnds.length === 0 || runEnds[runEnds.length - 1] !== m) runEnds.push(m);
  }
  src = src.subarray(0, m);
  let dst = new Int32Array(m);
  const start = notes.startTick;
  let bounds = runEnds;
  while (bounds.length > 1) {
    const merged: number[] = [];
    let from = 0;
    for (let r = 0; r < bounds.length; r += 2) {
      const mid = bounds[r]!;
      const to = r + 1 < bounds.length ? bounds[r + 1]! : mid;
      let i = from;
      let j = mid;
      let o = from;
      while (i < mid && j < to) dst[o++] = start[src[j]!]! < start[src[i]!]! ? src[j++]! : src[i++]!;
      while (i < mid) dst[o++] = src[i++]!;
      while (j < to) dst[o++] = src[j++]!;
      merged.push(to);
      from = to;
    }
    [src, dst] = [dst, src];
    bounds = merged;
  }
  return src;
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
    tick: t.tick,
    seconds: tempo.toSeconds(t.tick),
    numerator: t.numerator,
    denominator: t.denominator,
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
