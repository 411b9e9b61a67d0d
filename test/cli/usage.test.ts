import { describe, expect, it } from 'vitest';
import { usageFailure, usageLine } from '../../cli/usage.js';
import { PermanentError } from '../../contract/error-kinds.js';

const COMMANDS = ['plan', 'local <dir>', 'migrate'];

/** The fail handler with its exit and its stderr recorded instead of acted on. */
function failure(argv: string[]) {
  const seen: { lines: string[]; code?: number } = { lines: [] };
  const fail = usageFailure(
    COMMANDS,
    (code) => {
      seen.code = code;
      throw new Error('exited');
    },
    (line) => seen.lines.push(line),
    argv,
  );
  return { seen, fail };
}

describe('usageFailure', () => {
  it("prints yargs' message as one line and exits 64", () => {
    const { seen, fail } = failure(['plan', '--bogus']);
    expect(() => fail('Unknown argument: bogus', undefined)).toThrow('exited');
    expect(seen).toEqual({
      lines: ['midi-corpus plan: unknown option --bogus: `midi-corpus plan --help` lists them\n'],
      code: 64,
    });
  });

  it("reports a handler's PermanentError the same way: a configuration error found late", () => {
    const { seen, fail } = failure(['migrate']);
    expect(() => fail(null, new PermanentError('schema is newer than this code'))).toThrow('exited');
    expect(seen).toEqual({ lines: ['midi-corpus migrate: schema is newer than this code\n'], code: 64 });
  });

  it('rethrows any other error of a handler: a bug keeps its stack trace and exit 1', () => {
    const { seen, fail } = failure(['plan']);
    const bug = new TypeError('x is undefined');
    expect(() => fail(null, bug)).toThrow(bug);
    expect(seen).toEqual({ lines: [] });
  });
});

describe('usageLine', () => {
  it.each<[string, string, string[], string]>([
    [
      'a missing command',
      'Name a command; `midi-corpus --help` lists them.',
      [],
      'midi-corpus: Name a command; `midi-corpus --help` lists them.',
    ],
    [
      'an unknown command',
      'Unknown argument: frob',
      ['frob'],
      'midi-corpus: unknown command frob: `midi-corpus --help` lists the commands',
    ],
    [
      'a mistyped command',
      'Did you mean plan?',
      ['plaan'],
      'midi-corpus: unknown command plaan: did you mean plan? `midi-corpus --help` lists the commands',
    ],
    [
      'two unknown options',
      'Unknown arguments: x, yy',
      ['plan', '-x', '--yy=1'],
      'midi-corpus plan: unknown options -x, --yy: `midi-corpus plan --help` lists them',
    ],
    [
      'a stray argument',
      'Unknown argument: extra',
      ['plan', 'extra'],
      'midi-corpus plan: unexpected argument extra: `midi-corpus plan --help` shows the usage',
    ],
    [
      'missing flags',
      'Missing required arguments: files, max-connections',
      ['plan'],
      'midi-corpus plan: missing --files, --max-connections: `midi-corpus plan --help` lists what each takes',
    ],
    [
      'two flags that exclude each other',
      'Arguments shards and files-per-shard are mutually exclusive',
      ['plan'],
      'midi-corpus plan: --shards and --files-per-shard exclude each other: give one of them',
    ],
    [
      'a missing positional',
      'Not enough non-option arguments: got 0, need at least 1',
      ['local'],
      'midi-corpus local: missing <dir>: usage midi-corpus local <dir> [options]',
    ],
    [
      'a value not among the choices',
      'Invalid values:\n  Argument: format, Given: "xml", Choices: "csv", "jsonl"',
      ['plan'],
      'midi-corpus plan: --format must be one of "csv", "jsonl", got "xml"',
    ],
    [
      "a coercer's message",
      '--cpu must be a positive CPU quantity such as 2, 1.5 or 500m, got abc',
      ['plan', '--cpu', 'abc'],
      'midi-corpus plan: --cpu must be a positive CPU quantity such as 2, 1.5 or 500m, got abc',
    ],
  ])('%s', (_name, msg, argv, want) => {
    expect(usageLine(msg, argv, COMMANDS)).toBe(want);
  });
});
