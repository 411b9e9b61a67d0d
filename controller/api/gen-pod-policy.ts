#!/usr/bin/env node
/**
 * Writes the pod policy as YAML: `node dist/controller/api/gen-pod-policy.js <manifests dir> <chart files dir>`.
 * Used to refresh manifests/policy/ and the chart's files/policy/ after a change to pod-policy.ts.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { podPolicyBindingYaml, podPolicyYaml } from './pod-policy.js';

const [manifests, chartFiles] = process.argv.slice(2);
if (!manifests || !chartFiles) throw new Error('usage: gen-pod-policy <manifests/policy> <chart files/policy>');
for (const dir of [manifests, chartFiles])
  writeFileSync(path.join(dir, 'validating-admission-policy.yaml'), podPolicyYaml());
writeFileSync(path.join(manifests, 'validating-admission-policy-binding.yaml'), podPolicyBindingYaml());
