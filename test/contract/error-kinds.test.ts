import { describe, expect, it } from 'vitest';
import { errorKind, PermanentError, TransientError } from '../../contract/error-kinds.js';
import { EXIT_BUG, EXIT_TEMPFAIL, EXIT_USAGE, exitCodeOf } from '../../contract/exit-codes.js';

class CorpusGone extends PermanentError {
  override readonly name = 'CorpusGone';
}

describe('error kinds', () => {
  it.each<[string, unknown, ReturnType<typeof errorKind>, number]>([
    ['a permanent error: retrying cannot help', new PermanentError('bad flag'), 'permanent', EXIT_USAGE],
    ['a subclass keeps its kind', new CorpusGone('x'), 'permanent', EXIT_USAGE],
    ['a transient error: run it again', new TransientError('database restarting'), 'transient', EXIT_TEMPFAIL],
    ['a plain Error is a bug', new Error('x is undefined'), 'bug', EXIT_BUG],
    [
      'an error named like a permanent one is still a bug',
      Object.assign(new Error('x'), { name: 'PermanentError' }),
      'bug',
      EXIT_BUG,
    ],
    ['a thrown string is a bug', 'oops', 'bug', EXIT_BUG],
  ])('%s', (_name, err, kind, exit) => {
    expect(errorKind(err)).toBe(kind);
    expect(exitCodeOf(errorKind(err))).toBe(exit);
  });

  it('exit codes are the sysexits values the Jobs and local mode act on', () => {
    expect([exitCodeOf('permanent'), exitCodeOf('transient'), exitCodeOf('bug')]).toEqual([64, 75, 1]);
  });

  it('a subclass names itself in logs, not its kind', () => {
    expect(new CorpusGone('x').name).toBe('CorpusGone');
    expect(new CorpusGone('x')).toBeInstanceOf(Error);
  });
});
