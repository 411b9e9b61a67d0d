import { describe, expect, it } from 'vitest';
import { containerArgv, expandVars, lookupImage, projectImages, shellImages } from './images.js';

describe('lookupImage', () => {
  const table = { ...projectImages('/repo'), ...shellImages, 'ghcr.io/midi-corpus/midi-corpus-operator:special': { entrypoint: ['x'] } };

  it('matches any tag of the project image to the built CLI, the work tree standing at /app as in the real image', () => {
    expect(lookupImage(table, 'ghcr.io/midi-corpus/midi-corpus-operator:0.1.0')).toEqual({
      entrypoint: [process.execPath, '/app/dist/cli/main.js'],
      files: [{ source: '/repo', target: '/app' }],
    });
  });

  it('prefers an exact entry over a prefix', () => {
    expect(lookupImage(table, 'ghcr.io/midi-corpus/midi-corpus-operator:special')?.entrypoint).toEqual(['x']);
  });

  it('knows nothing else', () => {
    expect(lookupImage(table, 'docker.io/library/busybox:1.36')).toBeUndefined();
  });
});

describe('containerArgv', () => {
  const image = { entrypoint: ['node', 'main.js'], cmd: ['--help'] };
  const env = { SHARD: '3' };
  it.each([
    { name: 'neither: entrypoint and image CMD', container: {}, want: ['node', 'main.js', '--help'] },
    { name: 'args replace CMD', container: { args: ['run-shard', '--shard', '$(SHARD)'] }, want: ['node', 'main.js', 'run-shard', '--shard', '3'] },
    { name: 'command replaces entrypoint and drops CMD', container: { command: ['/bin/true'] }, want: ['/bin/true'] },
    { name: 'command and args', container: { command: ['sh', '-c'], args: ['echo $(SHARD)'] }, want: ['sh', '-c', 'echo 3'] },
  ])('$name', ({ container, want }) => {
    expect(containerArgv(image, container, env)).toEqual(want);
  });
});

describe('expandVars', () => {
  it.each([
    ['$(A)-$(B)', 'x-$(B)'],
    ['$$(A)', '$(A)'],
    ['$A $(A', '$A $(A'],
    ['cost: 5$', 'cost: 5$'],
  ])('%s becomes %s', (input, want) => {
    expect(expandVars(input, { A: 'x' })).toBe(want);
  });
});
