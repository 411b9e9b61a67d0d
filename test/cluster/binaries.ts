import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BUILD_SCRIPT = path.join(REPO_ROOT, 'test', 'cluster', 'build.sh');
const NODE_DEPS_SCRIPT = path.join(REPO_ROOT, 'test', 'cluster', 'node-deps.sh');
/** Where Go's own tarball installs it; build.sh looks there too when `go` is not on PATH (non-login shells). */
const GO_TARBALL_PATH = '/usr/local/go/bin/go';

/**
 * Whether this machine can build and run the test control plane. Cluster tests skip (loudly) where it cannot,
 * except under CI=true, where a missing toolchain is a failure: CI must never pass by skipping them.
 */
export function clusterSupport(): { ok: true } | { ok: false; reason: string } {
  if (process.env.MIDI_CORPUS_K8S_BIN) return { ok: true };
  const found = ['go', GO_TARBALL_PATH].some((go) => spawnSync(go, ['version'], { stdio: 'ignore' }).status === 0);
  if (!found) return { ok: false, reason: 'Go is not installed (needed to build the control plane)' };
  if (process.platform !== 'linux') return { ok: false, reason: 'real nodes need Linux namespaces and cgroups' };
  if (process.getuid?.() !== 0)
    return { ok: false, reason: 'real nodes need root (network namespaces, cgroups, mounts)' };
  return { ok: true };
}

let building: Promise<string> | undefined;

/**
 * The directory holding etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy and helm: built by
 * test/cluster/build.sh on first use (minutes), then reused from the cache. MIDI_CORPUS_K8S_BIN overrides it.
 */
export function ensureClusterBinaries(): Promise<string> {
  const preset = process.env.MIDI_CORPUS_K8S_BIN;
  if (preset) return Promise.resolve(preset);
  building ??= new Promise<string>((resolve, reject) => {
    // Progress goes straight to our stderr so a cold build (many minutes) visibly moves.
    const child = spawn('bash', [BUILD_SCRIPT], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      const dir = out.trim().split('\n').pop() ?? '';
      if (code === 0 && dir) resolve(dir);
      else reject(new Error(`test/cluster/build.sh failed with exit code ${code}`));
    });
  });
  building.catch(() => (building = undefined));
  return building;
}

let installing: Promise<void> | undefined;

/** containerd, runc, the CNI plugins and the rest of a node's runtime: installed by node-deps.sh on first use. */
export function ensureNodeRuntime(): Promise<void> {
  installing ??= new Promise<void>((resolve, reject) => {
    const child = spawn('bash', [NODE_DEPS_SCRIPT], { stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`test/cluster/node-deps.sh failed with exit code ${code}`)),
    );
  });
  installing.catch(() => (installing = undefined));
  return installing;
}
