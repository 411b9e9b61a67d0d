import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';
import { repoRoot } from './support.js';

/**
 * `npm run lint` refuses an import across the trees' boundaries (eslint.config.js, docs/architecture.md): each case
 * is a file that does not exist, linted from memory with the project's own configuration.
 */
const eslint = new ESLint({ cwd: repoRoot });

async function boundaryErrors(filePath: string, source: string): Promise<string[]> {
  const [result] = await eslint.lintText(source, { filePath });
  expect(result!.messages.filter((m) => m.fatal)).toEqual([]); // a file that does not parse is checked for nothing
  return result!.messages.filter((m) => m.ruleId === 'project/import-boundaries').map((m) => m.message);
}

describe('the import boundaries', () => {
  it.each<[string, string, string]>([
    ['the controller imports the runner', 'controller/plan/x.ts', "import { a } from '../../job-runner/pool/pool.js';"],
    [
      'the runner imports the controller',
      'job-runner/local/x.ts',
      "import { a } from '../../controller/plan/names.js';",
    ],
    ['runtime/ imports a planner', 'controller/runtime/x.ts', "import { a } from '../plan/names.js';"],
    ['runtime/ imports the reconcile', 'controller/runtime/x.ts', "import { a } from '../reconcile/observe.js';"],
    ['runtime/ imports the API types', 'controller/runtime/x.ts', "import { a } from '../api/v1alpha1/midicorpus.js';"],
    ['runtime/ imports the budget', 'controller/runtime/x.ts', "import { a } from '../budget/fair-share.js';"],
    ['the contract imports the runner', 'contract/x.ts', "import { a } from '../job-runner/pool/pool.js';"],
    ['the contract re-exports the controller', 'contract/x.ts', "export { a } from '../controller/kube.js';"],
    ['common/ imports the contract', 'common/x.ts', "import { a } from '../contract/exit-codes.js';"],
    ['the runner imports the CLI lazily', 'job-runner/x.ts', "export const a = await import('../cli/main.js');"],
  ])('refuses %s', async (_name, filePath, line) => {
    expect(await boundaryErrors(filePath, `${line}\nexport const b = a;\n`)).toHaveLength(1);
  });

  it.each<[string, string, string]>([
    ['the contract imports common/', 'contract/x.ts', "import { a } from '../common/clock.js';"],
    ['the controller imports the contract', 'controller/plan/x.ts', "import { a } from '../../contract/shards.js';"],
    ['runtime/ imports common/ and itself', 'controller/runtime/x.ts', "import { a } from './errors.js';"],
    ['the CLI imports anything', 'cli/commands/x.ts', "import { a } from '../../controller/plan/names.js';"],
    ['a test imports anything', 'test/x.test.ts', "import { a } from '../job-runner/pool/pool.js';"],
    ['a package is never restricted', 'common/x.ts', "import { a } from 'pino';"],
  ])('allows %s', async (_name, filePath, line) => {
    expect(await boundaryErrors(filePath, `${line}\nexport const b = a;\n`)).toEqual([]);
  });

  it('says which trees the file may import', async () => {
    expect(await boundaryErrors('controller/runtime/x.ts', "export { a } from '../kube.js';\n")).toEqual([
      'controller/runtime/ may import only controller/runtime/, contract/, common/, not controller/kube.js (IMPORT_BOUNDARIES, docs/architecture.md)',
    ]);
  });
});
