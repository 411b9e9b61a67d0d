import { chmodSync, closeSync, existsSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { V1Container, V1DownwardAPIVolumeFile, V1KeyToPath, V1Pod, V1Volume } from '@kubernetes/client-node';
import { ContainerConfigError, fieldRefValue, resourceFieldValue, type NodeResources, type ObjectLookup } from './pod-env.js';

/** A bind mount from a directory or file on this machine to the path the container expects. */
export interface Mount {
  source: string;
  target: string;
  readOnly: boolean;
}

/**
 * The order to bind-mount a container's mounts in. Mounting over a target hides whatever lay below it, including
 * the sources of mounts not made yet: an emptyDir at /tmp would hide every source under the cluster directory (itself
 * under /tmp), so the termination-log file and the other volumes after it could no longer be found. So a mount whose
 * target contains another mount's source comes after that mount, unless its target also contains the other's target
 * (parents before children, as the kubelet nests mounts). Stable otherwise.
 */
export function mountOrder(mounts: readonly Mount[]): Mount[] {
  const within = (p: string, dir: string) => p === dir || p.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
  const mustWait = (m: Mount, others: readonly Mount[]) => others.some((n) => n !== m
    && ((within(n.source, m.target) && !within(n.target, m.target)) || (within(m.target, n.target) && m.target !== n.target)));
  const left = [...mounts];
  const out: Mount[] = [];
  while (left.length > 0) {
    const i = Math.max(0, left.findIndex((m) => !mustWait(m, left)));
    out.push(...left.splice(i, 1));
  }
  return out;
}

export interface VolumeContext {
  /** Where this pod's emptyDirs and rendered ConfigMap/Secret/projected volumes live. */
  podDir: string;
  lookup: ObjectLookup;
  node: NodeResources;
  podIP: string;
  /** TokenRequest for the pod's service account, bound to the pod. */
  requestToken(audience: string | undefined, expirationSeconds: number | undefined): Promise<string>;
  /** Where a hostPath volume lives on this machine (tests may redirect it). */
  hostPath(p: string): string;
  /** The local directory that backs a PersistentVolumeClaim. */
  claimDir(namespace: string, claim: string): string;
}

function writeFiles(dir: string, files: Record<string, string>): void {
  mkdirSync(dir, { recursive: true });
  for (const [rel, content] of Object.entries(files)) {
    const file = path.join(dir, rel);
    if (!file.startsWith(dir + path.sep)) throw new ContainerConfigError(`volume path escapes its volume: ${rel}`);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, content);
  }
}

/** Keys of a ConfigMap or Secret as files: all keys by name, or only `items` at their paths. */
function keyFiles(kind: string, name: string, data: Record<string, string> | undefined, items: V1KeyToPath[] | undefined,
  optional: boolean | undefined): Record<string, string> {
  if (data === undefined) {
    if (optional) return {};
    throw new ContainerConfigError(`${kind} "${name}" not found`);
  }
  if (!items?.length) return { ...data };
  const files: Record<string, string> = {};
  for (const item of items) {
    const value = data[item.key];
    if (value === undefined) {
      if (optional) continue;
      throw new ContainerConfigError(`couldn't find key ${item.key} in ${kind} ${name}`);
    }
    files[item.path] = value;
  }
  return files;
}

function downwardFiles(pod: V1Pod, items: V1DownwardAPIVolumeFile[], ctx: VolumeContext): Record<string, string> {
  const files: Record<string, string> = {};
  for (const item of items) {
    if (item.fieldRef) {
      const labelsOrAnnotations = /^metadata\.(labels|annotations)$/.exec(item.fieldRef.fieldPath);
      if (labelsOrAnnotations) {
        const map = (labelsOrAnnotations[1] === 'labels' ? pod.metadata?.labels : pod.metadata?.annotations) ?? {};
        files[item.path] = Object.entries(map).map(([k, v]) => `${k}=${JSON.stringify(v)}`).sort().join('\n');
      } else {
        files[item.path] = fieldRefValue(item.fieldRef, pod, ctx.podIP);
      }
    } else if (item.resourceFieldRef) {
      const container = pod.spec?.containers.find((c) => c.name === item.resourceFieldRef?.containerName)
        ?? pod.spec?.containers[0];
      if (!container) throw new ContainerConfigError(`downwardAPI ${item.path}: no container`);
      files[item.path] = resourceFieldValue(item.resourceFieldRef, container, ctx.node);
    }
  }
  return files;
}

async function volumeDir(pod: V1Pod, volume: V1Volume, ctx: VolumeContext): Promise<string> {
  const namespace = pod.metadata?.namespace ?? 'default';
  const own = path.join(ctx.podDir, 'volumes', volume.name);
  if (volume.hostPath) {
    const p = ctx.hostPath(volume.hostPath.path);
    const type = volume.hostPath.type ?? '';
    if (type === 'DirectoryOrCreate') mkdirSync(p, { recursive: true });
    else if (type === 'FileOrCreate' && !existsSync(p)) {
      mkdirSync(path.dirname(p), { recursive: true });
      closeSync(openSync(p, 'a'));
    } else if (!existsSync(p) && type !== '') throw new ContainerConfigError(`hostPath ${p} does not exist`);
    else if (!existsSync(p)) mkdirSync(p, { recursive: true });
    return p;
  }
  if (volume.emptyDir) {
    mkdirSync(own, { recursive: true });
    // World-writable like the kubelet's, so a container running as runAsUser can write to it.
    chmodSync(own, 0o777);
    return own;
  }
  if (volume.persistentVolumeClaim) {
    const dir = ctx.claimDir(namespace, volume.persistentVolumeClaim.claimName);
    mkdirSync(dir, { recursive: true });
    return dir;
  }
  if (volume.configMap) {
    const name = volume.configMap.name ?? '';
    writeFiles(own, keyFiles('configmap', name, await ctx.lookup.configMap(namespace, name), volume.configMap.items,
      volume.configMap.optional));
    return own;
  }
  if (volume.secret) {
    const name = volume.secret.secretName ?? '';
    writeFiles(own, keyFiles('secret', name, await ctx.lookup.secret(namespace, name), volume.secret.items,
      volume.secret.optional));
    return own;
  }
  if (volume.downwardAPI) {
    writeFiles(own, downwardFiles(pod, volume.downwardAPI.items ?? [], ctx));
    return own;
  }
  if (volume.projected) {
    const files: Record<string, string> = {};
    for (const source of volume.projected.sources ?? []) {
      if (source.serviceAccountToken) {
        const t = source.serviceAccountToken;
        files[t.path] = await ctx.requestToken(t.audience, t.expirationSeconds);
      } else if (source.configMap) {
        const name = source.configMap.name ?? '';
        Object.assign(files, keyFiles('configmap', name, await ctx.lookup.configMap(namespace, name),
          source.configMap.items, source.configMap.optional));
      } else if (source.secret) {
        const name = source.secret.name ?? '';
        Object.assign(files, keyFiles('secret', name, await ctx.lookup.secret(namespace, name), source.secret.items,
          source.secret.optional));
      } else if (source.downwardAPI) {
        Object.assign(files, downwardFiles(pod, source.downwardAPI.items ?? [], ctx));
      } else {
        throw new ContainerConfigError(`volume ${volume.name}: unsupported projected source`);
      }
    }
    writeFiles(own, files);
    return own;
  }
  throw new ContainerConfigError(`volume ${volume.name}: unsupported volume type (the process kubelet supports ` +
    'hostPath, emptyDir, persistentVolumeClaim, configMap, secret, downwardAPI and projected)');
}

/** Prepares every volume of the pod on this machine; returns the local directory of each, by volume name. */
export async function prepareVolumes(pod: V1Pod, ctx: VolumeContext): Promise<Map<string, string>> {
  const dirs = new Map<string, string>();
  for (const volume of pod.spec?.volumes ?? []) dirs.set(volume.name, await volumeDir(pod, volume, ctx));
  return dirs;
}

/** The container's volumeMounts as bind mounts, parents before children so nested mounts stay visible. */
export function containerMounts(container: V1Container, volumeDirs: Map<string, string>): Mount[] {
  const mounts = (container.volumeMounts ?? []).map((m) => {
    const dir = volumeDirs.get(m.name);
    if (dir === undefined) throw new ContainerConfigError(`volumeMount ${m.name}: no such volume`);
    const source = m.subPath ? path.join(dir, m.subPath) : dir;
    if (m.subPath && !existsSync(source)) mkdirSync(source, { recursive: true });
    return { source, target: m.mountPath, readOnly: m.readOnly ?? false };
  });
  return mounts.sort((a, b) => a.target.split('/').length - b.target.split('/').length);
}
