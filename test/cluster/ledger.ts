import { execFile, execFileSync } from 'node:child_process';
import { appendFileSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from './binaries.js';

const exec = promisify(execFile);

export const TEARDOWN_SCRIPT = path.join(REPO_ROOT, 'test', 'cluster', 'node', 'teardown.sh');

/** Kinds of machine state a cluster makes, each undone by node/teardown.sh. */
export type LedgerEntry = 'cgroup' | 'netns' | 'link' | 'dir';

/**
 * An append-only list of what a cluster (or one node of it) has made on the machine, written *before* each thing
 * is made: whatever way the test process ends, node/teardown.sh (from stop(), or the watchdog when the process
 * died) finds everything, half-made nodes included.
 */
export class Ledger {
  constructor(readonly file: string) {
    mkdirSync(path.dirname(file), { recursive: true });
    appendFileSync(file, '');
  }

  record(kind: LedgerEntry, value: string): void {
    if (/\s/.test(value)) throw new Error(`ledger values have no whitespace: ${JSON.stringify(value)}`);
    appendFileSync(this.file, `${kind} ${value}\n`);
  }
}

/** The ledger files of a cluster directory (cluster.list, one per node). */
export function ledgerFiles(dir: string): string[] {
  try {
    return readdirSync(dir)
      .filter((f) => f.endsWith('.list'))
      .map((f) => path.join(dir, f));
  } catch {
    return [];
  }
}

/** Undoes everything in the given ledgers: node processes killed at once per node, cgroups, netns, links, dirs. */
export async function teardown(files: string[]): Promise<void> {
  if (files.length === 0) return;
  const { stderr } = await exec('/bin/sh', [TEARDOWN_SCRIPT, ...files]);
  if (stderr.trim()) throw new Error(`teardown left something behind: ${stderr.trim()}`);
}

/** The same, synchronously, for process 'exit' hooks (no event loop left there). */
export function teardownSync(files: string[]): void {
  if (files.length > 0) execFileSync('/bin/sh', [TEARDOWN_SCRIPT, ...files], { stdio: 'ignore' });
}
