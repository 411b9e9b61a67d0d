import path from 'node:path';
import type { V1Container } from '@kubernetes/client-node';

/** What a container image would run: its ENTRYPOINT, CMD, ENV and WORKDIR, here as a local command. */
export interface LocalImage {
  entrypoint: string[];
  cmd?: string[];
  env?: Record<string, string>;
  workingDir?: string;
  /**
   * The image's own files: host directories bind-mounted read-only at their target in the container, as a real
   * image's files are in its root filesystem. Mounted before the pod's volumes (and so never hidden by them: an
   * emptyDir at /tmp must not hide a work tree that happens to live under /tmp).
   */
  files?: Array<{ source: string; target: string }>;
}

/**
 * Maps image references to local commands. A key ending in `*` matches every reference with that prefix
 * (`ghcr.io/org/app:*` matches any tag). Images not in the table cannot be "pulled".
 */
export type ImageTable = Record<string, LocalImage>;

/** The project's single image (controller and runner), as contracts.md names it. */
export const PROJECT_IMAGE_PREFIX = 'ghcr.io/midi-corpus/midi-corpus-operator:';

/** Where the project's files are in its image (the Dockerfile's WORKDIR), and so in the process kubelet's pods. */
export const PROJECT_IMAGE_ROOT = '/app';

/** The work tree as the project image's files: built dist/ and node_modules/ at /app, as in the real image. */
export function projectImageFiles(repoRoot: string): NonNullable<LocalImage['files']> {
  return [{ source: repoRoot, target: PROJECT_IMAGE_ROOT }];
}

/** The project's image runs the built CLI, as the real image's `ENTRYPOINT ["node", "/app/dist/cli/main.js"]` does. */
export function projectImages(repoRoot: string): ImageTable {
  return {
    [`${PROJECT_IMAGE_PREFIX}*`]: {
      entrypoint: [process.execPath, path.posix.join(PROJECT_IMAGE_ROOT, 'dist', 'cli', 'main.js')],
      files: projectImageFiles(repoRoot),
    },
  };
}

/** A shell image for the harness' own tests: `command`/`args` are a shell's. */
export const SHELL_IMAGE = 'test.local/sh';
export const shellImages: ImageTable = { [SHELL_IMAGE]: { entrypoint: ['/bin/sh'] } };

export function lookupImage(table: ImageTable, image: string): LocalImage | undefined {
  if (table[image]) return table[image];
  const prefixes = Object.keys(table).filter((k) => k.endsWith('*') && image.startsWith(k.slice(0, -1)));
  const longest = prefixes.sort((a, b) => b.length - a.length)[0];
  return longest === undefined ? undefined : table[longest];
}

/**
 * Expands `$(VAR)` references the way the kubelet does: defined variables are substituted, `$$` escapes a `$`,
 * and references to undefined variables are left as written.
 */
export function expandVars(input: string, vars: Record<string, string>): string {
  let out = '';
  for (let i = 0; i < input.length; i++) {
    const c = input[i];
    if (c !== '$' || i + 1 >= input.length) {
      out += c;
      continue;
    }
    const next = input[i + 1];
    if (next === '$') {
      out += '$';
      i++;
    } else if (next === '(') {
      const close = input.indexOf(')', i + 2);
      if (close < 0) {
        out += input.slice(i);
        break;
      }
      const name = input.slice(i + 2, close);
      out += Object.hasOwn(vars, name) ? vars[name] : `$(${name})`;
      i = close;
    } else {
      out += c;
    }
  }
  return out;
}

/**
 * The argv a container runs, by Kubernetes' rules: `command` replaces the image's ENTRYPOINT (and drops its CMD),
 * `args` replaces the CMD; both get `$(VAR)` expansion from the container's environment.
 */
export function containerArgv(image: LocalImage, container: Pick<V1Container, 'command' | 'args'>,
  env: Record<string, string>): string[] {
  const expand = (list: string[]) => list.map((a) => expandVars(a, env));
  if (container.command?.length) return [...expand(container.command), ...expand(container.args ?? [])];
  return [...image.entrypoint, ...(container.args?.length ? expand(container.args) : image.cmd ?? [])];
}
