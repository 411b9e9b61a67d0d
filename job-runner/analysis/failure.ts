/**
 * Why a file could not be analysed. Every failure reason starts with one of these kinds followed by ': ' and the
 * precise detail (track, byte offset, value), so reasons read well to a human and group well in SQL
 * (`split_part(reason, ':', 1)`).
 */
export const FailureKind = {
  empty: 'empty file',
  notMidi: 'not a MIDI file',
  invalidHeader: 'invalid header',
  zeroDivision: 'zero division',
  truncated: 'truncated',
  invalidEvent: 'invalid event',
  runningStatus: 'running status without a status byte',
  absurdTiming: 'absurd timing',
  tooManyEvents: 'too many events',
  nonFinite: 'non-finite value',
  internal: 'internal error',
} as const;

export type FailureKind = (typeof FailureKind)[keyof typeof FailureKind];

/** A file the reader refuses. Thrown inside the analysis only; analyzeMidi turns it into `{ok: false, reason}`. */
export class MidiFormatError extends Error {
  constructor(
    readonly kind: FailureKind,
    readonly detail: string,
  ) {
    super(`${kind}: ${detail}`);
    this.name = 'MidiFormatError';
  }
}

/** The kind a failure reason starts with, or null for a reason not made here. */
export function failureKindOf(reason: string): FailureKind | null {
  for (const kind of Object.values(FailureKind)) {
    if (reason.startsWith(`${kind}: `)) return kind;
  }
  return null;
}

/**
 * A readable message for anything thrown. midi-file and @tonejs/midi throw bare strings, not Errors, so `.message`
 * alone would be undefined.
 */
export function describeThrown(thrown: unknown): string {
  if (thrown instanceof Error) return thrown.message;
  if (typeof thrown === 'string') return thrown;
  try {
    return JSON.stringify(thrown) ?? String(thrown);
  } catch {
    return String(thrown);
  }
}
