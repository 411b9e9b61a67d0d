import { randomBytes } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { splitTracks } from '../analysis/split.js';
import type { SplitTrackFile } from './protocol.js';

/**
 * Writing split tracks (--split-output): `<dir>/<ab>/<sha256 of the source>/track-<NN>.mid`.
 *
 * Named after the source file's content hash rather than its path: source names need not be valid anywhere else
 * (non-UTF-8, very deep), identical files share one set of outputs, and a rerun writes the very same paths. Each file
 * is written to a temporary name and renamed into place, so a runner killed mid-write never leaves a truncated
 * track under its final name.
 */

export interface SplitWriteResult {
  files: SplitTrackFile[];
  /** Why the tracks could not be split, as a warning for the file's record (its analysis still stands). */
  warning: string | null;
}

export async function writeSplitTracks(
  bytes: Uint8Array,
  sourceSha256: string,
  outputDir: string,
): Promise<SplitWriteResult> {
  const split = splitTracks(bytes);
  if (!split.ok) return { files: [], warning: `tracks not split: ${split.reason}` };
  if (split.tracks.length === 0) return { files: [], warning: null };
  const dir = path.resolve(outputDir, sourceSha256.slice(0, 2), sourceSha256);
  await mkdir(dir, { recursive: true });
  const files: SplitTrackFile[] = [];
  for (const track of split.tracks) {
    const outputPath = path.join(dir, `track-${String(track.trackIndex).padStart(2, '0')}.mid`);
    const temporary = `${outputPath}.${randomBytes(6).toString('hex')}.tmp`;
    await writeFile(temporary, track.bytes);
    await rename(temporary, outputPath);
    files.push({ trackIndex: track.trackIndex, outputPath, size: track.bytes.length, sha256: track.sha256 });
  }
  return { files, warning: null };
}
