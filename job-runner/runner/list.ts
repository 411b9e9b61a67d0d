import type { Dirent, Stats } from 'node:fs';
import { lstat, readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import picomatch from 'picomatch';
import { displayPath } from '../db/paths.js';

/**
 * Listing a corpus directory: which files a scan records, with their sizes, and which entries it records as problems
 * instead (symlinks leading out of the root, things that are not regular files, directories it cannot read).
 *
 * Names are kept as the file system's bytes: a corpus gathered from old archives has names in Latin-1 or Shift-JIS,
 * and a name decoded to a JS string and encoded back is a different name, which could not be opened again.
 */

/** MIDI files and their usual wrappers: .kar is a Standard MIDI File with lyrics, .rmi the RIFF-wrapped form. */
export const DEFAULT_INCLUDE = ['**/*.mid', '**/*.midi', '**/*.kar', '**/*.rmi', '**/*.smf'];

export interface ListOptions {
  root: string;
  /** Globs matched against the path relative to the root (case-insensitive). Default DEFAULT_INCLUDE. */
  include?: string[];
}

/** Why an entry will not be read by a runner; the scan records it with this status and reason. */
export interface EntryProblem {
  status: 'skipped' | 'failed';
  reason: string;
}

export interface CorpusEntry {
  /** Path relative to the root, '/'-separated, as raw bytes. */
  path: Buffer;
  /** Size in bytes of the file it names (following an allowed symlink); 0 for problems. */
  size: number;
  /**
   * Its modification time in whole microseconds since the epoch (what timestamptz keeps), null for problems: with the
   * size, what a rescan compares to tell a changed file without reading it.
   */
  modifiedUs: number | null;
  /** null for a regular file a runner will read. */
  problem: EntryProblem | null;
}

export interface Listing {
  /** The root's real path (symlinks resolved): the reference for "inside the corpus". */
  root: string;
  /** Sorted by path bytes, so the same tree always gives the same list and the same shards. */
  entries: CorpusEntry[];
}

const SLASH = Buffer.from('/');

export async function listCorpus(options: ListOptions): Promise<Listing> {
  const root = await realpath(path.resolve(options.root));
  const rootStat = await stat(root);
  if (!rootStat.isDirectory()) throw new Error(`corpus root ${options.root} is not a directory`);
  const matches = picomatch(options.include?.length ? options.include : DEFAULT_INCLUDE, { nocase: true, dot: true });
  const entries: CorpusEntry[] = [];
  // Directories already walked, by device and inode: a symlink back up the tree must not loop forever.
  const visited = new Set<string>([inodeKey(rootStat)]);
  const rootBytes = Buffer.from(root);

  const walk = async (relDir: Buffer | null): Promise<void> => {
    const absDir = relDir ? Buffer.concat([rootBytes, SLASH, relDir]) : rootBytes;
    let dirents: Dirent<Buffer>[];
    try {
      dirents = await readdir(absDir, { encoding: 'buffer', withFileTypes: true });
    } catch (e) {
      entries.push({
        path: relDir ?? Buffer.from('.'),
        size: 0,
        modifiedUs: null,
        problem: { status: 'failed', reason: `directory could not be read (${errorCode(e)})` },
      });
      return;
    }
    const subdirs: Buffer[] = [];
    await Promise.all(
      dirents.map(async (d) => {
        const rel = relDir ? Buffer.concat([relDir, SLASH, d.name]) : Buffer.from(d.name);
        const abs = Buffer.concat([rootBytes, SLASH, rel]);
        const wanted = matches(displayPath(rel));
        if (d.isDirectory()) {
          subdirs.push(rel);
        } else if (d.isFile()) {
          if (wanted) entries.push(await regularFile(rel, abs));
        } else if (d.isSymbolicLink()) {
          const target = await followSymlink(abs, rootBytes);
          if ('problem' in target) {
            if (wanted || target.isDirectory)
              entries.push({ path: rel, size: 0, modifiedUs: null, problem: target.problem });
          } else if (target.stats.isDirectory()) {
            if (!visited.has(inodeKey(target.stats))) subdirs.push(rel);
          } else if (wanted) {
            entries.push(
              target.stats.isFile()
                ? { path: rel, size: target.stats.size, modifiedUs: micros(target.stats), problem: null }
                : { path: rel, size: 0, modifiedUs: null, problem: notRegular(target.stats) },
            );
          }
        } else if (wanted) {
          entries.push({
            path: rel,
            size: 0,
            modifiedUs: null,
            problem: { status: 'failed', reason: `not a regular file (${direntKind(d)})` },
          });
        }
      }),
    );
    // Sequential over subdirectories: a corpus of millions of files must not open thousands of directories at once.
    subdirs.sort(Buffer.compare);
    for (const sub of subdirs) {
      const s = await stat(Buffer.concat([rootBytes, SLASH, sub])).catch(() => null);
      if (s) {
        const key = inodeKey(s);
        if (visited.has(key)) continue;
        visited.add(key);
      }
      await walk(sub);
    }
  };

  await walk(null);
  entries.sort((a, b) => Buffer.compare(a.path, b.path));
  return { root, entries };
}

async function regularFile(rel: Buffer, abs: Buffer): Promise<CorpusEntry> {
  try {
    const stats = await stat(abs);
    return { path: rel, size: stats.size, modifiedUs: micros(stats), problem: null };
  } catch (e) {
    return {
      path: rel,
      size: 0,
      modifiedUs: null,
      problem: { status: 'failed', reason: `file could not be read (${errorCode(e)})` },
    };
  }
}

/** mtime in whole microseconds: a float of milliseconds carries them exactly enough, and the same stat rounds the same. */
function micros(stats: Stats): number {
  return Math.round(stats.mtimeMs * 1000);
}

type SymlinkTarget = { stats: Stats } | { problem: EntryProblem; isDirectory: boolean };

/**
 * A symlink is followed only when its real path stays inside the root: a corpus directory is not a licence to read
 * whatever a link points at (/etc, another tenant's volume). Links that lead out are recorded, never read.
 */
async function followSymlink(abs: Buffer, root: Buffer): Promise<SymlinkTarget> {
  let real: Buffer;
  try {
    real = await realpath(abs, { encoding: 'buffer' });
  } catch (e) {
    const code = errorCode(e);
    const reason =
      code === 'ENOENT'
        ? DANGLING_SYMLINK_REASON
        : code === 'ELOOP'
          ? 'symlink loop'
          : `symlink could not be resolved (${code})`;
    return { problem: { status: 'failed', reason }, isDirectory: false };
  }
  let stats: Stats;
  try {
    stats = await stat(real);
  } catch (e) {
    return {
      problem: { status: 'failed', reason: `symlink target could not be read (${errorCode(e)})` },
      isDirectory: false,
    };
  }
  if (!isInside(real, root)) {
    return { problem: { status: 'skipped', reason: OUTSIDE_ROOT_REASON }, isDirectory: stats.isDirectory() };
  }
  return { stats };
}

export const OUTSIDE_ROOT_REASON = 'symlink leads outside the corpus root; not followed';

/** Whether `real` is `root` or lies under it (a byte comparison: `/corpus-other` is not inside `/corpus`). */
export function isInside(real: Buffer, root: Buffer): boolean {
  if (real.equals(root)) return true;
  const prefix = root[root.length - 1] === SLASH[0] ? root : Buffer.concat([root, SLASH]);
  return real.length > prefix.length && real.subarray(0, prefix.length).equals(prefix);
}

export function notRegular(s: Stats): EntryProblem {
  const kind = s.isFIFO()
    ? 'a FIFO'
    : s.isSocket()
      ? 'a socket'
      : s.isCharacterDevice()
        ? 'a character device'
        : s.isBlockDevice()
          ? 'a block device'
          : 'an unknown kind of entry';
  return { status: 'failed', reason: `not a regular file (${kind})` };
}

function direntKind(d: Dirent<Buffer>): string {
  return d.isFIFO()
    ? 'a FIFO'
    : d.isSocket()
      ? 'a socket'
      : d.isCharacterDevice()
        ? 'a character device'
        : d.isBlockDevice()
          ? 'a block device'
          : 'an unknown kind of entry';
}

function inodeKey(s: Stats): string {
  return `${s.dev}:${s.ino}`;
}

export const DANGLING_SYMLINK_REASON = 'symlink target does not exist (dangling symlink)';

/** Why opening `abs` failed, in the words the scan uses: a runner reopening a dangling link says the same thing. */
export async function unreadableReason(abs: Buffer, e: unknown): Promise<string> {
  const code = errorCode(e);
  if (
    code === 'ENOENT' &&
    (await lstat(abs).then(
      (s) => s.isSymbolicLink(),
      () => false,
    ))
  )
    return DANGLING_SYMLINK_REASON;
  if (code === 'ELOOP') return 'symlink loop';
  return `file could not be read (${code})`;
}

export function errorCode(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  return err?.code ?? (err instanceof Error ? err.message : String(e));
}
