/**
 * A Standard MIDI File byte builder for fixtures: any event at an absolute tick, optional running status, PPQ or
 * SMPTE division, RIFF RMID wrapping, and deliberately malformed pieces (raw event bytes, wrong chunk lengths, wrong
 * track counts) for the bad-input cases. Nothing here validates: a fixture must be able to say anything.
 */

export type ChannelEvent =
  | { type: 'noteOn'; channel: number; pitch: number; velocity: number }
  /** `asNoteOn`: written as a note-on with velocity 0, which the MIDI specification treats as a note-off. */
  | { type: 'noteOff'; channel: number; pitch: number; velocity?: number; asNoteOn?: boolean }
  | { type: 'controlChange'; channel: number; controller: number; value: number }
  | { type: 'programChange'; channel: number; program: number }
  /** -8192 to 8191, 0 is the centre. */
  | { type: 'pitchBend'; channel: number; value: number }
  | { type: 'channelPressure'; channel: number; pressure: number };

export type MetaEvent =
  | { type: 'tempo'; microsecondsPerQuarter: number }
  | { type: 'timeSignature'; numerator: number; denominator: number }
  | { type: 'keySignature'; sharpsFlats: number; minor: boolean }
  | { type: 'trackName'; text: string }
  /** Any meta event, byte for byte. */
  | { type: 'meta'; metaType: number; data: readonly number[] };

export type OtherEvent =
  | { type: 'sysex'; data: readonly number[] }
  /** Written verbatim after the delta time: for malformed events. Running status is forgotten after it. */
  | { type: 'raw'; bytes: readonly number[] };

export type TrackEvent = { tick: number } & (ChannelEvent | MetaEvent | OtherEvent);

export interface EncodeTrackOptions {
  /** Omit a channel status byte equal to the previous one. Meta and sysex events reset it (as the SMF spec says). */
  runningStatus?: boolean;
  /** Append the end-of-track meta event at the last event's tick (default true), or at this tick. */
  endOfTrack?: boolean | number;
}

export type DivisionSpec =
  | { kind: 'ppq'; ticksPerQuarter: number }
  | { kind: 'smpte'; framesPerSecond: 24 | 25 | 29 | 30; ticksPerFrame: number }
  /** The 16-bit division word as is (e.g. 0 for a zero PPQ, or an undefined SMPTE rate). */
  | { kind: 'raw'; word: number };

export interface SmfSpec {
  format: 0 | 1 | 2;
  division: DivisionSpec;
  /** Encoded MTrk bodies (encodeTrack); each becomes one chunk. */
  tracks: readonly Uint8Array[];
  /** Track count written in the header; defaults to tracks.length. */
  declaredTrackCount?: number;
}

export function microsecondsPerQuarter(bpm: number): number {
  return Math.round(60_000_000 / bpm);
}

/** A note as its two events. */
export function note(
  tick: number,
  durationTicks: number,
  channel: number,
  pitch: number,
  velocity: number,
): [TrackEvent, TrackEvent] {
  return [
    { tick, type: 'noteOn', channel, pitch, velocity },
    { tick: tick + durationTicks, type: 'noteOff', channel, pitch },
  ];
}

/** A MIDI variable-length quantity. */
export function vlq(value: number): number[] {
  const out = [value & 0x7f];
  let v = Math.floor(value / 128);
  while (v > 0) {
    out.unshift((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  return out;
}

class ByteSink {
  private buffer = new Uint8Array(1024);
  length = 0;

  push(...bytes: number[]): void {
    this.pushAll(bytes);
  }

  pushAll(bytes: ArrayLike<number>): void {
    while (this.length + bytes.length > this.buffer.length) {
      const bigger = new Uint8Array(this.buffer.length * 2);
      bigger.set(this.buffer);
      this.buffer = bigger;
    }
    for (let i = 0; i < bytes.length; i++) this.buffer[this.length++] = bytes[i]!;
  }

  bytes(): Uint8Array {
    return this.buffer.slice(0, this.length);
  }
}

function channelMessage(e: ChannelEvent): { status: number; data: number[] } {
  switch (e.type) {
    case 'noteOn':
      return { status: 0x90 | e.channel, data: [e.pitch, e.velocity] };
    case 'noteOff':
      return e.asNoteOn
        ? { status: 0x90 | e.channel, data: [e.pitch, 0] }
        : { status: 0x80 | e.channel, data: [e.pitch, e.velocity ?? 64] };
    case 'controlChange':
      return { status: 0xb0 | e.channel, data: [e.controller, e.value] };
    case 'programChange':
      return { status: 0xc0 | e.channel, data: [e.program] };
    case 'pitchBend': {
      const v = e.value + 0x2000;
      return { status: 0xe0 | e.channel, data: [v & 0x7f, (v >> 7) & 0x7f] };
    }
    case 'channelPressure':
      return { status: 0xd0 | e.channel, data: [e.pressure] };
  }
}

function metaMessage(e: MetaEvent): { metaType: number; data: number[] } {
  switch (e.type) {
    case 'tempo': {
      const us = e.microsecondsPerQuarter;
      return { metaType: 0x51, data: [(us >> 16) & 0xff, (us >> 8) & 0xff, us & 0xff] };
    }
    case 'timeSignature':
      return { metaType: 0x58, data: [e.numerator, Math.log2(e.denominator), 24, 8] };
    case 'keySignature':
      return { metaType: 0x59, data: [e.sharpsFlats & 0xff, e.minor ? 1 : 0] };
    case 'trackName':
      return { metaType: 0x03, data: [...new TextEncoder().encode(e.text)] };
    case 'meta':
      return { metaType: e.metaType, data: [...e.data] };
  }
}

/** An MTrk body: events sorted by tick (stable, so equal ticks keep the caller's order), delta-encoded. */
export function encodeTrack(events: readonly TrackEvent[], options: EncodeTrackOptions = {}): Uint8Array {
  const sorted = events.map((e, order) => ({ e, order })).sort((a, b) => a.e.tick - b.e.tick || a.order - b.order);
  const out = new ByteSink();
  let tick = 0;
  let running = 0;
  for (const { e } of sorted) {
    out.pushAll(vlq(e.tick - tick));
    tick = e.tick;
    switch (e.type) {
      case 'raw':
        out.pushAll(e.bytes);
        running = 0;
        break;
      case 'sysex':
        out.push(0xf0, ...vlq(e.data.length), ...e.data);
        running = 0;
        break;
      case 'tempo':
      case 'timeSignature':
      case 'keySignature':
      case 'trackName':
      case 'meta': {
        const { metaType, data } = metaMessage(e);
        out.push(0xff, metaType, ...vlq(data.length), ...data);
        running = 0;
        break;
      }
      default: {
        const { status, data } = channelMessage(e);
        if (!(options.runningStatus && status === running)) out.push(status);
        out.pushAll(data);
        running = status;
      }
    }
  }
  const endOfTrack = options.endOfTrack ?? true;
  if (endOfTrack !== false) {
    const endTick = typeof endOfTrack === 'number' ? Math.max(endOfTrack, tick) : tick;
    out.push(...vlq(endTick - tick), 0xff, 0x2f, 0x00);
  }
  return out.bytes();
}

function u32(n: number): number[] {
  return [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}

/** A chunk: 4-character id, 32-bit big-endian length (the real one unless `declaredLength` lies), body. */
export function chunk(id: string, body: Uint8Array, declaredLength: number = body.length): Uint8Array {
  const out = new Uint8Array(8 + body.length);
  for (let i = 0; i < 4; i++) out[i] = id.charCodeAt(i);
  out.set(u32(declaredLength), 4);
  out.set(body, 8);
  return out;
}

function divisionWord(division: DivisionSpec): number {
  switch (division.kind) {
    case 'ppq':
      return division.ticksPerQuarter & 0x7fff;
    case 'smpte':
      return (((256 - division.framesPerSecond) & 0xff) << 8) | (division.ticksPerFrame & 0xff);
    case 'raw':
      return division.word & 0xffff;
  }
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

export function buildSmf(spec: SmfSpec): Uint8Array {
  const word = divisionWord(spec.division);
  const count = spec.declaredTrackCount ?? spec.tracks.length;
  const header = new Uint8Array([
    spec.format >> 8,
    spec.format & 0xff,
    count >> 8,
    count & 0xff,
    word >> 8,
    word & 0xff,
  ]);
  return concatBytes([chunk('MThd', header), ...spec.tracks.map((t) => chunk('MTrk', t))]);
}

/** A RIFF RMID file (.rmi) holding `smf` as its 'data' chunk. RIFF lengths are little-endian and chunks even-padded. */
export function wrapRiff(smf: Uint8Array): Uint8Array {
  const le32 = (n: number): number[] => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
  const pad = smf.length & 1;
  const riffSize = 4 + 8 + smf.length + pad;
  return concatBytes([
    new Uint8Array([...'RIFF'].map((c) => c.charCodeAt(0)).concat(le32(riffSize))),
    new Uint8Array([...'RMIDdata'].map((c) => c.charCodeAt(0)).concat(le32(smf.length))),
    smf,
    new Uint8Array(pad),
  ]);
}
