import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const main = new URL('../../../dist/cli/main.js', import.meta.url).pathname;

describe('midi-corpus plan (the built CLI)', () => {
  it('prints one JSON object with shards, the per-pod pool, parallelism and peak connections', async () => {
    const { stdout } = await run('node', [
      main,
      'plan',
      '--files',
      '3000000',
      '--files-per-shard',
      '1000',
      '--cpu',
      '2',
      '--max-connections',
      '100',
      '--reserved',
      '10',
      '--json',
    ]);
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({
      shards: 3000,
      perPod: { max: 3, warm: 3 },
      parallelism: 29,
      peakConnections: 87,
    });
  });

  it('accepts millicores and a shard count, and prints a table without --json', async () => {
    const { stdout } = await run('node', [
      main,
      'plan',
      '--files',
      '100',
      '--shards',
      '4',
      '--cpu-millis',
      '500',
      '--max-connections',
      '20',
    ]);
    expect(stdout).toMatch(/^shards\s+4$/m);
    expect(stdout).toMatch(/^parallelism\s+4 pods$/m);
  });

  it('refuses a missing CPU request with a usage error', async () => {
    await expect(
      run('node', [main, 'plan', '--files', '1', '--shards', '1', '--max-connections', '20']),
    ).rejects.toMatchObject({ stderr: expect.stringMatching(/--cpu/) });
  });
});
