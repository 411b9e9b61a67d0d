#!/usr/bin/env node
/**
 * Writes the MidiCorpus CRD as YAML: `node dist/controller/api/gen-crd.js [out.yaml ...]` (no argument: stdout).
 * Used to refresh manifests/crd/ and the chart's crds/ after a schema change.
 */
import { writeFileSync } from 'node:fs';
import { midiCorpusCRDYaml } from './crd.js';

const yaml = midiCorpusCRDYaml();
const outputs = process.argv.slice(2);
if (outputs.length === 0) process.stdout.write(yaml);
for (const path of outputs) writeFileSync(path, yaml);
