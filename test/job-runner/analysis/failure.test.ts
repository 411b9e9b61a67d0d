import { describe, expect, it } from 'vitest';
import { FailureKind, MidiFormatError, describeThrown, failureKindOf } from '../../../job-runner/analysis/failure.js';

describe('failure reasons', () => {
  it('start with their kind, which failureKindOf recovers', () => {
    const error = new MidiFormatError(FailureKind.truncated, 'track 2 ends early');
    expect(error.message).toBe('truncated: track 2 ends early');
    expect(failureKindOf(error.message)).toBe(FailureKind.truncated);
    expect(failureKindOf('something else: entirely')).toBeNull();
  });

  it.each([
    ['an Error', new Error('boom'), 'boom'],
    ['a bare string, as midi-file throws', "Bad MIDI file.  Expected 'MHdr'", "Bad MIDI file.  Expected 'MHdr'"],
    ['an object', { code: 7 }, '{"code":7}'],
    ['undefined', undefined, 'undefined'],
  ])('describe %s', (_, thrown, expected) => {
    expect(describeThrown(thrown)).toBe(expected);
  });
});
