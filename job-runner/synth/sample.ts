/** Writes a synthetic corpus to disk: the I/O half of `midi-corpus generate-sample`, callable from tests too. */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { badInputs } from './bad-inputs.js';
import { generateCorpus } from './corpus.js';

export interface SampleOptions {
  files: number;
  seed: number;
  /** Also write one file of each bad-input kind under `bad/`. */
  bad: boolean;
}

export interface SampleSummary {
  dir: string;
  /** Good files written. */
  files: number;
  /** Bad-input files written. */
  badFiles: number;
  bytes: number;
}

export async function writeSampleCorpus(dir: string, options: SampleOptions): Promise<SampleSummary> {
  const entries = generateCorpus({ files: options.files, seed: options.seed }).map((f) => ({
    path: f.path,
    bytes: f.bytes,
  }));
  const bad = options.bad ? badInputs().map((b) => ({ path: `bad/${b.name}`, bytes: b.bytes })) : [];
  let bytes = 0;
  for (const entry of [...entries, ...bad]) {
    const target = join(dir, ...entry.path.split('/'));
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, entry.bytes);
    bytes += entry.bytes.length;
  }
  return { dir, files: entries.length, badFiles: bad.length, bytes };
}
