import { execFile } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from './binaries.js';
import { cacheRoot, type NodeImage } from './node-images.js';

const exec = promisify(execFile);
const BUILD = path.join(REPO_ROOT, 'image', 'build.sh');

/**
 * The project's images as `npm run image` builds them (image/build.sh: offline, from the Dockerfile, cached by
 * content), as docker-archives for the nodes' containerd: `app` is the controller and runner image the chart and the
 * manifests name, `pause` the pod sandbox image. Each archive is named after the image id, so an unchanged image is
 * exported once and a rebuilt one gets a new file.
 */
export async function projectImage(which: 'app' | 'pause' = 'app'): Promise<NodeImage> {
  const flags = which === 'pause' ? ['--pause'] : [];
  const build = async (extra: string[]) =>
    (await exec('bash', [BUILD, ...flags, ...extra], { maxBuffer: 64 << 20 })).stdout.trim().split('\n').pop()!;
  const ref = await build([]);
  const id = (await exec('buildah', ['inspect', '--type', 'image', '--format', '{{.FromImageID}}', ref])).stdout.trim();
  const archive = path.join(cacheRoot(), 'images', `${which}-${id.replace(/^sha256:/, '').slice(0, 16)}.tar`);
  if (!existsSync(archive)) {
    mkdirSync(path.dirname(archive), { recursive: true });
    await build(['--export', archive]);
  }
  return { ref, archive };
}
