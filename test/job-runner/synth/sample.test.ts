import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeSampleCorpus } from '../../../job-runner/synth/sample.js';

const SAMPLE = join(import.meta.dirname, '../../../examples/sample-corpus');

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

describe('writeSampleCorpus', () => {
  it('writes exactly the committed sample corpus for its documented command (--files 30 --seed 1 --bad)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sample-corpus-'));
    try {
      const summary = await writeSampleCorpus(dir, { files: 30, seed: 1, bad: true });
      expect(summary).toMatchObject({ files: 30, badFiles: 14 });
      const written = await listFiles(dir);
      expect((await listFiles(SAMPLE)).filter((f) => f !== 'README.md')).toEqual(written);
      for (const file of written) {
        expect(Buffer.compare(await readFile(join(dir, file)), await readFile(join(SAMPLE, file))), file).toBe(0);
      }
      expect(summary.bytes).toBeLessThan(1_000_000);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
