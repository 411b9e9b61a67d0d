import { describe, expect, it } from 'vitest';
import { analyzeMidi } from '../../../job-runner/analysis/analyze.js';
import { MAX_NAME_LENGTH } from '../../../job-runner/analysis/smf-reader.js';
import { MAX_WARNINGS_PER_FILE } from '../../../job-runner/analysis/warnings.js';
import {
  longLatin1Name,
  manyMalformedTempos,
  manyUnknownChunks,
  withTrackName,
} from '../../../job-runner/synth/hostile-inputs.js';

describe('hostile files', () => {
  it('keeps the first warnings of a file with a million malformed tempo events, and counts the rest', () => {
    const outcome = analyzeMidi(manyMalformedTempos(1_000_000));
    expect(outcome.ok && outcome.analysis.noteCount).toBe(2);
    expect(outcome.warnings).toHaveLength(MAX_WARNINGS_PER_FILE + 1);
    expect(outcome.warnings[0]).toBe('track 0, tick 0: tempo event of length 2 with value 0 ignored');
    expect(outcome.warnings.at(-1)).toBe(
      `${1_000_000 - MAX_WARNINGS_PER_FILE} more warnings not kept (at most ${MAX_WARNINGS_PER_FILE} per file)`,
    );
  });

  it('keeps the first warnings of a file with a million unknown chunks, and counts the rest', () => {
    const outcome = analyzeMidi(manyUnknownChunks(1_000_000));
    expect(outcome.ok && outcome.analysis.noteCount).toBe(2);
    expect(outcome.warnings).toHaveLength(MAX_WARNINGS_PER_FILE + 1);
    expect(outcome.warnings[0]).toMatch(/^unknown chunk 'XYZZ' at byte \d+ skipped$/);
    expect(outcome.warnings.at(-1)).toMatch(/^\d+ more warnings not kept/);
  });

  it('keeps every warning of a file with fewer than the cap, and adds no count', () => {
    const outcome = analyzeMidi(manyMalformedTempos(3));
    expect(outcome.warnings).toEqual([
      'track 0, tick 0: tempo event of length 2 with value 0 ignored',
      'track 0, tick 0: tempo event of length 2 with value 0 ignored',
      'track 0, tick 0: tempo event of length 2 with value 0 ignored',
    ]);
  });

  it('reads a track name of 16 MB that is not UTF-8 as Latin-1, cut to a label, without overflowing the stack', () => {
    const outcome = analyzeMidi(longLatin1Name(16 * 1024 * 1024));
    expect(outcome.ok).toBe(true);
    const name = outcome.ok ? outcome.analysis.tracks[0]?.name : undefined;
    expect(name).toBe('é'.repeat(MAX_NAME_LENGTH - 1) + '…');
    expect(outcome.warnings).toContain(
      `track 0: name of ${16 * 1024 * 1024} bytes cut to ${MAX_NAME_LENGTH} characters`,
    );
  });

  it('keeps a short Latin-1 name whole, and a long UTF-8 name as UTF-8', () => {
    const short = analyzeMidi(longLatin1Name(12));
    expect(short.ok && short.analysis.tracks[0]?.name).toBe('é'.repeat(12));
    expect(short.warnings).toEqual([]);
    // 1000 × ü is 2000 bytes of UTF-8: cut where a character starts, it stays UTF-8 (not read as Latin-1 mojibake).
    const long = analyzeMidi(withTrackName(new TextEncoder().encode('ü'.repeat(1000))));
    expect(long.ok && long.analysis.tracks[0]?.name).toBe('ü'.repeat(MAX_NAME_LENGTH - 1) + '…');
  });
});
