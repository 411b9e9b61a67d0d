// @ts-check
import path from 'node:path';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * Which project trees a tree may import, drawn in docs/architecture.md. The first entry whose tree holds the linted
 * file applies, so the more specific trees come first; cli/, bench/ and test/ are not listed and may import anything.
 * Only relative imports are checked (resolved against the importing file): packages and node: modules are free.
 */
const IMPORT_BOUNDARIES = [
  { tree: 'common', mayImport: ['common'] },
  { tree: 'contract', mayImport: ['contract', 'common'] },
  { tree: 'controller/runtime', mayImport: ['controller/runtime', 'contract', 'common'] },
  { tree: 'controller', mayImport: ['controller', 'contract', 'common'] },
  { tree: 'job-runner', mayImport: ['job-runner', 'contract', 'common'] },
];

const repoRoot = import.meta.dirname;

/** Whether `file` (absolute) lies inside the repository directory `tree`. */
function inTree(file, tree) {
  const rel = path.relative(path.join(repoRoot, tree), file);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

/** @type {import('eslint').Rule.RuleModule} */
const importBoundaries = {
  meta: {
    type: 'problem',
    docs: { description: 'Keeps each project tree to the trees it may import (IMPORT_BOUNDARIES)' },
    messages: {
      outside: '{{tree}}/ may import only {{allowed}}, not {{target}} (IMPORT_BOUNDARIES, docs/architecture.md)',
    },
    schema: [],
  },
  create(context) {
    const boundary = IMPORT_BOUNDARIES.find((b) => inTree(context.filename, b.tree));
    if (!boundary) return {};
    /** @param {import('estree').Node | null | undefined} source */
    const check = (source) => {
      if (source?.type !== 'Literal' || typeof source.value !== 'string' || !source.value.startsWith('.')) return;
      const target = path.resolve(path.dirname(context.filename), source.value);
      if (boundary.mayImport.some((tree) => inTree(target, tree))) return;
      context.report({
        node: source,
        messageId: 'outside',
        data: {
          tree: boundary.tree,
          allowed: boundary.mayImport.map((t) => `${t}/`).join(', '),
          target: path.relative(repoRoot, target),
        },
      });
    };
    return {
      ImportDeclaration: (node) => check(node.source),
      ExportNamedDeclaration: (node) => check(node.source),
      ExportAllDeclaration: (node) => check(node.source),
      ImportExpression: (node) => check(node.source),
    };
  },
};

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'charts/**', 'manifests/**', 'test/cluster/**/*.go', 'bench/results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        URL: 'readonly',
      },
    },
    plugins: { project: { rules: { 'import-boundaries': importBoundaries } } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-constant-condition': ['error', { checkLoops: false }],
      'project/import-boundaries': 'error',
    },
  },
);
