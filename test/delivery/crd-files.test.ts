import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { midiCorpusCRDYaml } from '../../controller/api/crd.js';
import { chartDir, manifestsDir } from './support.js';

// The CRD has one source of truth, controller/api/; the YAML files are its committed output (npm run gen:crd).
const generatedFiles = [
  path.join(manifestsDir, 'crd', 'midi.corpus.dev_midicorpora.yaml'),
  path.join(chartDir, 'files', 'crds', 'midi.corpus.dev_midicorpora.yaml'),
];

describe('the committed CRD files', () => {
  it.each(generatedFiles)(
    "%s is exactly the generator's output (run `npm run gen:crd` after a schema change)",
    async (file) => {
      expect(await readFile(file, 'utf8')).toBe(midiCorpusCRDYaml());
    },
  );
});
