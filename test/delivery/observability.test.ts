import { spawn } from 'node:child_process';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ControllerMetrics } from '../../controller/metrics.js';
import { clusterSupport, ensureClusterBinaries } from '../cluster/binaries.js';
import { metricNames, variableQueryMetricNames } from './promql.js';
import { chartDir, findObject, parseObjects, repoRoot, run, type KubeObject } from './support.js';

/**
 * The chart's Grafana dashboard and PrometheusRule alerts: rendered by `helm template` with their switches on (the
 * helm test/cluster/build.sh builds, or HELM), every query checked against the names the controller's own registry
 * exposes, and the rules checked and unit-tested by promtool (built from its Go module by promtool.sh, or
 * MIDI_CORPUS_PROMTOOL). Without Go the suite skips loudly, except under CI=true, where it fails.
 */
const support = clusterSupport();
const skip = !process.env.HELM && !support.ok && process.env.CI !== 'true';
if (skip && !support.ok) console.warn(`SKIPPED dashboard and alert tests: ${support.reason}`);

const KUBE_VERSION = '1.34.0';
const SWITCHES = ['metrics.grafanaDashboard.enabled=true', 'metrics.prometheusRule.enabled=true'];

let helm: string;
beforeAll(async () => {
  if (skip) return;
  helm = process.env.HELM ?? path.join(await ensureClusterBinaries(), 'helm');
}, 90 * 60_000);

async function template(...set: string[]): Promise<KubeObject[]> {
  const args = ['template', 'midi-corpus-operator', chartDir, '--namespace', 'midi-corpus-system'];
  args.push('--kube-version', KUBE_VERSION, ...set.flatMap((s) => ['--set', s]));
  return parseObjects((await run(helm, args, { maxBuffer: 16 << 20 })).stdout);
}

/** Every sample name the controller's registry can expose: histograms add _bucket, _sum and _count. */
async function exportedNames(): Promise<Set<string>> {
  const names = new Set<string>();
  for (const m of await new ControllerMetrics().registry.getMetricsAsJSON()) {
    names.add(m.name);
    if (String(m.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(m.name + s);
    if (String(m.type) === 'summary') for (const s of ['_sum', '_count']) names.add(m.name + s);
  }
  return names;
}

interface Dashboard {
  panels: Array<{ title: string; type: string; targets?: Array<{ expr: string }> }>;
  templating: { list: Array<{ name: string; type: string; query?: { query: string } }> };
}
interface RuleGroup {
  name: string;
  rules: Array<{ alert?: string; record?: string; expr: string; for?: string }>;
}

describe('what a PromQL expression reads, as the checks below see it', () => {
  it.each([
    ['rate(process_cpu_seconds_total{job=~"$job"}[$__rate_interval])', ['process_cpu_seconds_total']],
    [
      'sum by (namespace, midicorpus) (increase(a_total[15m])) / on (namespace) group_left (x) b > 0.1 and c offset 5m',
      ['a_total', 'b', 'c'],
    ],
    ['histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m])))', ['h_bucket']],
    ['max(up) without (instance) == bool 1e3', ['up']],
    ['x{label="a{b}"} unless y', ['x', 'y']],
  ])('%s reads %j', (expr, names) => {
    expect(metricNames(expr)).toEqual(names);
  });

  it('reads only the expression of a label_values variable query, not its label', () => {
    expect(
      variableQueryMetricNames('label_values(midi_corpus_corpus_phase{namespace=~"$namespace"}, midicorpus)'),
    ).toEqual(['midi_corpus_corpus_phase']);
  });
});

describe.skipIf(skip)('the Grafana dashboard and the alerts in the chart', () => {
  let objects: KubeObject[];
  let exported: Set<string>;
  beforeAll(async () => {
    objects = await template(...SWITCHES);
    exported = await exportedNames();
  });

  it('are left out by default', async () => {
    const kinds = (await template()).map((o) => `${o.kind}/${o.metadata.name}`);
    expect(kinds).not.toContain('PrometheusRule/midi-corpus-operator');
    expect(kinds).not.toContain('ConfigMap/midi-corpus-operator-dashboard');
  });

  it("pass helm lint --strict when switched on, with the ServiceMonitor keeping the corpora's namespace label", async () => {
    const set = [...SWITCHES, 'metrics.serviceMonitor.enabled=true'].flatMap((s) => ['--set', s]);
    const { stdout } = await run(helm, ['lint', '--strict', '--kube-version', KUBE_VERSION, chartDir, ...set]);
    expect(stdout).toContain('0 chart(s) failed');
    const monitor = findObject(await template(...SWITCHES, 'metrics.serviceMonitor.enabled=true'), 'ServiceMonitor');
    expect(monitor.spec).toMatchObject({ endpoints: [{ port: 'metrics', honorLabels: true }] });
  });

  it("put the dashboard in a ConfigMap labelled for Grafana's sidecar, in the release namespace", () => {
    const cm = findObject(objects, 'ConfigMap', 'midi-corpus-operator-dashboard');
    expect(cm.metadata.namespace).toBe('midi-corpus-system');
    expect(cm.metadata.labels).toMatchObject({ grafana_dashboard: '1' });
    const data = cm.data as Record<string, string>;
    expect(Object.keys(data)).toEqual(['midi-corpus-operator.json']);
    const dashboard = JSON.parse(data['midi-corpus-operator.json']!) as Dashboard & { uid: string };
    expect(dashboard.uid).toBe('midi-corpus-operator');
    expect(dashboard.panels.filter((p) => p.type !== 'row').length).toBeGreaterThanOrEqual(10);
  });

  it('query, in every panel and variable, only metrics the controller exports', () => {
    const cm = findObject(objects, 'ConfigMap', 'midi-corpus-operator-dashboard');
    const dashboard = JSON.parse((cm.data as Record<string, string>)['midi-corpus-operator.json']!) as Dashboard;
    const unknown: string[] = [];
    const read = new Set<string>();
    for (const panel of dashboard.panels.filter((p) => p.type !== 'row')) {
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
      for (const { expr } of panel.targets ?? []) {
        const names = metricNames(expr);
        expect(names.length, `${panel.title}: ${expr}`).toBeGreaterThan(0);
        for (const n of names) {
          if (exported.has(n)) read.add(n);
          else unknown.push(`${panel.title}: ${n}`);
        }
      }
    }
    for (const v of dashboard.templating.list.filter((x) => x.type === 'query'))
      for (const n of variableQueryMetricNames(v.query!.query)) if (!exported.has(n)) unknown.push(`$${v.name}: ${n}`);
    expect(unknown).toEqual([]);
    // The per-corpus series are what the dashboard is for: each one is shown somewhere.
    for (const n of exported) if (n.startsWith('midi_corpus_corpus_')) expect(read, n).toContain(n);
  });

  it('alert on corpora stuck, budgets saturated and failure rates, each on metrics the controller exports', () => {
    const rule = findObject(objects, 'PrometheusRule', 'midi-corpus-operator');
    expect(rule.apiVersion).toBe('monitoring.coreos.com/v1');
    const groups = (rule.spec as { groups: RuleGroup[] }).groups;
    const rules = groups.flatMap((g) => g.rules);
    expect(rules.map((r) => r.alert)).toEqual([
      'MidiCorpusStuck',
      'MidiCorpusBudgetSaturated',
      'MidiCorpusFailureRate',
    ]);
    const unknown = rules.flatMap((r) =>
      metricNames(r.expr)
        .filter((n) => !exported.has(n))
        .map((n) => `${r.alert}: ${n}`),
    );
    expect(unknown).toEqual([]);
    for (const r of rules) expect(metricNames(r.expr).length, r.alert).toBeGreaterThan(1);
  });
});

/** promtool's exit code and output. */
function promtool(bin: string, args: string[], cwd: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code: code ?? -1, out }));
  });
}

/** The path of promtool, built by test/delivery/promtool.sh on first use (minutes), then from the cache. */
function ensurePromtool(): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [path.join(repoRoot, 'test', 'delivery', 'promtool.sh')], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      const bin = out.trim().split('\n').pop() ?? '';
      if (code === 0 && bin) resolve(bin);
      else reject(new Error(`test/delivery/promtool.sh failed with exit code ${code}`));
    });
  });
}

describe.skipIf(skip)("promtool on the chart's alerts", () => {
  let bin: string;
  let dir: string;
  beforeAll(async () => {
    bin = await ensurePromtool();
    dir = await mkdtemp(path.join(tmpdir(), 'mco-alerts-'));
    // The rules exactly as the chart renders them (default thresholds), as a Prometheus rule file.
    const rule = findObject(await template(...SWITCHES), 'PrometheusRule');
    await writeFile(path.join(dir, 'rules.yaml'), stringify({ groups: (rule.spec as { groups: RuleGroup[] }).groups }));
    await copyFile(path.join(repoRoot, 'test', 'delivery', 'alerts.test.yaml'), path.join(dir, 'alerts.test.yaml'));
  }, 90 * 60_000); // a cold machine builds promtool first
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('finds the rules valid (promtool check rules)', async () => {
    const r = await promtool(bin, ['check', 'rules', 'rules.yaml'], dir);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain('SUCCESS: 3 rules found');
  });

  it('fires each alert on the series that should fire it, and not on the others (promtool test rules)', async () => {
    const r = await promtool(bin, ['test', 'rules', 'alerts.test.yaml'], dir);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain('SUCCESS');
  });
});
