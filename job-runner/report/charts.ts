import { escapeHtml } from './escape.js';

/**
 * Inline SVG charts for the report: strings built in TypeScript, so the page needs no script, no library and no
 * network to draw. Each chart is an `<svg role="img">` with a <title> and a <desc> that reads its data out (what a
 * screen reader announces), axis titles, and every bar's number written beside it: a chart one cannot read without
 * hovering is not read. Every bar is a `rect.bar` carrying `data-label` and `data-count`, zero bars included, so a
 * test (or a script a user writes) can read the figures back from the page.
 */

export interface Bar {
  label: string;
  value: number;
  /** A CSS colour; the chart's own when absent. */
  color?: string;
}

export interface HorizontalBarsSpec {
  id: string;
  title: string;
  /** What the bars count, for the axis and the description: "files". */
  unit: string;
  bars: Bar[];
  /** The number written at a bar's end; its count by default. */
  valueText?: (bar: Bar) => string;
}

export interface ColumnSeries {
  name: string;
  color: string;
  /** One value per category. */
  values: number[];
}

export interface ColumnsSpec {
  id: string;
  title: string;
  /** Names of the columns: in their tooltips, the description and `data-label`. */
  categories: string[];
  /** What the axis writes under each column when the names are too long for narrow columns (a bin's lower edge). */
  axisLabels?: string[];
  series: ColumnSeries[];
  xTitle: string;
  yTitle: string;
}

export const BAR_COLOR = '#4263eb';

const FONT = 12;
/** The width charts are drawn for: a report section's, so text shows at its size (the SVG scales on other screens). */
const CHART_WIDTH = 560;
/** Longer labels are cut with an ellipsis (the bar's tooltip and the chart's description keep them whole). */
const MAX_LABEL_WIDTH = 240;
/** Width of one character of the label font, for laying labels out without a browser to measure them. */
const CHAR_WIDTH = 6.6;

/** A horizontal bar chart: one row per category, the label at its left and the count at its right. */
export function horizontalBars(spec: HorizontalBarsSpec): string {
  const rowHeight = 24;
  const barHeight = 16;
  const width = CHART_WIDTH;
  const labelWidth = Math.min(MAX_LABEL_WIDTH, Math.max(60, ...spec.bars.map((b) => b.label.length * CHAR_WIDTH + 12)));
  const valueText = spec.valueText ?? ((b: Bar) => formatCount(b.value));
  const valueWidth = Math.max(40, ...spec.bars.map((b) => valueText(b).length * CHAR_WIDTH + 10));
  const plotWidth = width - labelWidth - valueWidth;
  const top = 8;
  const axisHeight = 34;
  const height = top + Math.max(1, spec.bars.length) * rowHeight + axisHeight;
  const max = niceMax(Math.max(0, ...spec.bars.map((b) => b.value)));
  const x = (v: number) => labelWidth + (max === 0 ? 0 : (v / max) * plotWidth);
  const plotBottom = top + Math.max(1, spec.bars.length) * rowHeight;

  const parts: string[] = [];
  for (const t of ticks(max)) {
    parts.push(
      `<line class="grid" x1="${r(x(t))}" y1="${top}" x2="${r(x(t))}" y2="${plotBottom}"/>`,
      `<text class="tick" x="${r(x(t))}" y="${plotBottom + 14}" text-anchor="middle">${formatCount(t)}</text>`,
    );
  }
  spec.bars.forEach((b, i) => {
    const y = top + i * rowHeight + (rowHeight - barHeight) / 2;
    const label = truncate(b.label, Math.floor((MAX_LABEL_WIDTH - 12) / CHAR_WIDTH));
    const text = valueText(b);
    parts.push(
      `<text class="label" x="${r(labelWidth - 8)}" y="${r(y + barHeight / 2)}" text-anchor="end" dominant-baseline="central">${escapeHtml(label)}</text>`,
      `<rect class="bar" x="${r(labelWidth)}" y="${r(y)}" width="${r(x(b.value) - labelWidth)}" height="${barHeight}" rx="2" fill="${b.color ?? BAR_COLOR}" data-label="${escapeHtml(b.label)}" data-count="${b.value}"><title>${escapeHtml(`${b.label}: ${text}`)}</title></rect>`,
      `<text class="value" x="${r(x(b.value) + 6)}" y="${r(y + barHeight / 2)}" dominant-baseline="central">${escapeHtml(text)}</text>`,
    );
  });
  parts.push(
    `<line class="axis" x1="${labelWidth}" y1="${top}" x2="${labelWidth}" y2="${plotBottom}"/>`,
    `<text class="axis-title" x="${r(labelWidth + plotWidth / 2)}" y="${height - 4}" text-anchor="middle">${escapeHtml(spec.unit)}</text>`,
  );
  const desc = spec.bars.map((b) => `${b.label}: ${valueText(b)}`).join('; ');
  return svg(spec.id, spec.title, desc || 'no data', width, height, parts);
}

/** A column chart (a histogram, or grouped columns when there are several series), with both axes titled. */
export function columns(spec: ColumnsSpec): string {
  const width = CHART_WIDTH;
  const left = 56;
  const right = 12;
  const top = spec.series.length > 1 ? 30 : 14;
  const axisLabels = spec.axisLabels ?? spec.categories;
  const longest = Math.max(1, ...axisLabels.map((c) => c.length));
  const slot = (width - left - right) / Math.max(1, spec.categories.length);
  // Labels turn when they would not fit under their column; turned, they need room below in proportion to length.
  const turned = longest * CHAR_WIDTH > slot - 4;
  const labelHeight = turned ? Math.min(90, longest * CHAR_WIDTH * 0.72 + 12) : 18;
  const plotHeight = 190;
  const plotBottom = top + plotHeight;
  const height = plotBottom + labelHeight + 26;
  const max = niceMax(Math.max(0, ...spec.series.flatMap((s) => s.values)));
  const y = (v: number) => plotBottom - (max === 0 ? 0 : (v / max) * plotHeight);
  const groupWidth = slot * 0.78;
  const columnWidth = groupWidth / Math.max(1, spec.series.length);

  const parts: string[] = [];
  for (const t of ticks(max)) {
    parts.push(
      `<line class="grid" x1="${left}" y1="${r(y(t))}" x2="${width - right}" y2="${r(y(t))}"/>`,
      `<text class="tick" x="${left - 6}" y="${r(y(t))}" text-anchor="end" dominant-baseline="central">${formatCount(t)}</text>`,
    );
  }
  spec.categories.forEach((category, i) => {
    const slotX = left + i * slot;
    spec.series.forEach((s, j) => {
      const value = s.values[i] ?? 0;
      const x = slotX + (slot - groupWidth) / 2 + j * columnWidth;
      const name = spec.series.length > 1 ? `${category} ${s.name}` : category;
      parts.push(
        `<rect class="bar" x="${r(x)}" y="${r(y(value))}" width="${r(Math.max(1, columnWidth - 1))}" height="${r(plotBottom - y(value))}" fill="${s.color}" data-label="${escapeHtml(name)}" data-count="${value}"><title>${escapeHtml(`${name}: ${formatCount(value)}`)}</title></rect>`,
      );
      if (value > 0)
        parts.push(
          `<text class="value small" x="${r(x + columnWidth / 2)}" y="${r(y(value) - 4)}" text-anchor="middle">${formatCount(value)}</text>`,
        );
    });
    const cx = slotX + slot / 2;
    const text = escapeHtml(axisLabels[i] ?? category);
    parts.push(
      turned
        ? `<text class="label" x="${r(cx)}" y="${plotBottom + 10}" text-anchor="end" transform="rotate(-40 ${r(cx)} ${plotBottom + 10})">${text}</text>`
        : `<text class="label" x="${r(cx)}" y="${plotBottom + 14}" text-anchor="middle">${text}</text>`,
    );
  });
  parts.push(
    `<line class="axis" x1="${left}" y1="${plotBottom}" x2="${width - right}" y2="${plotBottom}"/>`,
    `<text class="axis-title" x="${r(left + (width - left - right) / 2)}" y="${height - 6}" text-anchor="middle">${escapeHtml(spec.xTitle)}</text>`,
    `<text class="axis-title" x="14" y="${r(top + plotHeight / 2)}" text-anchor="middle" transform="rotate(-90 14 ${r(top + plotHeight / 2)})">${escapeHtml(spec.yTitle)}</text>`,
  );
  if (spec.series.length > 1) {
    let lx = left;
    for (const s of spec.series) {
      parts.push(
        `<rect class="legend" x="${r(lx)}" y="6" width="12" height="12" rx="2" fill="${s.color}"/>`,
        `<text class="label" x="${r(lx + 17)}" y="12" dominant-baseline="central">${escapeHtml(s.name)}</text>`,
      );
      lx += 30 + s.name.length * CHAR_WIDTH;
    }
  }
  const desc = spec.series
    .map((s) => {
      const values = spec.categories.map((c, i) => `${c}: ${formatCount(s.values[i] ?? 0)}`).join(', ');
      return spec.series.length > 1 ? `${s.name}: ${values}` : values;
    })
    .join('; ');
  return svg(spec.id, spec.title, `${spec.yTitle} by ${spec.xTitle}. ${desc}`, width, height, parts);
}

function svg(id: string, title: string, desc: string, width: number, height: number, parts: string[]): string {
  const h = Math.ceil(height);
  return (
    `<svg class="chart" id="${escapeHtml(id)}" role="img" aria-labelledby="${escapeHtml(id)}-title ${escapeHtml(id)}-desc" ` +
    `viewBox="0 0 ${width} ${h}" width="${width}" height="${h}" font-size="${FONT}">` +
    `<title id="${escapeHtml(id)}-title">${escapeHtml(title)}</title><desc id="${escapeHtml(id)}-desc">${escapeHtml(desc)}</desc>` +
    `${parts.join('')}</svg>`
  );
}

/** The top of the value axis: 1, 2 or 5 times a power of ten, at or above `max` (0 for an empty chart). */
export function niceMax(max: number): number {
  if (max <= 0) return 0;
  const power = 10 ** Math.floor(Math.log10(max));
  for (const step of [1, 2, 5, 10]) if (step * power >= max) return step * power;
  return 10 * power;
}

/** Whole-number ticks from 0 to `max`, at most six of them. */
export function ticks(max: number): number[] {
  if (max <= 0) return [0];
  const candidates = [1, 2, 5].flatMap((s) => [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((p) => s * 10 ** p));
  const step = candidates.sort((a, b) => a - b).find((s) => max / s <= 5) ?? max;
  const out: number[] = [];
  for (let t = 0; t <= max + 1e-9; t += step) out.push(t);
  return out;
}

export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

function truncate(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, Math.max(1, max - 1))}…`;
}

/** Coordinates to one decimal: smaller pages, the same picture. */
function r(n: number): string {
  return String(Math.round(n * 10) / 10);
}
