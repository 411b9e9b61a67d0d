import { BAR_COLOR, columns, formatCount, horizontalBars, type Bar } from './charts.js';
import { escapeHtml } from './escape.js';
import {
  binLabels,
  DENSITY_EDGES,
  DURATION_EDGES,
  formatSeconds,
  KEY_MODES,
  KEY_TONICS,
  REPORT_LIMITS,
  TEMPO_EDGES,
  type ReportModel,
} from './model.js';

/**
 * The report page: one HTML file that holds everything it shows (styles and SVG charts inline, no script, no font,
 * no image to fetch), so it can be mailed, attached to a ticket or opened offline years later. Its
 * Content-Security-Policy forbids every fetch as well, so a browser opening it makes no request even if a future
 * change slipped a link in. Pure: the same model gives the same page.
 */

const STATUS_COLORS: Record<string, string> = {
  ok: '#2b8a3e',
  failed: '#e03131',
  skipped: '#f08c00',
  pending: '#868e96',
};
/** A status this release does not know (a newer schema's): drawn, in a colour of its own. */
const OTHER_STATUS_COLOR = '#7048e8';
const MODE_COLORS: Record<string, string> = { major: '#4263eb', minor: '#f76707' };

export function renderReport(m: ReportModel): string {
  const n = formatCount;
  const ok = m.analysed.files;
  const statusCount = (s: string) => m.statuses.find((x) => x.label === s)?.count ?? 0;
  const cards = [
    card('files', 'files', n(m.totalFiles)),
    ...m.statuses.map((s) =>
      card(`status-${s.label}`, s.label, n(s.count), STATUS_COLORS[s.label] ?? OTHER_STATUS_COLOR),
    ),
    card('hours', 'hours of music', hours(m.analysed.totalSeconds)),
    card('notes', 'notes', n(m.analysed.notes)),
    card('drums', 'with drums', ok ? `${percent(m.drums.withDrums, ok)}` : '–'),
  ];

  const status = horizontalBars({
    id: 'chart-status',
    title: 'Files by status',
    unit: 'files',
    bars: m.statuses.map((s) => ({
      label: s.label,
      value: s.count,
      color: STATUS_COLORS[s.label] ?? OTHER_STATUS_COLOR,
    })),
    valueText: (b) => `${n(b.value)} (${percent(b.value, m.totalFiles)})`,
  });
  const failures = m.failureKinds.length
    ? horizontalBars({
        id: 'chart-failures',
        title: 'Failed and skipped files by reason',
        unit: 'files',
        bars: m.failureKinds.map((k) => ({ label: k.kind, value: k.count, color: STATUS_COLORS.failed })),
      }) +
      table(
        ['reason', 'files', 'for example'],
        m.failureKinds.map((k) => [escapeHtml(k.kind), n(k.count), `<code>${escapeHtml(k.example)}</code>`]),
        'failure-kinds',
      ) +
      (m.failureKindTotal > m.failureKinds.length
        ? `<p class="note">The ${m.failureKinds.length} most frequent of ${n(m.failureKindTotal)} reasons.</p>`
        : '')
    : `<p class="empty">No file failed or was skipped.</p>`;

  const keys = columns({
    id: 'chart-keys',
    title: 'Estimated key and mode',
    categories: [...KEY_TONICS],
    series: KEY_MODES.map((mode) => ({
      name: mode,
      color: MODE_COLORS[mode] ?? BAR_COLOR,
      values: KEY_TONICS.map((t) => m.keys.find((k) => k.tonic === t && k.mode === mode)?.count ?? 0),
    })),
    xTitle: 'tonic',
    yTitle: 'files',
  });
  const histogram = (
    id: string,
    title: string,
    edges: readonly number[],
    counts: number[],
    x: string,
    options: { format?: (e: number) => string; byLowerEdge?: boolean } = {},
  ) =>
    columns({
      id,
      title,
      categories: binLabels(edges, options.format),
      ...(options.byLowerEdge ? { axisLabels: [`< ${edges[0]}`, ...edges.map(String)] } : {}),
      series: [{ name: 'files', color: BAR_COLOR, values: counts }],
      xTitle: x,
      yTitle: 'files',
    });
  const meterBars: Bar[] = m.meters.map((c) => ({
    label: c.label === 'none' ? 'none (4/4 assumed)' : c.label,
    value: c.count,
  }));
  const kitBars: Bar[] = m.drums.kits.map((c) => ({ label: c.label, value: c.count, color: '#0c8599' }));

  const sections = [
    section('status', 'Status', status, `Every file the scans found: ${n(m.totalFiles)}.`),
    section('failures', 'Failure reasons', failures, `${n(m.notOk)} file(s) failed or were skipped.`),
    section('keys', 'Key and mode', keys, keyNote(m)),
    section(
      'tempo',
      'Tempo',
      histogram(
        'chart-tempo',
        'Main tempo (BPM)',
        TEMPO_EDGES,
        m.tempo.counts,
        'beats per minute: 10 BPM a column, from the number under it',
        { byLowerEdge: true },
      ),
      'The tempo each file holds for the longest time (120 when it sets none).',
    ),
    section(
      'meter',
      'Meter',
      horizontalBars({ id: 'chart-meter', title: 'First time signature', unit: 'files', bars: meterBars }),
      `The time signature at the start of each analysed file; the ${REPORT_LIMITS.meters - 1} most frequent, the rest as "other".`,
    ),
    section(
      'duration',
      'Duration',
      histogram('chart-duration', 'Duration', DURATION_EDGES, m.duration.counts, 'duration', { format: formatSeconds }),
      `${hours(m.analysed.totalSeconds)} hours in all; a file lasts until its last note ends.`,
    ),
    section(
      'density',
      'Note density',
      histogram('chart-density', 'Note density', DENSITY_EDGES, m.density.counts, 'notes per second'),
    ),
    section(
      'families',
      'Instrument families',
      horizontalBars({
        id: 'chart-families',
        title: 'Files using each General MIDI instrument family',
        unit: 'files',
        bars: m.families.map((f) => ({ label: f.label, value: f.count })),
        valueText: (b) => `${n(b.value)} (${percent(b.value, ok)})`,
      }),
      'A file counts once in every family one of its channels plays (program changes as recorded per channel).',
    ),
    section(
      'drums',
      'Drums',
      horizontalBars({
        id: 'chart-drums',
        title: 'Files with and without drums',
        unit: 'files',
        bars: [
          { label: 'with drums', value: m.drums.withDrums, color: '#0c8599' },
          { label: 'without drums', value: ok - m.drums.withDrums, color: '#adb5bd' },
        ],
        valueText: (b) => `${n(b.value)} (${percent(b.value, ok)})`,
      }) +
        (kitBars.length ? horizontalBars({ id: 'chart-kits', title: 'Drum kits', unit: 'files', bars: kitBars }) : ''),
      `${n(m.drums.drumNotes)} notes on the drum channel (MIDI channel 10)` +
        (m.drums.withDrums ? `, ${n(Math.round(m.drums.drumNotes / m.drums.withDrums))} per file with drums.` : '.'),
    ),
  ];
  const failedList = m.failedFiles.length
    ? section(
        'failed-files',
        'Files not analysed',
        table(
          ['path', 'status', 'reason'],
          m.failedFiles.map((f) => [`<code>${escapeHtml(f.path)}</code>`, escapeHtml(f.status), escapeHtml(f.reason)]),
          'failed-files',
        ),
        m.notOk > m.failedFiles.length
          ? `The first ${m.failedFiles.length} of ${n(m.notOk)} in path order.`
          : `All ${n(m.notOk)}, in path order.`,
        true,
      )
    : '';

  const pending = statusCount('pending');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="midi-corpus report">
<title>${escapeHtml(`MIDI corpus report: ${m.corpus}`)}</title>
<style>${STYLE}</style>
</head>
<body>
<header>
<h1>MIDI corpus report</h1>
<p class="corpus"><code id="corpus-key">${escapeHtml(m.corpus)}</code></p>
<p class="meta">${[
    `database ${escapeHtml(m.database)}`,
    m.lastScannedAt ? `last scanned ${escapeHtml(shortDate(m.lastScannedAt))}` : 'never scanned',
    m.lastAnalysedAt ? `last analysed ${escapeHtml(shortDate(m.lastAnalysedAt))}` : 'nothing analysed yet',
    `report made ${escapeHtml(shortDate(m.generatedAt))}`,
  ].join(' · ')}</p>
${pending ? `<p class="warning">${n(pending)} file(s) are still pending: the figures below cover the files analysed so far.</p>` : ''}
${m.totalFiles === 0 ? '<p class="warning">This corpus holds no file yet.</p>' : ''}
<div class="cards">${cards.join('')}</div>
</header>
<main>
${sections.join('\n')}
${failedList}
</main>
<footer>Made by <code>midi-corpus report</code>. Everything is in this one file: it makes no network request.
Figures over analysed files count the ${n(ok)} file(s) with status ok.</footer>
</body>
</html>
`;
}

function card(id: string, label: string, value: string, color?: string): string {
  const style = color ? ` style="border-top-color:${color}"` : '';
  return `<div class="card" id="card-${escapeHtml(id)}"${style}><div class="value">${escapeHtml(value)}</div><div class="what">${escapeHtml(label)}</div></div>`;
}

function section(id: string, heading: string, body: string, note?: string, wide = false): string {
  return `<section id="${id}"${wide ? ' class="wide"' : ''}><h2>${escapeHtml(heading)}</h2>${note ? `<p class="note">${escapeHtml(note)}</p>` : ''}${body}</section>`;
}

/** A table whose cells are already HTML (each caller escapes what comes from the database). */
function table(head: string[], rows: string[][], id: string): string {
  return `<table id="table-${id}"><thead><tr>${head.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((row) => `<tr>${row.map((c) => `<td>${c}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

function keyNote(m: ReportModel): string {
  const top = [...m.keys].sort((a, b) => b.count - a.count)[0];
  const most = top && top.count > 0 ? ` Most frequent: ${top.tonic} ${top.mode} (${formatCount(top.count)}).` : '';
  const none = m.noKey ? ` ${formatCount(m.noKey)} file(s) have no pitched notes and no key.` : '';
  return `Estimated from the pitch-class profile of each file (Krumhansl–Schmuckler), not from its key signature.${most}${none}`;
}

/** Hours to one decimal, or two below one hour, where one decimal would say little. */
function hours(seconds: number): string {
  const h = seconds / 3600;
  return h < 1 ? h.toFixed(2) : h.toFixed(1);
}

function percent(part: number, whole: number): string {
  if (whole === 0) return '0%';
  const p = (100 * part) / whole;
  return `${p >= 10 || p === 0 ? Math.round(p) : p.toFixed(1)}%`;
}

/** 2026-12-02 07:05 UTC: minutes are enough, and UTC reads the same everywhere. */
function shortDate(iso: string): string {
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;
}

const STYLE = `
:root { color-scheme: light; --ink: #1f2933; --muted: #616e7c; --line: #e4e7eb; --panel: #fff; --bg: #f5f7fa; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header, main, footer { max-width: 1240px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 24px; }
h1 { margin: 0; font-size: 24px; }
h2 { margin: 0 0 4px; font-size: 17px; }
code { font: 12.5px/1.4 ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; word-break: break-all; }
.corpus { margin: 4px 0 0; font-size: 15px; }
.meta, .note, footer { color: var(--muted); }
.meta { margin: 4px 0 16px; }
.note { margin: 0 0 10px; font-size: 13px; }
.warning { background: #fff4e6; border: 1px solid #ffd8a8; padding: 8px 12px; border-radius: 6px; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(130px, 1fr)); gap: 12px; margin-bottom: 20px; }
.card { background: var(--panel); border: 1px solid var(--line); border-top: 4px solid #4263eb; border-radius: 8px; padding: 10px 14px; }
.card .value { font-size: 22px; font-weight: 650; font-variant-numeric: tabular-nums; }
.card .what { color: var(--muted); font-size: 12.5px; }
main { display: grid; grid-template-columns: repeat(auto-fit, minmax(540px, 1fr)); gap: 16px; }
section { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 16px 18px; min-width: 0; }
section.wide { grid-column: 1 / -1; }
svg.chart { display: block; width: 100%; height: auto; margin: 6px 0 4px; }
svg.chart text { fill: var(--ink); font-family: inherit; }
svg.chart .tick, svg.chart .axis-title { fill: var(--muted); }
svg.chart .value { font-variant-numeric: tabular-nums; }
svg.chart .small { font-size: 10.5px; }
svg.chart .grid { stroke: var(--line); }
svg.chart .axis { stroke: #9aa5b1; }
table { width: 100%; border-collapse: collapse; margin-top: 8px; font-size: 13px; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; }
td:nth-child(2) { font-variant-numeric: tabular-nums; }
.empty { color: var(--muted); font-style: italic; }
footer { padding: 20px 24px 32px; font-size: 12.5px; }
`;
