import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { midiCorpusCRDYaml } from '../../controller/api/crd.js';
import { podPolicyBindingYaml, podPolicyYaml } from '../../controller/api/pod-policy.js';
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

// The pod policy likewise: controller/api/pod-policy.ts, committed as YAML by `npm run gen:pod-policy`.
describe('the committed pod policy files', () => {
  it.each([
    [path.join(manifestsDir, 'policy', 'validating-admission-policy.yaml'), podPolicyYaml()],
    [path.join(chartDir, 'files', 'policy', 'validating-admission-policy.yaml'), podPolicyYaml()],
    [path.join(manifestsDir, 'policy', 'validating-admission-policy-binding.yaml'), podPolicyBindingYaml()],
  ])("%s is exactly the generator's output (run `npm run gen:pod-policy` after a change)", async (file, generated) => {
    expect(await readFile(file, 'utf8')).toBe(generated);
  });
});
