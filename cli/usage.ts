import { PermanentError } from '../contract/error-kinds.js';
import { EXIT_USAGE } from '../contract/exit-codes.js';

/**
 * How the CLI reports a usage or configuration error: one line on stderr, `midi-corpus <command>: <what is wrong and
 * what would be valid>`, no stack trace, no help dump, exit 64 (contract/exit-codes.ts). Someone who typed
 * `plan --cpu abc` needs the one line that names the flag; a script needs the exit code that says "retrying cannot
 * help"; neither needs 40 lines of help (`--help` is one flag away, and the line says where).
 *
 * The messages come from yargs (unknown options, missing ones, conflicts), from the coercers of common/flags.ts and
 * from `.check()` callbacks. yargs' own are rewritten to name flags as they are typed (`--files`, not `files`).
 */

/**
 * yargs' fail callback (`.fail(usageFailure(...))`). `msg` is null when a command's handler threw: a PermanentError
 * there is a configuration error found late (reported the same way); anything else is a bug and is rethrown, so that
 * Node prints its stack and exits 1.
 */
export function usageFailure(
  commands: string[],
  exit: (code: number) => never = (code) => process.exit(code),
  write: (line: string) => void = (line) => process.stderr.write(line),
  argv: string[] = process.argv.slice(2),
): (msg: string | null, err: Error | undefined) => void {
  return (msg, err) => {
    if (msg === null || msg === undefined) {
      if (!(err instanceof PermanentError)) throw err;
      msg = err.message;
    }
    write(`${usageLine(msg, argv, commands)}\n`);
    exit(EXIT_USAGE);
  };
}

/**
 * The one line for a usage error `msg` of the command line `argv`, given the commands as yargs declares them
 * (`local <dir>`, `plan`). Pure.
 */
export function usageLine(msg: string, argv: string[], commands: string[]): string {
  const word = argv.find((a) => !a.startsWith('-'));
  const declared = commands.find((c) => c.split(' ')[0] === word);
  const who = declared ? `midi-corpus ${word}` : 'midi-corpus';
  const help = `\`${who} --help\` lists them`;
  const text = rewrite(msg.replace(/\s*\n\s*/g, ' ').trim(), argv, declared, help);
  return `${who}: ${text}`;
}

function rewrite(msg: string, argv: string[], command: string | undefined, help: string): string {
  const asFlag = (name: string) => (name.length === 1 ? `-${name}` : `--${name}`);
  let m: RegExpExecArray | null;
  if ((m = /^Unknown arguments?: (.*)$/.exec(msg))) {
    const names = m[1]!.split(', ');
    const typed = (n: string) => argv.some((a) => a === asFlag(n) || a.startsWith(`${asFlag(n)}=`));
    const options = names.filter(typed).map(asFlag);
    const words = names.filter((n) => !typed(n));
    if (command === undefined && words.length > 0 && options.length === 0)
      return `unknown command ${words.join(' ')}: \`midi-corpus --help\` lists the commands`;
    return [
      options.length ? `unknown option${options.length > 1 ? 's' : ''} ${options.join(', ')}` : '',
      words.length ? `unexpected argument${words.length > 1 ? 's' : ''} ${words.join(' ')}` : '',
    ]
      .filter(Boolean)
      .join('; ')
      .concat(`: ${options.length ? help : help.replace('lists them', 'shows the usage')}`);
  }
  if ((m = /^Did you mean (\S+)\?$/.exec(msg)))
    return `unknown command ${argv.find((a) => !a.startsWith('-')) ?? ''}: did you mean ${m[1]}? \`midi-corpus --help\` lists the commands`;
  if ((m = /^Missing required arguments?: (.*)$/.exec(msg)))
    return `missing ${m[1]!.split(', ').map(asFlag).join(', ')}: ${help.replace('them', 'what each takes')}`;
  if ((m = /^Arguments (\S+) and (\S+) are mutually exclusive$/.exec(msg)))
    return `${asFlag(m[1]!)} and ${asFlag(m[2]!)} exclude each other: give one of them`;
  if ((m = /^Not enough non-option arguments: got (\d+), need at least (\d+)$/.exec(msg)))
    return `missing ${requiredPositionals(command).join(' ') || 'an argument'}: usage midi-corpus ${command ?? '<command>'} [options]`;
  if ((m = /^Too many non-option arguments: got (\d+), maximum of (\d+)$/.exec(msg)))
    return `too many arguments (got ${m[1]}, at most ${m[2]}): usage midi-corpus ${command ?? '<command>'} [options]`;
  if ((m = /^Invalid values: Argument: (\S+), Given: (.*), Choices: (.*)$/.exec(msg)))
    return `${asFlag(m[1]!)} must be one of ${m[3]}, got ${m[2]}`;
  return msg;
}

/** The `<required>` positionals of a yargs command string: `local <dir>` → [`<dir>`]. */
function requiredPositionals(command: string | undefined): string[] {
  return command?.split(' ').filter((w) => w.startsWith('<')) ?? [];
}
