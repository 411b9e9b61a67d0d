import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { displayPath } from '../../../job-runner/db/paths.js';
import { listCorpus, type CorpusEntry, type Listing } from '../../../job-runner/runner/list.js';

/** A whole walk in byte order (the walk itself does not sort: the database does). */
function walked(listing: Listing): CorpusEntry[] {
  return [...listing.walk()].sort((a, b) => Buffer.compare(a.path, b.path));
}

/** Entries as [display path, size, status, reason] rows, for diff-style assertions. */
function rows(entries: CorpusEntry[]): [string, number, string, string | null][] {
  return entries.map((e) => [displayPath(e.path), e.size, e.problem?.status ?? 'pending', e.problem?.reason ?? null]);
}

describe('listCorpus', () => {
  let tmp: string;
  let root: string;
  const latin1Name = Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x2e, 0x6d, 0x69, 0x64]); // "café.mid" in Latin-1

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'mco-list-'));
    root = path.join(tmp, 'corpus');
    await mkdir(path.join(root, 'b/deep'), { recursive: true });
    await mkdir(path.join(root, 'a'), { recursive: true });
    await writeFile(path.join(root, 'a/one.mid'), 'x'.repeat(10));
    await writeFile(path.join(root, 'a/TWO.MID'), 'x'.repeat(3));
    await writeFile(path.join(root, 'a/notes.txt'), 'not midi');
    await writeFile(path.join(root, 'b/deep/three.midi'), 'x'.repeat(7));
    await writeFile(Buffer.concat([Buffer.from(`${root}/`), latin1Name]), 'x'.repeat(5));
    // A directory whose name looks like a MIDI file is walked, not read.
    await mkdir(path.join(root, 'folder.mid'));
    await writeFile(path.join(root, 'folder.mid/inner.mid'), 'x');
    // Inside the root: followed. Outside: recorded, never read.
    await symlink(path.join(root, 'a/one.mid'), path.join(root, 'link-inside.mid'));
    await writeFile(path.join(tmp, 'secret.mid'), 'outside');
    await symlink(path.join(tmp, 'secret.mid'), path.join(root, 'link-outside.mid'));
    await mkdir(path.join(tmp, 'elsewhere'));
    await writeFile(path.join(tmp, 'elsewhere/x.mid'), 'outside');
    await symlink(path.join(tmp, 'elsewhere'), path.join(root, 'dir-outside'));
    // A sibling whose name starts like the root's is still outside it.
    await mkdir(path.join(tmp, 'corpus-other'));
    await writeFile(path.join(tmp, 'corpus-other/y.mid'), 'outside');
    await symlink(path.join(tmp, 'corpus-other/y.mid'), path.join(root, 'link-prefix.mid'));
    // Unreadable entries: the tests run as root, where chmod 000 does not stop reads, so use kinds that cannot be read.
    await symlink(path.join(root, 'gone.mid'), path.join(root, 'dangling.mid'));
    execFileSync('mkfifo', [path.join(root, 'pipe.mid')]);
    // A loop back up the tree must not be walked forever.
    await symlink('..', path.join(root, 'b/up'));
  });
  afterAll(async () => rm(tmp, { recursive: true, force: true }));

  it('lists matching files with sizes, and records every entry it will not read with a reason', async () => {
    const listing = await listCorpus({ root });
    expect(rows(walked(listing))).toEqual([
      ['a/TWO.MID', 3, 'pending', null],
      ['a/one.mid', 10, 'pending', null],
      ['b/deep/three.midi', 7, 'pending', null],
      ['caf\\xe9.mid', 5, 'pending', null],
      ['dangling.mid', 0, 'failed', 'symlink target does not exist (dangling symlink)'],
      ['dir-outside', 0, 'skipped', 'symlink leads outside the corpus root; not followed'],
      ['folder.mid/inner.mid', 1, 'pending', null],
      ['link-inside.mid', 10, 'pending', null],
      ['link-outside.mid', 0, 'skipped', 'symlink leads outside the corpus root; not followed'],
      ['link-prefix.mid', 0, 'skipped', 'symlink leads outside the corpus root; not followed'],
      ['pipe.mid', 0, 'failed', 'not a regular file (a FIFO)'],
    ]);
  });

  it('keeps a name that is not UTF-8 as its exact bytes', async () => {
    const listing = await listCorpus({ root });
    expect(walked(listing).some((e) => e.path.equals(latin1Name))).toBe(true);
  });

  it('applies include globs to the relative path, but always reports a directory link it did not follow', async () => {
    const listing = await listCorpus({ root, include: ['a/**'] });
    expect(rows(walked(listing)).map((r) => r[0])).toEqual(['a/TWO.MID', 'a/notes.txt', 'a/one.mid', 'dir-outside']);
  });

  it('gives the same listing twice', async () => {
    const [x, y] = [await listCorpus({ root }), await listCorpus({ root })];
    expect(rows([...x.walk()])).toEqual(rows([...y.walk()]));
  });

  it('refuses a root that is not a directory', async () => {
    await expect(listCorpus({ root: path.join(root, 'a/one.mid') })).rejects.toThrow(/not a directory/);
  });

  it('yields entries while it walks, so the listing is never held: a file made after the first entry is in it', async () => {
    const tree = path.join(tmp, 'streamed');
    await mkdir(path.join(tree, 'a'), { recursive: true });
    await mkdir(path.join(tree, 'z'));
    await writeFile(path.join(tree, 'a/first.mid'), 'x');
    const walk = (await listCorpus({ root: tree })).walk();
    const first = walk.next();
    expect(first.done ? null : displayPath(first.value.path)).toBe('a/first.mid');
    // z/ is walked after a/ (subdirectories by name): a walker that had listed everything before yielding misses it.
    await writeFile(path.join(tree, 'z/late.mid'), 'xy');
    expect(rows([...walk])).toEqual([['z/late.mid', 2, 'pending', null]]);
  });
});
