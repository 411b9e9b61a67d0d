import { opendirSync, realpathSync, statSync, type Dir, type Dirent, type Stats } from 'node:fs';
import { lstat, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import picomatch from 'picomatch';
import { displayPath } from '../db/paths.js';

/**
 * Listing a corpus directory: which files a scan records, with their sizes, and which entries it records as problems
 * instead (symlinks leading out of the root, things that are not regular files, directories it cannot read).
 *
 * Names are kept as the file system's bytes: a corpus gathered from old archives has names in Latin-1 or Shift-JIS,
 * and a name decoded to a JS string and encoded back is a different name, which could not be opened again.
 *
 * The walk is a generator, so a scan holds one directory's subdirectory names per level and never the listing: a
 * million files cost what a thousand do. It is synchronous, one stat at a time like find(1): on a local or in-memory
 * file system a stat takes a microsecond or two, and a trip through libuv's thread pool per file took twice the CPU
 * (measured on 100 000 files), CPU the database needs too when it shares the machine. On a network file system each
 * stat waits for a round trip, as find's do. The walk still gives way whenever the COPY stream to Postgres is full.
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
  /**
   * Walks the tree (again on every call), yielding each entry as it is found. Order: depth first, a directory's files
   * before its subdirectories, files in the order the file system gives them, subdirectories by name bytes. Not
   * sorted: the database sorts (recordScan plans shards in path order), and sorting here would hold the listing.
   */
  walk(): Generator<CorpusEntry>;
}

const SLASH = Buffer.from('/');

/** Entries read from a directory at a time: the most of one directory the walk holds, however large it is. */
const DIRENT_BUFFER = 256;

/** Resolves and checks the root now (so a bad root fails before anything is recorded); walking waits for walk(). */
export async function listCorpus(options: ListOptions): Promise<Listing> {
  const root = await realpath(path.resolve(options.root));
  const rootStat = await stat(root);
  if (!rootStat.isDirectory()) throw new Error(`corpus root ${options.root} is not a directory`);
  const matcher = matcherFor(options.include?.length ? options.include : DEFAULT_INCLUDE);
  return { root, walk: () => walkTree(Buffer.from(root), rootStat, matcher) };
}

/** Whether a path is wanted, given its directory's display path (with its '/') and its name's. */
type Matcher = (dirDisplay: string, nameDisplay: string) => boolean;

/**
 * Globs that are each `**` then `/` then a pattern without a slash (the default ones) ask only about the name: matching
 * the name alone saves building and matching every full path, a tenth of the walk's time. `**` never matches `.` or
 * `..`, which a walk never yields, so the two agree; any other glob is matched against the whole relative path.
 */
function matcherFor(globs: string[]): Matcher {
  const options = { nocase: true, dot: true };
  if (globs.every((g) => /^\*\*\/[^/]+$/.test(g))) {
    const byName = picomatch(
      globs.map((g) => g.slice(3)),
      options,
    );
    return (_dir, name) => byName(name);
  }
  const byPath = picomatch(globs, options);
  return (dir, name) => byPath(dir + name);
}

function* walkTree(rootBytes: Buffer, rootStat: Stats, matches: Matcher): Generator<CorpusEntry> {
  // Directories already walked, by device and inode: a symlink back up the tree must not loop forever.
  const visited = new Set<string>([inodeKey(rootStat)]);
  // Directories still to walk, the next one last: popping gives the same order as walking each subdirectory in turn.
  const pending: (Buffer | null)[] = [null];
  while (pending.length > 0) {
    const relDir = pending.pop()!;
    const absDir = relDir ? Buffer.concat([rootBytes, SLASH, relDir]) : rootBytes;
    if (relDir) {
      const s = statOrNull(absDir);
      if (s) {
        const key = inodeKey(s);
        if (visited.has(key)) continue;
        visited.add(key);
      }
    }
    const unreadable = (e: unknown): CorpusEntry => ({
      path: relDir ?? Buffer.from('.'),
      size: 0,
      modifiedUs: null,
      problem: { status: 'failed', reason: `directory could not be read (${errorCode(e)})` },
    });
    let dir: Dir;
    try {
      // Node gives Buffer names for encoding 'buffer' here as readdir does; @types/node only lists string encodings.
      dir = opendirSync(absDir, { encoding: 'buffer' as BufferEncoding, bufferSize: DIRENT_BUFFER });
    } catch (e) {
      yield unreadable(e);
      continue;
    }
    // A name's display form is its directory's plus its own: UTF-8 sequences never span a '/'.
    const dirDisplay = relDir ? `${displayPath(relDir)}/` : '';
    const relPrefix = relDir ? Buffer.concat([relDir, SLASH]) : null;
    const absPrefix = Buffer.concat([absDir, SLASH]);
    const subdirs: Buffer[] = [];
    try {
      for (;;) {
        let d: Dirent<Buffer> | null;
        try {
          d = dir.readSync() as Dirent<Buffer> | null;
        } catch (e) {
          yield unreadable(e);
          break;
        }
        if (d === null) break;
        const rel = relPrefix ? Buffer.concat([relPrefix, d.name]) : d.name;
        const wanted = matches(dirDisplay, displayPath(d.name));
        if (d.isDirectory()) {
          subdirs.push(rel);
        } else if (d.isFile()) {
          if (wanted) yield regularFile(rel, Buffer.concat([absPrefix, d.name]));
        } else if (d.isSymbolicLink()) {
          const target = followSymlink(Buffer.concat([absPrefix, d.name]), rootBytes);
          if ('problem' in target) {
            if (wanted || target.isDirectory) yield { path: rel, size: 0, modifiedUs: null, problem: target.problem };
          } else if (target.stats.isDirectory()) {
            if (!visited.has(inodeKey(target.stats))) subdirs.push(rel);
          } else if (wanted) {
            yield target.stats.isFile()
              ? { path: rel, size: target.stats.size, modifiedUs: micros(target.stats), problem: null }
              : { path: rel, size: 0, modifiedUs: null, problem: notRegular(target.stats) };
          }
        } else if (wanted) {
          yield {
            path: rel,
            size: 0,
            modifiedUs: null,
            problem: { status: 'failed', reason: `not a regular file (${direntKind(d)})` },
          };
        }
      }
    } finally {
      dir.closeSync();
    }
    subdirs.sort(Buffer.compare);
    for (let i = subdirs.length - 1; i >= 0; i--) pending.push(subdirs[i]!);
  }
}

function statOrNull(abs: Buffer): Stats | null {
  try {
    return statSync(abs);
  } catch {
    return null;
  }
}

function regularFile(rel: Buffer, abs: Buffer): CorpusEntry {
  try {
    const stats = statSync(abs);
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
function followSymlink(abs: Buffer, root: Buffer): SymlinkTarget {
  let real: Buffer;
  try {
    // The native realpath(3), as fs/promises' realpath uses: the JS one walks the path a component at a time.
    real = realpathSync.native(abs, { encoding: 'buffer' });
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
    stats = statSync(real);
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
