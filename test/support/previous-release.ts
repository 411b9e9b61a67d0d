import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readdir, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const MIGRATIONS_DIR = 'job-runner/db/migrations';

export interface PreviousRelease {
  /** The commit built: the parent of the commit that added the newest migration (HEAD while that is uncommitted). */
  commit: string;
  /** The newest migration that code knows. */
  knows: number;
  /** Its built CLI (`dist/cli/main.js`), to run with process.execPath. */
  cli: string;
  remove(): Promise<void>;
}

const newestMigration = async (dir: string) =>
  (await readdir(dir))
    .filter((f) => /^\d{4}-.*\.ts$/.test(f))
    .sort()
    .at(-1)!;

/**
 * The real code of the release before the newest migration, from this repository's history (`git archive` of the
 * commit, built with the project's tsc into a temporary directory, the project's node_modules linked in): what a
 * runner pod of the previous image runs during an upgrade. Needs the history back to that commit; a shallow clone
 * fails here, saying so, rather than testing today's code under the old one's name.
 */
export async function buildPreviousRelease(): Promise<PreviousRelease> {
  const git = async (...args: string[]) => (await run('git', ['-C', REPO, ...args])).stdout.trim();
  const newest = path.join(MIGRATIONS_DIR, await newestMigration(path.join(REPO, MIGRATIONS_DIR)));
  const added = await git('log', '--diff-filter=A', '--format=%H', '-1', '--', newest);
  let commit: string;
  try {
    commit = await git('rev-parse', '--verify', `${added || 'HEAD'}${added ? '^' : ''}^{commit}`);
  } catch {
    const shallow = await git('rev-parse', '--is-shallow-repository').catch(() => 'unknown');
    throw new Error(
      `the commit before ${newest} came in is not in this clone (shallow: ${shallow}): the previous release's code is built from git history, so clone with it (git fetch --unshallow)`,
    );
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mco-previous-'));
  const remove = () => rm(dir, { recursive: true, force: true });
  try {
    await new Promise<void>((resolve, reject) => {
      const archive = spawn('git', ['-C', REPO, 'archive', '--format=tar', commit], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const untar = spawn('tar', ['-x', '-C', dir], { stdio: ['pipe', 'inherit', 'inherit'] });
      archive.stdout.pipe(untar.stdin);
      archive.on('error', reject);
      untar.on('error', reject);
      untar.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`git archive | tar exited ${code}`))));
    });
    await symlink(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'));
    await run(process.execPath, [
      path.join(REPO, 'node_modules/typescript/bin/tsc'),
      '-p',
      path.join(dir, 'tsconfig.build.json'),
    ]);
    const knows = Number((await newestMigration(path.join(dir, MIGRATIONS_DIR))).slice(0, 4));
    return { commit, knows, cli: path.join(dir, 'dist/cli/main.js'), remove };
  } catch (err) {
    await remove();
    throw err;
  }
}
