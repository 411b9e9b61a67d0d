import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeMidi } from '../../../job-runner/analysis/analyze.js';
import { failureKindOf } from '../../../job-runner/analysis/failure.js';
import { DRUM_FAMILY, GM_FAMILIES } from '../../../job-runner/analysis/gm.js';
import type { FileAnalysis } from '../../../job-runner/analysis/types.js';
import { binOf, DENSITY_EDGES, DURATION_EDGES, TEMPO_EDGES } from '../../../job-runner/report/model.js';
import { badInputs } from '../../../job-runner/synth/bad-inputs.js';
import { generateCorpus } from '../../../job-runner/synth/corpus.js';
import { writeSampleCorpus } from '../../../job-runner/synth/sample.js';
import { CHROMIUM, ensureChromium } from '../../support/browser.js';
import { startTestPostgres, type TestPostgres } from '../../support/postgres.js';
import { runCli, type CliExit } from '../runner/cli.js';

/**
 * `midi-corpus report` end to end: the sample corpus ingested by the real `local` command (real runner processes,
 * real Postgres), the report written by the real CLI, and the page opened in a real headless chromium. Every
 * expected figure comes from the fixture's own data: the statuses and failure kinds from what the bad inputs declare,
 * keys, tempi, meters, durations, densities, instruments and drums from analysing the same bytes in this process.
 */

const unavailable = ensureChromium();
if (unavailable) console.warn(`skipping the report's browser tests: ${unavailable}`);

/** A file name that is HTML: if the page did not escape it, an <img> would appear (and try to load `x`). */
const HOSTILE_NAME = `<img src=x onerror=alert(1)>&"q'.mid`;

function count<T>(items: readonly T[], key: (item: T) => string | null): Map<string, number> {
  const m = new Map<string, number>();
  for (const item of items) {
    const k = key(item);
    if (k !== null) m.set(k, (m.get(k) ?? 0) + 1);
  }
  return m;
}

/** [label, count] of every `rect.bar` of a chart, as the page holds them. */
async function barsOf(page: Page, chart: string): Promise<Array<[string, number]>> {
  return page
    .locator(`#${chart} rect.bar`)
    .evaluateAll((els) => els.map((e) => [e.getAttribute('data-label')!, Number(e.getAttribute('data-count'))]));
}

async function cellsOf(page: Page, table: string): Promise<string[][]> {
  return page
    .locator(`#${table} tbody tr`)
    .evaluateAll((rows) => rows.map((r) => [...r.querySelectorAll('td')].map((td) => td.textContent ?? '')));
}

function stderrLines(exit: CliExit): string[] {
  return exit.stderr.trim().split('\n').filter(Boolean);
}

describe.skipIf(unavailable !== null)('midi-corpus report, opened in a real browser', () => {
  const songs = generateCorpus({ files: 30, seed: 1 });
  const bad = badInputs();
  /** Everything the runner should analyse: the songs and the odd-but-valid inputs. */
  const analyses: FileAnalysis[] = [...songs.map((s) => s.bytes), ...bad.filter((b) => b.expect.ok).map((b) => b.bytes)]
    .map((bytes) => analyzeMidi(bytes))
    .map((o) => {
      if (!o.ok) throw new Error(`a fixture that should analyse failed: ${o.reason}`);
      return o.analysis;
    });
  // The bad inputs declare their failure kinds; the hostile name is not MIDI at all.
  const failedKinds = [
    ...bad.flatMap((b) => (b.expect.ok ? [] : [b.expect.kind as string])),
    failureKindOf('not a MIDI file: x')!,
  ];

  let tmp: string;
  let output: string;
  let browser: Browser;
  let page: Page;
  const requests: string[] = [];
  const dialogs: string[] = [];

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'mco-report-'));
    // As root the embedded server runs as user postgres, which must be able to enter the data directory's parents.
    await chmod(tmp, 0o711);
    const root = path.join(tmp, 'sample-corpus');
    await writeSampleCorpus(root, { files: 30, seed: 1, bad: true });
    await writeFile(path.join(root, 'bad', HOSTILE_NAME), 'not a MIDI file at all\n');
    const dataDir = path.join(tmp, 'data');
    const local = await runCli(['local', root, '--data-dir', dataDir], { DATABASE_URL: undefined });
    expect(local.code, local.stderr.slice(-3000)).toBe(0);
    expect(local.stderr).toContain('npx midi-corpus report --data-dir');

    output = path.join(tmp, 'report.html');
    const report = await runCli(['report', '--data-dir', dataDir, '--output', output], { DATABASE_URL: undefined });
    expect(report.code, report.stderr.slice(-3000)).toBe(0);

    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('request', (r) => requests.push(r.url()));
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    await page.goto(pathToFileURL(output).href, { waitUntil: 'load' });
  });

  afterAll(async () => {
    await browser?.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('makes no network request: the file itself is all it loads', () => {
    expect(requests).toEqual([pathToFileURL(output).href]);
    expect(dialogs).toEqual([]);
  });

  it('shows the corpus’s counts: files ok and failed, and the failure reasons with their counts', async () => {
    const ok = analyses.length;
    const failed = failedKinds.length;
    expect(await page.locator('#card-files .value').textContent()).toBe(String(ok + failed));
    expect(await page.locator('#card-status-ok .value').textContent()).toBe(String(ok));
    expect(await page.locator('#card-status-failed .value').textContent()).toBe(String(failed));
    expect(await barsOf(page, 'chart-status')).toEqual([
      ['ok', ok],
      ['failed', failed],
    ]);
    const expectedKinds = [...count(failedKinds, (k) => k)].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    const table = await cellsOf(page, 'table-failure-kinds');
    expect(table.map(([kind, n]) => [kind, Number(n)])).toEqual(expectedKinds);
    expect(await barsOf(page, 'chart-failures')).toEqual(expectedKinds);
  });

  it('charts the estimated keys, tempi, meters, durations and densities the analysis finds', async () => {
    const keys = count(analyses, (a) => (a.estimatedKey ? `${a.estimatedKey.tonic} ${a.estimatedKey.mode}` : null));
    const keyBars = await barsOf(page, 'chart-keys');
    expect(keyBars).toHaveLength(24);
    expect(keyBars.filter(([, n]) => n > 0).sort()).toEqual([...keys].sort());
    // The numbers are written on the chart, not only in attributes.
    const keyNumbers = await page.locator('#chart-keys text.value').allTextContents();
    expect(keyNumbers.map(Number).reduce((a, b) => a + b, 0)).toBe(analyses.filter((a) => a.estimatedKey).length);

    const histogram = (edges: readonly number[], value: (a: FileAnalysis) => number) => {
      const counts = new Array<number>(edges.length + 1).fill(0);
      for (const a of analyses) counts[binOf(value(a), edges)]!++;
      return counts;
    };
    const heights = async (chart: string) => (await barsOf(page, chart)).map(([, n]) => n);
    expect(await heights('chart-tempo')).toEqual(histogram(TEMPO_EDGES, (a) => a.mainBpm));
    expect(await heights('chart-duration')).toEqual(histogram(DURATION_EDGES, (a) => a.durationSeconds));
    expect(await heights('chart-density')).toEqual(histogram(DENSITY_EDGES, (a) => a.noteDensity));

    const meters = count(analyses, (a) => {
      const first = a.timeSignatures[0];
      return first ? `${first.numerator}/${first.denominator}` : 'none (4/4 assumed)';
    });
    expect(meters.size).toBeLessThanOrEqual(10); // so no "other" bar folds some together
    expect((await barsOf(page, 'chart-meter')).sort()).toEqual([...meters].sort());
  });

  it('charts instrument families and drums as the channels hold them', async () => {
    const families = new Map<string, number>();
    for (const a of analyses)
      for (const family of new Set(a.channels.map((c) => c.family)))
        families.set(family, (families.get(family) ?? 0) + 1);
    expect(await barsOf(page, 'chart-families')).toEqual(
      [...GM_FAMILIES, DRUM_FAMILY].map((f) => [f, families.get(f) ?? 0]),
    );
    const withDrums = analyses.filter((a) => a.hasDrums).length;
    expect(withDrums).toBeGreaterThan(0);
    expect(await barsOf(page, 'chart-drums')).toEqual([
      ['with drums', withDrums],
      ['without drums', analyses.length - withDrums],
    ]);
    const drumNotes = analyses
      .flatMap((a) => a.channels)
      .filter((c) => c.isDrum)
      .reduce((s, c) => s + c.noteCount, 0);
    expect(await page.locator('#drums .note').textContent()).toContain(
      `${drumNotes.toLocaleString('en-US')} notes on the drum channel`,
    );
  });

  it('draws every chart: each has a size, and every non-zero bar is visible', async () => {
    const charts = page.locator('svg.chart');
    expect(await charts.count()).toBeGreaterThanOrEqual(10);
    for (const chart of await charts.all()) {
      const box = await chart.boundingBox();
      expect(box!.width).toBeGreaterThan(300);
      expect(box!.height).toBeGreaterThan(50);
    }
    const bars = await page.locator('rect.bar').all();
    let drawn = 0;
    for (const bar of bars) {
      if (Number(await bar.getAttribute('data-count')) === 0) continue;
      const box = await bar.boundingBox();
      expect(box!.width * box!.height, (await bar.getAttribute('data-label')) ?? '').toBeGreaterThan(0);
      drawn++;
    }
    expect(drawn).toBeGreaterThan(40);
  });

  it('shows a file name that is HTML as text', async () => {
    expect(await page.locator('img').count()).toBe(0);
    const paths = (await cellsOf(page, 'table-failed-files')).map(([p]) => p);
    expect(paths).toContain(`bad/${HOSTILE_NAME}`);
  });

  it('renders to a screenshot', async () => {
    const png = path.join(tmp, 'report.png');
    await page.screenshot({ path: png, fullPage: true });
    const bytes = readFileSync(png);
    expect(bytes.subarray(1, 4).toString('latin1')).toBe('PNG');
    expect(bytes.length).toBeGreaterThan(50_000);
  });
});

describe('midi-corpus report on a database given by URL, holding several corpora', () => {
  let pgServer: TestPostgres;
  let url: string;
  let tmp: string;
  const BETA = 'team/<beta>';

  beforeAll(async () => {
    pgServer = await startTestPostgres();
    url = await pgServer.createDatabase();
    tmp = await mkdtemp(path.join(os.tmpdir(), 'mco-report-url-'));
    for (const [key, files, seed] of [
      ['alpha', 3, 2],
      [BETA, 2, 3],
    ] as const) {
      const root = path.join(tmp, key.replace(/\W/g, '_'));
      await writeSampleCorpus(root, { files, seed, bad: false });
      const local = await runCli(['local', root, '--database-url', url, '--corpus', key]);
      expect(local.code, local.stderr.slice(-3000)).toBe(0);
    }
  });

  afterAll(async () => {
    await pgServer?.destroy();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('refuses to guess which corpus: exit 64, one line that lists them, no secret', async () => {
    const exit = await runCli(['report', '--database-url', url, '-o', path.join(tmp, 'r.html')], {
      LOG_LEVEL: 'warn',
    });
    expect(exit.code).toBe(64);
    const lines = stderrLines(exit);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`holds 2 corpora: choose one with --corpus: alpha, ${BETA}`);
    expect(exit.stderr).not.toContain(new URL(url).password);
    expect(existsSync(path.join(tmp, 'r.html'))).toBe(false);
  });

  it('reports the corpus --corpus names, over one connection, writing nothing', async () => {
    const out = path.join(tmp, 'beta.html');
    const sampler = new pg.Client({ connectionString: url });
    await sampler.connect();
    const lastWrite = async () =>
      (await sampler.query<{ t: Date }>('SELECT max(updated_at) AS t FROM midi.files')).rows[0]!.t;
    let peak = 0;
    let samples = 0;
    let running = true;
    try {
      const before = await lastWrite();
      // The server's own count of the report's connections, sampled for as long as the command runs.
      const sampling = (async () => {
        while (running) {
          const { rows } = await sampler.query<{ n: number }>(
            "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name LIKE 'mco report%'",
          );
          peak = Math.max(peak, rows[0]!.n);
          samples++;
        }
      })();
      const exit = await runCli(['report', '--database-url', url, '--corpus', BETA, '--output', out]).finally(() => {
        running = false;
      });
      await sampling;
      console.info(`report connections seen by the server: peak ${peak} over ${samples} samples`);
      expect(exit.code, exit.stderr).toBe(0);
      expect(samples).toBeGreaterThan(5);
      expect(peak).toBeLessThanOrEqual(1);
      expect(await lastWrite()).toEqual(before);
    } finally {
      running = false;
      await sampler.end();
    }

    const html = readFileSync(out, 'utf8');
    expect(html).toContain('<code id="corpus-key">team/&lt;beta&gt;</code>');
    expect(html).toMatch(/<div class="card" id="card-files"[^>]*><div class="value">2<\/div>/);
    expect(html).not.toContain(new URL(url).password);
  });

  it('refuses a database the schema was never migrated into: exit 64, one line', async () => {
    const empty = await pgServer.createDatabase();
    const exit = await runCli(['report', '--database-url', empty, '-o', path.join(tmp, 'e.html')], {
      LOG_LEVEL: 'warn',
    });
    expect(exit.code, exit.stderr).toBe(64);
    expect(stderrLines(exit)).toHaveLength(1);
    expect(exit.stderr).toContain('this database holds no midi-corpus schema');
  });

  it.each<{ name: string; args: (tmp: string, url: string) => string[]; says: RegExp }>([
    {
      name: 'a corpus not there',
      args: (_t, u) => ['--database-url', u, '--corpus', 'gamma'],
      says: /--corpus gamma: no such corpus.*alpha/,
    },
    { name: 'a URL that is not one', args: () => ['--database-url', 'not-a-url'], says: /--database-url .*not a URL/ },
    {
      name: 'another scheme (its password not repeated)',
      args: () => ['--database-url', 'mysql://u:hunter2@db/x'],
      says: /--database-url has the scheme mysql: where postgres: or postgresql: belongs/,
    },
    {
      name: 'an output directory that does not exist',
      args: (t, u) => ['--database-url', u, '-o', path.join(t, 'no/such/r.html')],
      says: /--output must be a file this user may write, got .*no\/such\/r\.html \(.*not found\)/,
    },
    {
      name: 'a data directory with no database',
      args: (t) => ['--data-dir', path.join(t, 'empty')],
      says: /no local-mode database in .*: give --data-dir the directory a `midi-corpus local` run used/,
    },
  ])('refuses $name with exit 64 and one line', async ({ args, says }) => {
    const exit = await runCli(['report', ...args(tmp, url)], { DATABASE_URL: undefined, LOG_LEVEL: 'warn' });
    expect(exit.code, exit.stderr).toBe(64);
    expect(stderrLines(exit)).toHaveLength(1);
    expect(exit.stderr).toMatch(says);
    expect(exit.stderr).not.toContain('hunter2');
    expect(exit.stderr).not.toMatch(/\n\s+at /);
    // Refused before any database was started: the empty data directory stays empty.
    expect(existsSync(path.join(tmp, 'empty', 'pgdata'))).toBe(false);
  });
});
