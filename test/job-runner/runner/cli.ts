import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { badInputs } from '../../../job-runner/synth/bad-inputs.js';
import { generateCorpus } from '../../../job-runner/synth/corpus.js';

/**
 * Helpers for tests that run the real CLI (`node dist/cli/main.js`) as separate processes, the way Kubernetes and
 * local mode run it. `npm test` builds dist/ first.
 */

export const CLI = path.resolve('dist/cli/main.js');

export interface CliExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliProcess {
  child: ChildProcess;
  done: Promise<CliExit>;
}

export function startCli(args: string[], env: Record<string, string | undefined> = {}): CliProcess {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (npm test does)`);
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const done = new Promise<CliExit>((resolve) =>
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return { child, done };
}

export function runCli(args: string[], env: Record<string, string | undefined> = {}): Promise<CliExit> {
  return startCli(args, env).done;
}

/** The object printed as the last stdout line by --json. */
export function lastJson<T = Record<string, unknown>>(exit: CliExit): T {
  const line = exit.stdout.trim().split('\n').pop();
  if (!line) throw new Error(`no JSON on stdout; stderr:\n${exit.stderr.slice(-3000)}`);
  return JSON.parse(line) as T;
}

/** `count` generated songs under `root` (seeded), and with `bad`, every bad-input kind under bad/. Returns the paths. */
export async function writeCorpus(
  root: string,
  options: { files: number; seed?: number; bad?: boolean; size?: 'small' | 'medium' | 'large' },
): Promise<string[]> {
  const written: string[] = [];
  const songs = generateCorpus({
    files: options.files,
    seed: options.seed ?? 7,
    song: options.size ? { size: options.size } : undefined,
  });
  for (const f of songs) {
    await mkdir(path.dirname(path.join(root, f.path)), { recursive: true });
    await writeFile(path.join(root, f.path), f.bytes);
    written.push(f.path);
  }
  if (options.bad) {
    await mkdir(path.join(root, 'bad'), { recursive: true });
    for (const b of badInputs()) {
      await writeFile(path.join(root, 'bad', b.name), b.bytes);
      written.push(`bad/${b.name}`);
    }
  }
  return written;
}

/** The file-system oddities no byte generator can make. */
export const ODDITIES = {
  /** "café.mid" in Latin-1: not valid UTF-8. */
  latin1Name: Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x2e, 0x6d, 0x69, 0x64]),
  latin1Display: 'caf\\xe9.mid',
  outsideLink: 'odd/outside-link.mid',
  dangling: 'odd/dangling.mid',
  fifo: 'odd/fifo.mid',
};

/**
 * Adds to `root`: a symlink to a MIDI file outside it, a good song under a non-UTF-8 name, and two entries that cannot
 * be read. (Tests run as root, where chmod 000 does not stop a read, so "unreadable" is a dangling symlink and a FIFO.)
 */
export async function addOddities(root: string, outsideDir: string, goodSong: Uint8Array): Promise<void> {
  await mkdir(path.join(root, 'odd'), { recursive: true });
  await mkdir(outsideDir, { recursive: true });
  await writeFile(path.join(outsideDir, 'private.mid'), goodSong);
  await symlink(path.join(outsideDir, 'private.mid'), path.join(root, ODDITIES.outsideLink));
  await symlink(path.join(root, 'odd/nowhere.mid'), path.join(root, ODDITIES.dangling));
  execFileSync('mkfifo', [path.join(root, ODDITIES.fifo)]);
  await writeFile(Buffer.concat([Buffer.from(`${root}/`), ODDITIES.latin1Name]), goodSong);
}
