/**
 * Ticks to seconds.
 *
 * PPQ files: the tempo in force (microseconds per quarter note) sets the length of a tick; before the first tempo
 * event it is 500 000 µs (120 BPM), as the SMF specification says. @tonejs/midi gets this wrong when the first tempo
 * event is not at tick 0: it times that first event as if its own tempo had applied since tick 0, while it times notes
 * before it at 120 BPM, so every later time is shifted. When several tempo events share a tick, the last one (in
 * track order, then file order) wins, as in @tonejs/midi.
 *
 * SMPTE files: a tick is 1 / (frames per second × ticks per frame) seconds whatever the tempo events say; 29 means
 * 29.97 drop-frame (30000/1001). @tonejs/midi has no PPQ there and gives NaN for every time.
 */
import type { Division, TempoPoint } from './types.js';
import type { TempoEvent } from './smf-reader.js';

const DEFAULT_MICROSECONDS_PER_QUARTER = 500_000;

export interface TempoMap {
  /** Seconds from the start of the file to `tick`. Monotone in `tick`. */
  toSeconds(tick: number): number;
  /** The effective tempo events (one per tick), with their times. */
  points: TempoPoint[];
  /** The BPM in force for the longest time between tick 0 and `endTick` (the first one on ties). */
  mainBpm(endTick: number): number;
}

export function bpmOf(microsecondsPerQuarter: number): number {
  // Tempo is stored in whole microseconds; more than three decimals of BPM would be noise (90 BPM is 666 667 µs).
  return Math.round(60_000_000_000 / microsecondsPerQuarter) / 1000;
}

export function framesPerSecond(division: Extract<Division, { kind: 'smpte' }>): number {
  return division.framesPerSecond === 29 ? 30_000 / 1001 : division.framesPerSecond;
}

/** One tempo per tick: stable sort by tick, the last event at a tick wins. */
function effectiveTempos(tempos: readonly TempoEvent[]): TempoEvent[] {
  const sorted = tempos.map((t, order) => ({ t, order })).sort((a, b) => a.t.tick - b.t.tick || a.order - b.order);
  const result: TempoEvent[] = [];
  for (const { t } of sorted) {
    const last = result[result.length - 1];
    if (last !== undefined && last.tick === t.tick) result[result.length - 1] = t;
    else result.push(t);
  }
  return result;
}

export function buildTempoMap(division: Division, tempoEvents: readonly TempoEvent[]): TempoMap {
  const tempos = effectiveTempos(tempoEvents);
  // Segments where one tempo is in force: the implicit 120 BPM until the first event, unless that event is at tick 0.
  const segments: TempoEvent[] =
    tempos[0]?.tick === 0 ? tempos : [{ tick: 0, microsecondsPerQuarter: DEFAULT_MICROSECONDS_PER_QUARTER }, ...tempos];
  const n = segments.length;
  const segTick = new Float64Array(n);
  const segSeconds = new Float64Array(n);
  const segSecondsPerTick = new Float64Array(n);

  if (division.kind === 'smpte') {
    const secondsPerTick = 1 / (framesPerSecond(division) * division.ticksPerFrame);
    segSecondsPerTick.fill(secondsPerTick);
    segments.forEach((s, i) => {
      segTick[i] = s.tick;
      segSeconds[i] = s.tick * secondsPerTick;
    });
  } else {
    let seconds = 0;
    segments.forEach((s, i) => {
      if (i > 0) seconds += (s.tick - segTick[i - 1]!) * segSecondsPerTick[i - 1]!;
      segTick[i] = s.tick;
      segSeconds[i] = seconds;
      segSecondsPerTick[i] = s.microsecondsPerQuarter / 1e6 / division.ticksPerQuarter;
    });
  }

  const toSeconds =
    n === 1
      ? (tick: number): number => tick * segSecondsPerTick[0]!
      : (tick: number): number => {
          // Binary search for the last segment starting at or before `tick`.
          let lo = 0;
          let hi = n - 1;
          while (lo < hi) {
            const mid = (lo + hi + 1) >> 1;
            if (segTick[mid]! <= tick) lo = mid;
            else hi = mid - 1;
          }
          return segSeconds[lo]! + (tick - segTick[lo]!) * segSecondsPerTick[lo]!;
        };

  const points: TempoPoint[] = tempos.map((t) => ({
    tick: t.tick,
    seconds: toSeconds(t.tick),
    bpm: bpmOf(t.microsecondsPerQuarter),
  }));

  const mainBpm = (endTick: number): number => {
    const secondsByTempo = new Map<number, number>();
    for (let i = 0; i < n; i++) {
      const from = Math.min(segTick[i]!, endTick);
      const to = Math.min(i + 1 < n ? segTick[i + 1]! : endTick, endTick);
      const us = segments[i]!.microsecondsPerQuarter;
      secondsByTempo.set(us, (secondsByTempo.get(us) ?? 0) + toSeconds(to) - toSeconds(from));
    }
    let best = segments[0]!.microsecondsPerQuarter;
    let bestSeconds = -1;
    for (const [us, seconds] of secondsByTempo) {
      if (seconds > bestSeconds) {
        best = us;
        bestSeconds = seconds;
      }
    }
    return bpmOf(best);
  };

  return { toSeconds, points, mainBpm };
}
