import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalRunReport } from '../../../job-runner/local/report.js';
import { startTestPostgres, type TestPostgres } from '../../support/postgres.js';
import { CLI, lastJson, runCli, writeCorpus } from '../runner/cli.js';

/** What `midi-corpus local` tells a person at the end: the bar's last frame and the summary below it. */

let db: TestPostgres;
let tmp: string;

beforeAll(async () => {
  db = await startTestPostgres();
  tmp = await mkdtemp(path.join(os.tmpdir(), 'mco-summary-'));
}, 120_000);

afterAll(async () => {
  await db?.destroy();
  await rm(tmp, { recursive: true, force: true });
});

const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/**
 * Runs the built CLI on a real terminal: util-linux `script` gives it a pseudo-terminal (250 columns, so that the
 * bar is not cut), and returns everything drawn there, the bar's frames and the summary after them.
 */
function onTerminal(args: string[], env: Record<string, string>): Promise<{ code: number | null; screen: string }> {
  const command = `stty cols 250 rows 50; exec ${[process.execPath, CLI, ...args].map(quote).join(' ')}`;
  const child = spawn('script', ['-qfec', command, '/dev/null'], {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let screen = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (screen += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (screen += d));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, screen })));
}

/** The bar's frames, escape codes removed: cli-progress redraws its line after a carriage return or a cursor move. */
function barFrames(screen: string): string[] {
  return (
    screen
      // eslint-disable-next-line no-control-regex
      .split(/\r|\n|\x1b\[\d*G/)
      // eslint-disable-next-line no-control-regex
      .map((f) => f.replace(/\x1b(\[[0-9;?]*[A-Za-z]|[78])/g, '').trim())
      .filter((f) => / files: \d+ ok, \d+ failed \| /.test(f))
  );
}

describe('local on a terminal', () => {
  it("draws a bar with rate and time left whose last frame has the summary's counts", async () => {
    const root = path.join(tmp, 'corpus');
    await writeCorpus(root, { files: 300, bad: true });
    const url = await db.createDatabase('bar');
    const run = await onTerminal(['local', root, '--data-dir', path.join(tmp, 'data-bar'), '--shards', '6', '--json'], {
      DATABASE_URL: url,
    });
    expect(run.code, run.screen.slice(-3000)).toBe(0);

    const frames = barFrames(run.screen);
    expect(frames.length, run.screen.slice(-3000)).toBeGreaterThan(0);
    for (const f of frames) expect(f).toMatch(/ \| [\d.]+ files\/s, (\?|\d+s|\d+m \d\ds|\d+h \d\dm) left \| /);
    const last = /(\d+)\/(\d+) files: (\d+) ok, (\d+) failed \| ([\d.]+) files\/s, (\S+) left/.exec(frames.at(-1)!)!;
    const [settled, total, ok, failed] = last.slice(1, 5).map(Number);

    const summary = /files {8}([\d,]+): ([\d,]+) ok, ([\d,]+) failed, ([\d,]+) skipped/.exec(run.screen)!;
    expect(summary, run.screen.slice(-3000)).not.toBeNull();
    const [sTotal, sOk, sFailed, sSkipped] = summary.slice(1, 5).map((n) => Number(n.replaceAll(',', '')));
    expect({ settled, total, ok, failed }).toEqual({ settled: sTotal, total: sTotal, ok: sOk, failed: sFailed });
    expect(last[6], 'nothing is left at the end').toBe('0s');
    // The machine's copy agrees too, and the counts are this corpus's: 300 songs, the bad inputs failed or skipped.
    const report = JSON.parse(run.screen.trim().split(/\r?\n/).at(-1)!) as LocalRunReport;
    expect(report.files).toMatchObject({ total: sTotal, ok: sOk, failed: sFailed, skipped: sSkipped, pending: 0 });
    expect(sOk).toBeGreaterThanOrEqual(300);
  }, 300_000);
});

describe('local on an empty directory', () => {
  it('warns and says there was nothing to ingest, not "complete", and exits 0', async () => {
    const empty = path.join(tmp, 'empty');
    await mkdir(empty, { recursive: true });
    const url = await db.createDatabase('empty');
    const exit = await runCli(['local', empty, '--data-dir', path.join(tmp, 'data-empty'), '--json'], {
      DATABASE_URL: url,
    });
    expect(exit.code, exit.stderr.slice(-3000)).toBe(0);
    const report = lastJson<LocalRunReport>(exit);
    expect(report.outcome).toBe('empty');
    expect(report.message).toMatch(/^nothing to ingest: no file under .*empty matches \*\*\/\*\.mid /);
    expect(exit.stderr).toMatch(/— empty in [\d.]+ s\n {2}nothing to ingest/);
    expect(exit.stderr).not.toMatch(/complete/);
    expect(exit.stderr).toMatch(/"level":40.*nothing to ingest/);
  }, 120_000);
});

describe('local with a budget that fits no runner', () => {
  it('says so in one line naming the flag to change, and exits 64', async () => {
    // Found only once the server answered (its reserved connections count), so after the flags: still one line.
    const root = path.join(tmp, 'small-budget');
    await writeCorpus(root, { files: 2 });
    const url = await db.createDatabase('small_budget');
    const exit = await runCli(['local', root, '--data-dir', path.join(tmp, 'data-small'), '--max-connections', '7'], {
      DATABASE_URL: url,
    });
    expect(exit.code, exit.stderr).toBe(64);
    const lines = exit.stderr.trimEnd().split('\n');
    expect(lines.at(-1)).toMatch(/^midi-corpus local: no runner fits the connection budget.*Raise --max-connections/);
    expect(lines.filter((l) => l.startsWith('midi-corpus local:'))).toHaveLength(1);
    expect(exit.stderr).not.toMatch(/^\s+at /m);
  }, 120_000);
});
