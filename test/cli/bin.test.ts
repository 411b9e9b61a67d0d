import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import pkg from '../../package.json' with { type: 'json' };

const run = promisify(execFile);

describe('the midi-corpus bin', () => {
  // The README's quick start runs `npx midi-corpus …` right after `npm run build`: npx executes package.json's bin
  // file directly, so the build must leave it executable (tsc writes 0644, and a fresh clone has no older file).
  it('runs through npx after npm run build, as the quick start does', async () => {
    const { stdout } = await run('npx', ['--no-install', 'midi-corpus', '--version']);
    expect(stdout.trim()).toBe(pkg.version);
  });
});
