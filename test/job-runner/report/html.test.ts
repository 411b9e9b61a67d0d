import { describe, expect, it } from 'vitest';
import { DRUM_FAMILY, GM_FAMILIES } from '../../../job-runner/analysis/gm.js';
import { niceMax, ticks } from '../../../job-runner/report/charts.js';
import { chooseCorpus } from '../../../job-runner/report/choose-corpus.js';
import { escapeHtml } from '../../../job-runner/report/escape.js';
import { renderReport } from '../../../job-runner/report/html.js';
import {
  binLabels,
  binOf,
  DENSITY_EDGES,
  DURATION_EDGES,
  emptyHistogram,
  formatSeconds,
  KEY_MODES,
  KEY_TONICS,
  orderStatuses,
  TEMPO_EDGES,
  topWithOther,
  type ReportModel,
} from '../../../job-runner/report/model.js';
import { UsageError } from '../../../job-runner/runner/errors.js';

/** A model as query.ts makes it, with every figure chosen here; `over` replaces parts. */
function model(over: Partial<ReportModel> = {}): ReportModel {
  const tempo = emptyHistogram(TEMPO_EDGES);
  tempo.counts[binOf(120, TEMPO_EDGES)] = 3;
  return {
    corpus: 'team/songs',
    database: 'postgres://db:5432/midi',
    generatedAt: '2026-12-02T07:00:00.000Z',
    lastScannedAt: '2026-12-02T06:00:00.000Z',
    lastAnalysedAt: '2026-12-02T06:01:00.000Z',
    statuses: [
      { label: 'ok', count: 3 },
      { label: 'failed', count: 2 },
    ],
    totalFiles: 5,
    failureKinds: [
      { kind: 'truncated', count: 1, example: 'a.mid' },
      { kind: 'empty file', count: 1, example: 'b.mid' },
    ],
    failureKindTotal: 2,
    failedFiles: [
      { path: 'a.mid', status: 'failed', reason: 'truncated: track 0' },
      { path: 'b.mid', status: 'failed', reason: 'empty file: the file has zero bytes' },
    ],
    notOk: 2,
    analysed: { files: 3, totalSeconds: 5400, notes: 1234 },
    keys: KEY_TONICS.flatMap((tonic) =>
      KEY_MODES.map((mode) => ({ tonic, mode, count: tonic === 'D' && mode === 'minor' ? 3 : 0 })),
    ),
    noKey: 0,
    tempo,
    meters: [{ label: '3/4', count: 3 }],
    duration: emptyHistogram(DURATION_EDGES),
    density: emptyHistogram(DENSITY_EDGES),
    families: [...GM_FAMILIES, DRUM_FAMILY].map((label) => ({ label, count: label === 'piano' ? 3 : 0 })),
    drums: { withDrums: 1, drumNotes: 40, kits: [{ label: 'standard kit', count: 1 }] },
    ...over,
  };
}

/** The `rect.bar` elements of the chart with id `id`, as [label, count] pairs, read back from the page's text. */
function bars(html: string, id: string): Array<[string, number]> {
  const chart = new RegExp(`<svg class="chart" id="${id}"[\\s\\S]*?</svg>`).exec(html);
  if (!chart) throw new Error(`no chart ${id}`);
  return [...chart[0].matchAll(/<rect class="bar"[^>]*data-label="([^"]*)" data-count="(\d+)"/g)].map((m) => [
    m[1]!,
    Number(m[2]),
  ]);
}

describe('the report page', () => {
  it('draws one bar per bin, zeros included, with the counts of the model', () => {
    const html = renderReport(model());
    expect(bars(html, 'chart-status')).toEqual([
      ['ok', 3],
      ['failed', 2],
    ]);
    expect(bars(html, 'chart-keys')).toHaveLength(24);
    expect(bars(html, 'chart-keys').filter(([, n]) => n > 0)).toEqual([['D minor', 3]]);
    expect(bars(html, 'chart-tempo')).toHaveLength(TEMPO_EDGES.length + 1);
    expect(bars(html, 'chart-tempo').find(([label]) => label === '120–130')).toEqual(['120–130', 3]);
    expect(bars(html, 'chart-duration')).toHaveLength(DURATION_EDGES.length + 1);
    expect(bars(html, 'chart-density')).toHaveLength(DENSITY_EDGES.length + 1);
    expect(bars(html, 'chart-families')).toHaveLength(GM_FAMILIES.length + 1);
    expect(bars(html, 'chart-drums')).toEqual([
      ['with drums', 1],
      ['without drums', 2],
    ]);
  });

  it('escapes every string that comes from the database', () => {
    const hostile = `<script>alert("x")</script>&'`;
    const html = renderReport(
      model({
        corpus: hostile,
        statuses: [{ label: hostile, count: 1 }],
        failureKinds: [{ kind: hostile, count: 1, example: hostile }],
        failedFiles: [{ path: hostile, status: hostile, reason: hostile }],
        meters: [{ label: hostile, count: 1 }],
        families: [{ label: hostile, count: 1 }],
        drums: { withDrums: 1, drumNotes: 1, kits: [{ label: hostile, count: 1 }] },
      }),
    );
    expect(html).not.toContain('<script');
    expect(html).not.toContain(`"x"`);
    expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;');
  });

  it('draws a status this release does not know (a newer schema may add one) instead of dropping it', () => {
    const html = renderReport(
      model({
        statuses: orderStatuses([
          { label: 'missing', count: 4 },
          { label: 'ok', count: 3 },
        ]),
        totalFiles: 7,
      }),
    );
    expect(bars(html, 'chart-status')).toEqual([
      ['ok', 3],
      ['missing', 4],
    ]);
    expect(html).toContain('id="card-status-missing"');
  });

  it('says so when nothing failed, nothing is analysed yet, or files are still pending', () => {
    const html = renderReport(
      model({
        statuses: [{ label: 'pending', count: 9 }],
        totalFiles: 9,
        failureKinds: [],
        failureKindTotal: 0,
        failedFiles: [],
        notOk: 0,
        analysed: { files: 0, totalSeconds: 0, notes: 0 },
        keys: [],
        tempo: emptyHistogram(TEMPO_EDGES),
        meters: [],
        families: [],
        drums: { withDrums: 0, drumNotes: 0, kits: [] },
      }),
    );
    expect(html).toContain('No file failed or was skipped.');
    expect(html).toContain('9 file(s) are still pending');
    expect(html).not.toContain('id="chart-failures"');
    expect(html).not.toContain('NaN');
    expect(bars(html, 'chart-tempo').every(([, n]) => n === 0)).toBe(true);
  });

  it('forbids every fetch in its Content-Security-Policy and links to nothing', () => {
    const html = renderReport(model());
    expect(html).toContain(`content="default-src 'none'; style-src 'unsafe-inline'; img-src data:"`);
    expect(html).not.toMatch(/\b(?:src|href)=/);
    expect(html).not.toMatch(/https?:\/\//);
  });

  it('gives every chart a title, a description with its numbers and titled axes', () => {
    const html = renderReport(model());
    const charts = [...html.matchAll(/<svg class="chart" id="([^"]+)"[\s\S]*?<\/svg>/g)];
    expect(charts.length).toBeGreaterThanOrEqual(10);
    for (const [svg, id] of charts) {
      expect(svg, id).toContain(`aria-labelledby="${id}-title ${id}-desc"`);
      expect(svg, id).toMatch(new RegExp(`<title id="${id}-title">[^<]+</title><desc id="${id}-desc">[^<]+</desc>`));
      expect(svg, id).toContain('class="axis-title"');
    }
    expect(html).toMatch(/<desc id="chart-keys-desc">[^<]*D: 3/);
  });
});

describe('report bins', () => {
  it.each([
    [39.9, 0],
    [40, 1],
    [49.99, 1],
    [120, 9],
    [239, 20],
    [240, 21],
    [900, 21],
  ])('puts %f BPM in bin %i, as width_bucket does', (bpm, bin) => {
    expect(binOf(bpm, TEMPO_EDGES)).toBe(bin);
  });

  it('labels bins from below the first edge to above the last', () => {
    expect(binLabels([1, 2, 4])).toEqual(['< 1', '1–2', '2–4', '≥ 4']);
    expect(binLabels([30, 90], formatSeconds)).toEqual(['< 30 s', '30 s–1.5 min', '≥ 1.5 min']);
  });

  it('keeps the most frequent and sums the rest into "other"', () => {
    const counts = [5, 1, 4, 2, 3].map((count, i) => ({ label: `m${i}`, count }));
    expect(topWithOther(counts, 3)).toEqual([
      { label: 'm0', count: 5 },
      { label: 'm2', count: 4 },
      { label: 'other', count: 6 },
    ]);
    expect(topWithOther(counts, 5)).toHaveLength(5);
  });

  it.each([
    [0, 0, [0]],
    [3, 5, [0, 1, 2, 3, 4, 5]],
    [10, 10, [0, 2, 4, 6, 8, 10]],
    [34, 50, [0, 10, 20, 30, 40, 50]],
    [1234, 2000, [0, 500, 1000, 1500, 2000]],
  ])('scales a maximum of %i to %i with ticks %j', (max, top, expected) => {
    expect(niceMax(max)).toBe(top);
    expect(ticks(niceMax(max))).toEqual(expected);
  });
});

describe('choosing the corpus', () => {
  it.each<{ name: string; keys: string[]; wanted?: string; gives?: string; refuses?: RegExp }>([
    { name: 'the only one', keys: ['/data/a'], gives: '/data/a' },
    { name: 'the one named', keys: ['a', 'b'], wanted: 'b', gives: 'b' },
    {
      name: 'several, none named: lists them',
      keys: ['a', 'b'],
      refuses: /holds 2 corpora: choose one with --corpus: a, b$/,
    },
    {
      name: 'a name not there: lists those there',
      keys: ['a'],
      wanted: 'z',
      refuses: /^--corpus z: no such corpus.*holds a$/,
    },
    { name: 'an empty database', keys: [], refuses: /holds no corpus yet/ },
    {
      name: 'hundreds: lists twenty',
      keys: Array.from({ length: 25 }, (_, i) => `k${i}`),
      refuses: /k19 and 5 more$/,
    },
  ])('$name', ({ keys, wanted, gives, refuses }) => {
    if (gives !== undefined) expect(chooseCorpus(keys, wanted)).toBe(gives);
    else {
      expect(() => chooseCorpus(keys, wanted)).toThrow(UsageError);
      expect(() => chooseCorpus(keys, wanted)).toThrow(refuses!);
    }
  });
});

describe('escapeHtml', () => {
  it('escapes the five characters that matter in content and quoted attributes', () => {
    expect(escapeHtml(`a<b>&"c'`)).toBe('a&lt;b&gt;&amp;&quot;c&#39;');
  });
});
