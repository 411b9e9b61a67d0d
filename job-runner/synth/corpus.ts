/**
 * A seeded synthetic corpus: songs filed under their mode, named after their key (so a reader can check the
 * estimated key by eye), e.g. `minor/f-sharp-minor-007.mid`.
 */
import { seededRandom } from './random.js';
import { generateSong, type SongOptions, type SongProfile, type SongSpec } from './song.js';

export interface CorpusFile {
  /** Relative path, '/'-separated. */
  path: string;
  bytes: Uint8Array;
  spec: SongSpec;
}

export interface CorpusOptions {
  files: number;
  seed: number;
  /** Passed to every song (e.g. a fixed size for a benchmark). */
  song?: SongOptions;
  /** The songs' profile (song.ts); default 'generated'. */
  profile?: SongProfile;
}

const TONIC_NAMES = ['c', 'c-sharp', 'd', 'e-flat', 'e', 'f', 'f-sharp', 'g', 'a-flat', 'a', 'b-flat', 'b'];

export function generateCorpus(options: CorpusOptions): CorpusFile[] {
  const random = seededRandom(options.seed);
  const files: CorpusFile[] = [];
  for (let i = 0; i < options.files; i++) {
    const { bytes, spec } = generateSong(random, { profile: options.profile, ...options.song });
    const name = `${TONIC_NAMES[spec.tonic]}-${spec.mode}-${String(i).padStart(3, '0')}.mid`;
    files.push({ path: `${spec.mode}/${name}`, bytes, spec });
  }
  return files;
}
