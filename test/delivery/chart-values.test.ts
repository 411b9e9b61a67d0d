import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isMap, isScalar, parse, parseDocument, type YAMLMap } from 'yaml';
import { chartDir, repoRoot } from './support.js';

interface JsonSchema {
  type?: string;
  properties?: Record<string, JsonSchema>;
  additionalProperties?: boolean | JsonSchema;
  $ref?: string;
  definitions?: Record<string, JsonSchema>;
}

const valuesText = await readFile(path.join(chartDir, 'values.yaml'), 'utf8');
const values = parse(valuesText) as Record<string, unknown>;
const schema = JSON.parse(await readFile(path.join(chartDir, 'values.schema.json'), 'utf8')) as JsonSchema;

const resolve = (s: JsonSchema): JsonSchema =>
  s.$ref ? schema.definitions![s.$ref.replace('#/definitions/', '')]! : s;

/**
 * Values without a `# --` description: a key is documented by a comment line starting with `--` right above it;
 * a map without one must have each of its keys documented (a documented map, like `resources`, is one value).
 * The yaml parser attaches the comment above a nested map's first key to the map itself.
 */
function undocumented(map: YAMLMap, prefix = ''): string[] {
  return map.items.flatMap((pair, i) => {
    const key = isScalar(pair.key) ? String(pair.key.value) : '?';
    const comment =
      (isScalar(pair.key) ? pair.key.commentBefore : undefined) ?? (i === 0 ? map.commentBefore : undefined) ?? '';
    if (/^ ?-- /m.test(comment)) return [];
    if (isMap(pair.value)) return undocumented(pair.value, `${prefix}${key}.`);
    return [`${prefix}${key}`];
  });
}

/** Keys of values.yaml the schema does not know (it would refuse them) and schema properties values.yaml lacks. */
function drift(value: unknown, s: JsonSchema, prefix = ''): string[] {
  const node = resolve(s);
  if (!node.properties || typeof value !== 'object' || value === null || Array.isArray(value)) return [];
  const v = value as Record<string, unknown>;
  const unknownKeys = Object.keys(v)
    .filter((k) => !(k in node.properties!))
    .map((k) => `values.yaml has ${prefix}${k}, the schema does not`);
  const missing = Object.keys(node.properties)
    .filter((k) => !(k in v) && !(prefix === '' && k === 'global'))
    .map((k) => `the schema has ${prefix}${k}, values.yaml does not`);
  const nested = Object.entries(v).flatMap(([k, x]) =>
    node.properties![k] ? drift(x, node.properties![k]!, `${prefix}${k}.`) : [],
  );
  return [...unknownKeys, ...missing, ...nested];
}

describe("the chart's values", () => {
  it('describe every value with a `# --` comment', () => {
    const doc = parseDocument(valuesText);
    expect(undocumented(doc.contents as YAMLMap)).toEqual([]);
  });

  it('and values.schema.json name the same keys', () => {
    expect(drift(values, schema)).toEqual([]);
  });

  it('refuse unknown keys at every level the schema describes, so a typo fails the install instead of being ignored', () => {
    const open: string[] = [];
    const visit = (s: JsonSchema, p: string) => {
      const node = resolve(s);
      if (!node.properties) return;
      if (node.additionalProperties !== false) open.push(p || '(root)');
      for (const [k, child] of Object.entries(node.properties)) visit(child, `${p}${k}.`);
    };
    visit(schema, '');
    expect(open).toEqual([]);
  });
});

describe("the chart's version", () => {
  it("is the operator's (package.json), and so is the default image tag", async () => {
    const chart = parse(await readFile(path.join(chartDir, 'Chart.yaml'), 'utf8')) as {
      version: string;
      appVersion: string;
    };
    const pkg = JSON.parse(await readFile(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string };
    expect([chart.version, chart.appVersion]).toEqual([pkg.version, pkg.version]);
  });
});
