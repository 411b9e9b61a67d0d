/**
 * A seeded generator of plausible multi-track songs: a conductor track (tempo changes, meters, key signature), a
 * melody, block chords with sustain pedal, a bass line, an optional arpeggio and a drum kit on channel 10 (index 9),
 * with program changes, volume/pan/expression/modulation CCs and pitch bends. Sizes range from a few hundred bytes to
 * a few hundred kilobytes. The spec returned beside the bytes gives the answers an analysis should find.
 *
 * The 'real-world' profile writes songs shaped like the MIDI files people collect (and like those in Debian's game
 * packages, e.g. planetblupi-music-midi: five to nine tracks, drums in every one): always format 1 with drums, five to
 * seven tracks (a pad and an arpeggio besides melody, chords and bass), a tempo map of several changes ending in a
 * ritardando, one or two changes of meter, a change of instrument half-way, and bends and controllers several times
 * as often. The default profile keeps the bench's and the sample corpus's songs byte for byte as they were.
 *
 * Every file is well formed in the sense @tonejs/midi needs to agree with the analysis: the first tempo at tick 0,
 * program changes before the first note of their channel, every note released, no stray note-offs.
 */
import type { Random } from './random.js';
import { buildSmf, encodeTrack, microsecondsPerQuarter, note, type TrackEvent } from './smf-builder.js';

export type SongSize = 'small' | 'medium' | 'large';
export type Mode = 'major' | 'minor';
export type SongProfile = 'generated' | 'real-world';

export interface SongOptions {
  size?: SongSize;
  format?: 0 | 1;
  /** Tonic pitch class, 0 = C. */
  tonic?: number;
  mode?: Mode;
  bpm?: number;
  meter?: [number, number];
  drums?: boolean;
  /** Default 'generated'. */
  profile?: SongProfile;
}

export interface SongSpec {
  format: 0 | 1;
  ticksPerQuarter: number;
  tonic: number;
  mode: Mode;
  sharpsFlats: number;
  /** The tempo at tick 0. */
  bpm: number;
  /** Tempo events after the first. */
  tempoChanges: number;
  /** Time signatures after the first. */
  meterChanges: number;
  /** The meter at tick 0. */
  meter: [number, number];
  bars: number;
  trackCount: number;
  noteCount: number;
  hasDrums: boolean;
  runningStatus: boolean;
  /** Note-offs written as note-ons with velocity 0. */
  noteOffAsNoteOn: boolean;
}

export interface GeneratedSong {
  spec: SongSpec;
  bytes: Uint8Array;
}

const MAJOR_SCALE = [0, 2, 4, 5, 7, 9, 11];
const MINOR_SCALE = [0, 2, 3, 5, 7, 8, 10];
/** Sharps (+) or flats (−) of the major key on each tonic pitch class (F# rather than Gb). */
const MAJOR_SHARPS_FLATS = [0, -5, 2, -3, 4, -1, 6, 1, -4, 3, -2, 5];
const PROGRESSIONS: Record<Mode, number[][]> = {
  major: [
    [0, 4, 5, 3],
    [0, 3, 4, 0],
    [0, 5, 3, 4],
    [0, 3, 0, 4],
    [0, 1, 4, 0],
  ],
  minor: [
    [0, 3, 4, 0],
    [0, 5, 3, 4],
    [0, 6, 5, 4],
    [0, 3, 6, 4],
  ],
};
const METERS: [number, number][] = [
  [4, 4],
  [4, 4],
  [4, 4],
  [3, 4],
  [3, 4],
  [6, 8],
  [2, 4],
  [5, 4],
  [7, 8],
];
const DIVISIONS = [96, 120, 192, 240, 384, 480, 960];
const PROGRAMS = {
  melody: [0, 4, 24, 40, 56, 65, 73, 80],
  chords: [0, 48, 88, 16, 24, 5],
  bass: [32, 33, 34, 38],
  arpeggio: [8, 11, 46, 81, 6],
  pad: [48, 49, 50, 52, 89, 91],
};
const DRUM = { kick: 36, snare: 38, closedHat: 42, openHat: 46, crash: 49 };

interface Bar {
  start: number;
  length: number;
}

export function sharpsFlatsOf(tonic: number, mode: Mode): number {
  return MAJOR_SHARPS_FLATS[(mode === 'major' ? tonic : tonic + 3) % 12]!;
}

function chooseBars(random: Random, size: SongSize): number {
  switch (size) {
    case 'small':
      return random.int(8, 24);
    case 'medium':
      return random.int(32, 96);
    case 'large':
      return random.int(128, 320);
  }
}

export function generateSong(random: Random, options: SongOptions = {}): GeneratedSong {
  const realWorld = options.profile === 'real-world';
  // Every draw of the default profile stays where it was: its songs must not change (the committed sample corpus).
  const size =
    options.size ??
    (realWorld
      ? random.chance(0.9)
        ? 'medium'
        : 'large'
      : random.chance(0.5)
        ? 'small'
        : random.chance(0.8)
          ? 'medium'
          : 'large');
  const ppq = random.pick(DIVISIONS);
  const tonic = options.tonic ?? random.int(0, 11);
  const mode = options.mode ?? (random.chance(0.6) ? 'major' : 'minor');
  const scale = mode === 'major' ? MAJOR_SCALE : MINOR_SCALE;
  const meter = options.meter ?? random.pick(METERS);
  const bpm = options.bpm ?? random.int(60, 180);
  const barCount = chooseBars(random, size);
  const drums = options.drums ?? (realWorld || random.chance(0.7));
  const format = options.format ?? (realWorld ? 1 : random.chance(0.2) ? 0 : 1);
  const runningStatus = random.chance(0.5);
  const noteOffAsNoteOn = random.chance(0.4);

  // Bars, with an occasional change of meter half-way.
  const bars: Bar[] = [];
  const conductor: TrackEvent[] = [
    { tick: 0, type: 'trackName', text: 'conductor' },
    { tick: 0, type: 'tempo', microsecondsPerQuarter: microsecondsPerQuarter(bpm) },
    { tick: 0, type: 'timeSignature', numerator: meter[0], denominator: meter[1] },
    { tick: 0, type: 'keySignature', sharpsFlats: sharpsFlatsOf(tonic, mode), minor: mode === 'minor' },
  ];
  const meterChangeBars = realWorld
    ? new Set(
        random.chance(0.5) ? [Math.floor(barCount / 2)] : [Math.floor(barCount / 3), Math.floor((2 * barCount) / 3)],
      )
    : new Set(barCount >= 16 && random.chance(0.15) ? [Math.floor(barCount / 2)] : []);
  let current = meter;
  let tick = 0;
  for (let b = 0; b < barCount; b++) {
    if (meterChangeBars.has(b)) {
      current = random.pick(METERS.filter((m) => m[0] !== current[0] || m[1] !== current[1]));
      conductor.push({ tick, type: 'timeSignature', numerator: current[0], denominator: current[1] });
    }
    const length = (current[0] * ppq * 4) / current[1];
    bars.push({ start: tick, length });
    tick += length;
  }
  const endTick = tick;

  // Tempo changes at bar lines.
  let tempoChanges = 0;
  let tempo = bpm;
  const changeBars = new Set<number>();
  const changes = realWorld
    ? random.int(3, Math.min(8, barCount - 3))
    : random.int(0, Math.min(3, Math.floor(barCount / 8)));
  // The real-world profile's last bar is its ritardando's.
  while (changeBars.size < changes) changeBars.add(random.int(1, barCount - (realWorld ? 2 : 1)));
  for (const b of [...changeBars].sort((x, y) => x - y)) {
    const bar = bars[b]!;
    tempo = Math.min(200, Math.max(50, tempo + random.pick([-1, 1]) * random.int(5, 30)));
    conductor.push({ tick: bar.start, type: 'tempo', microsecondsPerQuarter: microsecondsPerQuarter(tempo) });
    tempoChanges++;
  }
  if (realWorld) {
    const last = bars[barCount - 1]!;
    for (let k = 1; k <= 4; k++) {
      tempo = Math.max(40, Math.round(tempo * 0.94));
      const at = last.start + Math.floor((last.length * (k - 1)) / 4);
      conductor.push({ tick: at, type: 'tempo', microsecondsPerQuarter: microsecondsPerQuarter(tempo) });
      tempoChanges++;
    }
  }
  if (random.chance(0.3)) {
    const marker = [...'B section'].map((c) => c.charCodeAt(0));
    conductor.push({ tick: bars[Math.floor(barCount / 2)]!.start, type: 'meta', metaType: 0x06, data: marker });
  }

  const progression = random.pick(PROGRESSIONS[mode]);
  /** Chord degree of each bar; the last bar comes home to the tonic. */
  const chordOf = (b: number): number => (b === barCount - 1 ? 0 : progression[b % progression.length]!);
  /** Pitch of a scale degree (may exceed 7 or be negative) above `base`, with the leading tone raised over V in minor. */
  const pitchOf = (degree: number, base: number, chord: number): number => {
    const octave = Math.floor(degree / 7);
    const step = ((degree % 7) + 7) % 7;
    let pc = scale[step]!;
    if (mode === 'minor' && chord === 4 && step === 6) pc = 11;
    return base + tonic + pc + 12 * octave;
  };
  const chordDegrees = (chord: number): number[] => [chord, chord + 2, chord + 4];

  const off = (e: [TrackEvent, TrackEvent]): [TrackEvent, TrackEvent] => {
    if (noteOffAsNoteOn && e[1].type === 'noteOff') e[1].asNoteOn = true;
    return e;
  };
  const setup = (channel: number, program: number, name: string): TrackEvent[] => [
    { tick: 0, type: 'trackName', text: name },
    { tick: 0, type: 'programChange', channel, program },
    { tick: 0, type: 'controlChange', channel, controller: 7, value: random.int(80, 120) },
    { tick: 0, type: 'controlChange', channel, controller: 10, value: random.int(20, 108) },
  ];

  // Melody: a random walk over the scale, landing on chord tones on the first beat of each bar.
  const melody = setup(0, random.pick(PROGRAMS.melody), 'melody');
  let degree = 7;
  const lengths = [ppq / 2, ppq, ppq, ppq * 2, (ppq * 3) / 2].map(Math.round);
  for (let b = 0; b < barCount; b++) {
    const bar = bars[b]!;
    const chord = chordOf(b);
    let t = bar.start;
    while (t < bar.start + bar.length) {
      const length = Math.min(random.pick(lengths), bar.start + bar.length - t);
      if (t === bar.start) {
        const tones = chordDegrees(chord).map((d) => d + 7 * Math.round((degree - d) / 7));
        degree = tones.reduce((a, c) => (Math.abs(c - degree) < Math.abs(a - degree) ? c : a));
      } else {
        degree += random.pick([-2, -1, -1, 0, 1, 1, 2]);
      }
      degree = Math.max(3, Math.min(13, degree));
      if (b === barCount - 1 && t === bar.start) degree = 7;
      if (!random.chance(0.08) || t === bar.start) {
        const sounding = Math.max(1, Math.round(length * 0.9));
        melody.push(...off(note(t, sounding, 0, pitchOf(degree, 60 - 12 * +(tonic > 5), chord), random.int(70, 110))));
        if (random.chance(realWorld ? 0.15 : 0.04) && sounding >= 8) {
          // A bend up a whole tone and back inside the note.
          for (let k = 0; k <= 4; k++) {
            melody.push({
              tick: t + Math.floor((sounding * k) / 8),
              type: 'pitchBend',
              channel: 0,
              value: Math.round(4096 * Math.sin((Math.PI * k) / 4)),
            });
          }
          melody.push({ tick: t + sounding - 1, type: 'pitchBend', channel: 0, value: 0 });
        }
        if (random.chance(realWorld ? 0.1 : 0.03)) {
          melody.push({ tick: t, type: 'controlChange', channel: 0, controller: 1, value: random.int(0, 127) });
        }
      }
      t += length;
    }
    // A change of instrument half-way, as arrangers write them: on the bar line, before that bar's first note.
    if (realWorld && b === Math.floor(barCount / 2) - 1) {
      const next = bars[b + 1]?.start ?? bar.start + bar.length;
      melody.push({ tick: next, type: 'programChange', channel: 0, program: random.pick(PROGRAMS.melody) });
    }
  }

  // Chords: one block chord per bar (two in long bars), held with the sustain pedal, expression swells.
  const chords = setup(1, random.pick(PROGRAMS.chords), 'chords');
  for (let b = 0; b < barCount; b++) {
    const bar = bars[b]!;
    const chord = chordOf(b);
    const halves = bar.length >= 4 * ppq && random.chance(0.5) ? 2 : 1;
    const span = bar.length / halves;
    for (let h = 0; h < halves; h++) {
      const start = bar.start + Math.round(h * span);
      const velocity = random.int(55, 85);
      for (const d of chordDegrees(chord))
        chords.push(...off(note(start, Math.round(span * 0.95), 1, pitchOf(d, 48, chord), velocity)));
    }
    chords.push({ tick: bar.start, type: 'controlChange', channel: 1, controller: 64, value: 127 });
    chords.push({ tick: bar.start + bar.length - 1, type: 'controlChange', channel: 1, controller: 64, value: 0 });
    if (b % 4 === 0) {
      for (let k = 0; k < 4; k++) {
        chords.push({
          tick: bar.start + Math.floor((bar.length * k) / 4),
          type: 'controlChange',
          channel: 1,
          controller: 11,
          value: 80 + 10 * k,
        });
      }
    }
  }

  // Bass: the chord root on each beat or half bar.
  const bass = setup(2, random.pick(PROGRAMS.bass), 'bass');
  const bassStep = random.pick([ppq, ppq * 2]);
  for (let b = 0; b < barCount; b++) {
    const bar = bars[b]!;
    const root = pitchOf(chordOf(b), 36, chordOf(b));
    for (let t = bar.start; t < bar.start + bar.length; t += bassStep) {
      const length = Math.min(bassStep, bar.start + bar.length - t);
      bass.push(
        ...off(
          note(t, Math.max(1, Math.round(length * 0.8)), 2, random.chance(0.2) ? root + 7 : root, random.int(80, 105)),
        ),
      );
    }
  }

  const tracks: TrackEvent[][] = [melody, chords, bass];

  // Arpeggio in sixteenths over the chord, for the bigger songs.
  if (size !== 'small' && random.chance(realWorld ? 0.7 : 0.6)) {
    const arpeggio = setup(3, random.pick(PROGRAMS.arpeggio), 'arpeggio');
    const step = Math.round(ppq / 4);
    for (let b = 0; b < barCount; b++) {
      const bar = bars[b]!;
      const tones = chordDegrees(chordOf(b));
      let k = 0;
      for (let t = bar.start; t + step <= bar.start + bar.length; t += step, k++) {
        const d = tones[k % 3]! + 7 * (Math.floor(k / 3) % 2);
        arpeggio.push(...off(note(t, Math.max(1, step - 1), 3, pitchOf(d, 60, chordOf(b)), random.int(50, 80))));
      }
    }
    tracks.push(arpeggio);
  }

  // A pad of long chords, swelling with expression and panned slowly across: only in the real-world profile.
  if (realWorld && random.chance(0.6)) {
    const pad = setup(4, random.pick(PROGRAMS.pad), 'pad');
    for (let b = 0; b < barCount; b += 2) {
      const bar = bars[b]!;
      const span = bar.length + (bars[b + 1]?.length ?? 0);
      for (const d of chordDegrees(chordOf(b)))
        pad.push(
          ...off(note(bar.start, Math.round(span * 0.98), 4, pitchOf(d + 7, 48, chordOf(b)), random.int(40, 60))),
        );
      for (let k = 0; k < 8; k++) {
        const at = bar.start + Math.floor((span * k) / 8);
        pad.push({ tick: at, type: 'controlChange', channel: 4, controller: 11, value: 60 + 8 * Math.min(k, 8 - k) });
        pad.push({ tick: at, type: 'controlChange', channel: 4, controller: 10, value: 32 + 8 * k });
      }
    }
    tracks.push(pad);
  }

  if (drums) {
    const kit = setup(9, random.pick([0, 0, 8, 16, 25, 32]), 'drums');
    const eighth = Math.round(ppq / 2);
    const hit = Math.max(1, Math.round(ppq / 8));
    for (let b = 0; b < barCount; b++) {
      const bar = bars[b]!;
      if (b % 8 === 0) kit.push(...off(note(bar.start, hit, 9, DRUM.crash, 110)));
      kit.push(...off(note(bar.start, hit, 9, DRUM.kick, random.int(100, 120))));
      kit.push(...off(note(bar.start + Math.round(bar.length / 2), hit, 9, DRUM.snare, random.int(90, 115))));
      if (bar.length >= 4 * ppq) kit.push(...off(note(bar.start + 2 * ppq, hit, 9, DRUM.kick, random.int(90, 110))));
      for (let t = bar.start; t + eighth <= bar.start + bar.length; t += eighth) {
        const open = random.chance(0.1);
        kit.push(...off(note(t, hit, 9, open ? DRUM.openHat : DRUM.closedHat, random.int(50, 90))));
      }
    }
    tracks.push(kit);
  }

  const noteCount = tracks.reduce((n, events) => n + events.filter((e) => e.type === 'noteOn').length, 0);
  const encode = (events: TrackEvent[]): Uint8Array => encodeTrack(events, { runningStatus, endOfTrack: endTick });
  const trackBodies =
    format === 0 ? [encode([...conductor, ...tracks.flat()])] : [encode(conductor), ...tracks.map(encode)];
  const bytes = buildSmf({ format, division: { kind: 'ppq', ticksPerQuarter: ppq }, tracks: trackBodies });
  return {
    bytes,
    spec: {
      format,
      ticksPerQuarter: ppq,
      tonic,
      mode,
      sharpsFlats: sharpsFlatsOf(tonic, mode),
      bpm,
      tempoChanges,
      meterChanges: meterChangeBars.size,
      meter,
      bars: barCount,
      trackCount: trackBodies.length,
      noteCount,
      hasDrums: drums,
      runningStatus,
      noteOffAsNoteOn,
    },
  };
}
