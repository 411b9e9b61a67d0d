/**
 * The metric names a PromQL expression reads, for checking dashboards and alerts against the names the controller
 * really exports. Not a PromQL parser: it removes what cannot hold a metric name (strings, label matchers, ranges,
 * the label lists of by/without/on/ignoring/group_left/group_right, numbers and durations), then every identifier
 * left that is not a keyword and not a function or aggregation (followed by `(`) is a metric name. Enough for the
 * expressions of this chart; its own tests below show what it sees.
 */
const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'atan2', 'inf', 'nan']);

export function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\b/g, ' ');
  const names = new Set<string>();
  for (const m of stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const before = stripped[m.index - 1];
    if (before !== undefined && /[0-9.$]/.test(before)) continue; // 1e3, 0.5, $variable
    if (/^\s*\(/.test(stripped.slice(m.index + m[0].length))) continue; // a function or an aggregation
    if (KEYWORDS.has(m[0].toLowerCase())) continue;
    names.add(m[0]);
  }
  return [...names].sort();
}

/** Grafana's `label_values(expr, label)` and `label_values(label)` variable queries: the metrics of the expr part. */
export function variableQueryMetricNames(query: string): string[] {
  const m = /^\s*label_values\((.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*$/s.exec(query);
  if (m) return metricNames(m[1]!);
  if (/^\s*label_values\(\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*$/.test(query)) return [];
  return metricNames(query);
}
