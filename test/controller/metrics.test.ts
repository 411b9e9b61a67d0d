import { describe, expect, it } from 'vitest';
import { createLogger } from '../../common/log.js';
import type { MidiCorpus, MidiCorpusStatus } from '../../controller/api/v1alpha1/midicorpus.js';
import type { BudgetPlan, CorpusBudget } from '../../controller/budget/connection-budget.js';
import { Controller } from '../../controller/controller.js';
import { ControllerMetrics } from '../../controller/metrics.js';
import { startHttp } from '../../controller/runtime/http.js';
import type { Informer, InformerEvent } from '../../controller/runtime/informer.js';
import { makeCorpus } from './fixtures.js';
import { ManualClock } from '../support/manual-clock.js';
import { FakeDatabase } from './reconcile/fake-database.js';
import { World } from './reconcile/world.js';

/** The sample lines of an exposition text, `name{labels} value`, for matching with toContain / not.toContain. */
const samples = (text: string) => text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
const seriesOf = (text: string, name: string) =>
  samples(text).filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));

const running: MidiCorpusStatus = {
  phase: 'Running',
  files: { total: 1000, processed: 400, failed: 7 },
  shards: { total: 10, succeeded: 4, failed: 0 },
  pods: { active: 3, terminating: 1 },
  budget: { poolKey: 'server-0123456789abcdef', share: 9, perPod: 3, parallelism: 3, inUse: 12 },
  conditions: [
    {
      type: 'BudgetLimited',
      status: 'True',
      reason: 'BudgetShared',
      message: 'Sharing.',
      lastTransitionTime: '2025-01-01T00:00:00Z',
    },
  ],
};

function plan(corpora: string[]): BudgetPlan {
  const share: CorpusBudget = { perPod: 3, planned: 3, share: 9, parallelism: 3, inUse: 9, scanFits: true };
  return {
    limits: { maxConnections: 100, reservedConnections: 10, headroom: 2 },
    operator: 1,
    foreign: 4,
    allowance: 83,
    corpora: new Map(corpora.map((k) => [k, share])),
  };
}

describe('ControllerMetrics', () => {
  it("exposes the process and Node.js metrics under prom-client's standard names, not renamed", async () => {
    const text = await new ControllerMetrics().registry.metrics();
    for (const name of [
      'process_cpu_seconds_total',
      'process_cpu_user_seconds_total',
      'process_resident_memory_bytes',
      'process_start_time_seconds',
      'process_open_fds',
      'nodejs_heap_size_used_bytes',
      'nodejs_heap_size_total_bytes',
      'nodejs_eventloop_lag_seconds',
      'nodejs_gc_duration_seconds',
      'nodejs_version_info',
    ])
      expect(text, name).toMatch(new RegExp(`^# TYPE ${name} `, 'm'));
    expect(text).not.toMatch(/midi_corpus_operator_/);
  });

  it("exports a corpus's status as series labelled with its namespace and name: phase 0/1 per phase, files, shards, budget, pods", async () => {
    const m = new ControllerMetrics();
    m.recordObjects([makeCorpus({ name: 'bach', status: running })], []);
    const text = await m.registry.metrics();
    const l = 'namespace="music",midicorpus="bach"';
    expect(seriesOf(text, 'midi_corpus_corpus_phase')).toEqual([
      `midi_corpus_corpus_phase{${l},phase="Pending"} 0`,
      `midi_corpus_corpus_phase{${l},phase="Scanning"} 0`,
      `midi_corpus_corpus_phase{${l},phase="Running"} 1`,
      `midi_corpus_corpus_phase{${l},phase="Succeeded"} 0`,
      `midi_corpus_corpus_phase{${l},phase="Failed"} 0`,
      `midi_corpus_corpus_phase{${l},phase="Suspended"} 0`,
      `midi_corpus_corpus_phase{${l},phase="Invalid"} 0`,
    ]);
    expect(seriesOf(text, 'midi_corpus_corpus_files')).toEqual([
      `midi_corpus_corpus_files{${l},kind="total"} 1000`,
      `midi_corpus_corpus_files{${l},kind="processed"} 400`,
      `midi_corpus_corpus_files{${l},kind="failed"} 7`,
    ]);
    expect(seriesOf(text, 'midi_corpus_corpus_files_processed_total')).toEqual([
      `midi_corpus_corpus_files_processed_total{${l}} 400`,
    ]);
    expect(seriesOf(text, 'midi_corpus_corpus_files_failed_total')).toEqual([
      `midi_corpus_corpus_files_failed_total{${l}} 7`,
    ]);
    expect(seriesOf(text, 'midi_corpus_corpus_shards')).toEqual([
      `midi_corpus_corpus_shards{${l},kind="total"} 10`,
      `midi_corpus_corpus_shards{${l},kind="succeeded"} 4`,
      `midi_corpus_corpus_shards{${l},kind="failed"} 0`,
    ]);
    const b = `${l},budget="server-0123456789abcdef"`;
    expect(seriesOf(text, 'midi_corpus_corpus_budget_connections')).toEqual([
      `midi_corpus_corpus_budget_connections{${b},kind="share"} 9`,
      `midi_corpus_corpus_budget_connections{${b},kind="per_pod"} 3`,
      `midi_corpus_corpus_budget_connections{${b},kind="in_use"} 12`,
    ]);
    expect(seriesOf(text, 'midi_corpus_corpus_budget_limited')).toEqual([`midi_corpus_corpus_budget_limited{${b}} 1`]);
    expect(seriesOf(text, 'midi_corpus_corpus_runner_pods')).toEqual([
      `midi_corpus_corpus_runner_pods{${l},kind="parallelism"} 3`,
      `midi_corpus_corpus_runner_pods{${l},kind="active"} 3`,
      `midi_corpus_corpus_runner_pods{${l},kind="terminating"} 1`,
    ]);
  });

  it('advances the file counters by what the status counts grew, and takes no step back when they shrink', async () => {
    const m = new ControllerMetrics();
    const at = (processed: number, failed: number) =>
      makeCorpus({ name: 'bach', status: { ...running, files: { total: 1000, processed, failed } } });
    const counted = async () => [
      (await m.corpusFilesProcessed.get()).values[0]?.value,
      (await m.corpusFilesFailed.get()).values[0]?.value,
    ];
    m.recordObjects([at(400, 7)], []);
    m.recordObjects([at(650, 9)], []);
    expect(await counted()).toEqual([650, 9]);
    m.recordObjects([at(650, 9)], []);
    expect(await counted()).toEqual([650, 9]);
    // A run again starts its counts afresh: what it records from there on is added.
    m.recordObjects([at(100, 1)], []);
    m.recordObjects([at(300, 2)], []);
    expect(await counted()).toEqual([850, 10]);
  });

  it('starts new counters for a corpus deleted and created again under the same name', async () => {
    const m = new ControllerMetrics();
    m.recordObjects([makeCorpus({ name: 'bach', uid: 'uid-1', status: running })], []);
    m.recordObjects([makeCorpus({ name: 'bach', uid: 'uid-2', status: { ...running, files: { processed: 5 } } })], []);
    expect((await m.corpusFilesProcessed.get()).values.map((v) => v.value)).toEqual([5]);
  });

  it("removes every series of a deleted corpus, and keeps the others'", async () => {
    const m = new ControllerMetrics();
    const bach = makeCorpus({ name: 'bach', uid: 'uid-b', status: running });
    const ravel = makeCorpus({ name: 'ravel', uid: 'uid-r', namespace: 'other', status: running });
    m.recordObjects([bach, ravel], []);
    m.recordObjects([ravel], []);
    const corpusSeries = samples(await m.registry.metrics()).filter((s) => s.startsWith('midi_corpus_corpus_'));
    expect(corpusSeries.length).toBe(7 + 3 + 1 + 1 + 3 + 3 + 1 + 3); // ravel's, every kind
    expect(corpusSeries.filter((s) => s.includes('midicorpus="bach"'))).toEqual([]);
  });

  it('exports no budget or runner-pod series for a finished corpus, only its phase, files and shards', async () => {
    const m = new ControllerMetrics();
    m.recordObjects([makeCorpus({ name: 'bach', status: { ...running, phase: 'Succeeded' } })], []);
    const text = await m.registry.metrics();
    expect(seriesOf(text, 'midi_corpus_corpus_phase')).toContain(
      'midi_corpus_corpus_phase{namespace="music",midicorpus="bach",phase="Succeeded"} 1',
    );
    expect(seriesOf(text, 'midi_corpus_corpus_files')).toHaveLength(3);
    for (const name of ['budget_connections', 'budget_limited', 'runner_pods'])
      expect(seriesOf(text, `midi_corpus_corpus_${name}`), name).toEqual([]);
  });

  it("removes a budget's series once none of its corpora is left unfinished, and keeps a budget a live corpus moved away from only while another corpus uses it", async () => {
    const m = new ControllerMetrics();
    const budgets = async () => [...new Set((await m.budget.get()).values.map((v) => v.labels.budget))].sort();
    const a = makeCorpus({ name: 'a', uid: 'uid-a', status: running });
    const b = makeCorpus({ name: 'b', uid: 'uid-b', status: running });
    m.recordBudget('server-1', plan(['music/a', 'music/b']));
    m.recordObjects([a, b], []);
    expect(await budgets()).toEqual(['server-1']);
    expect((await m.budget.get()).values.map((v) => [v.labels.kind, v.value])).toEqual([
      ['limit', 100],
      ['allowance', 83],
      ['in_use', 1 + 9 + 9],
      ['foreign', 4],
    ]);
    m.recordObjects([b], []); // a deleted: b still draws on the budget
    expect(await budgets()).toEqual(['server-1']);
    m.recordObjects([{ ...b, status: { ...running, phase: 'Succeeded' } }], []); // b finished
    expect(await budgets()).toEqual([]);

    m.recordBudget('server-1', plan(['music/a']));
    m.recordBudget('server-2', plan(['music/a'])); // a's Secret now leads to another server
    m.recordObjects([a], []);
    expect(await budgets()).toEqual(['server-2']);
  });
});

/** An informer over the World's objects, listed at once; events only when the test sends them. */
class WorldInformer<T extends { metadata?: { name?: string; namespace?: string } }> implements Informer<T> {
  readonly synced = true;
  constructor(private readonly objects: () => readonly T[]) {}
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  list(): readonly T[] {
    return this.objects();
  }
  get(name: string, namespace?: string): T | undefined {
    return this.objects().find((o) => o.metadata?.name === name && o.metadata?.namespace === namespace);
  }
}

describe("the controller's /metrics endpoint", () => {
  it('shows the series of a corpus after its first pass, and none of them after it is deleted', async () => {
    const world = new World();
    // A finished corpus, and one whose Secret is missing (the pass makes it Invalid): neither needs a database.
    world.addCorpus(makeCorpus({ name: 'done', uid: 'uid-done', status: { ...running, phase: 'Succeeded' } }));
    world.addCorpus(makeCorpus({ name: 'typo', uid: 'uid-typo', spec: { database: { secretRef: { name: 'nope' } } } }));
    let corpusEvent: (event: InformerEvent, corpus: MidiCorpus) => void = () => {};
    const controller = new Controller({
      informers: {
        corpora: (handlers) => {
          corpusEvent = handlers.onEvent;
          return new WorldInformer(() => world.corpora());
        },
        jobs: () => new WorldInformer(() => world.jobs()),
        pods: () => new WorldInformer(() => world.pods()),
      },
      writer: world,
      reader: world,
      database: new FakeDatabase(world.secrets),
      serve: (o) => startHttp({ healthPort: 0, metricsPort: 0, host: '127.0.0.1', ...o }),
      runnerImage: 'example/midi-corpus:test',
      clock: new ManualClock(),
      log: createLogger({ level: 'silent' }),
      onLostLeadership: () => {},
    });
    const ports = await controller.start();
    try {
      const scrape = async () => {
        const res = await fetch(`http://127.0.0.1:${ports.metrics}/metrics`);
        expect(res.status).toBe(200);
        return res.text();
      };
      const settled = async (done: (text: string) => boolean) => {
        for (let i = 0; i < 100; i++) {
          const text = await scrape();
          if (done(text)) return text;
          await new Promise((r) => setTimeout(r, 10));
        }
        throw new Error(`the metrics never settled:\n${await scrape()}`);
      };
      const typoInvalid = 'midi_corpus_corpus_phase{namespace="music",midicorpus="typo",phase="Invalid"} 1';
      let text = await settled((t) => samples(t).includes(typoInvalid));
      expect(samples(text)).toContain(
        'midi_corpus_corpus_phase{namespace="music",midicorpus="done",phase="Succeeded"} 1',
      );
      expect(samples(text)).toContain(
        'midi_corpus_corpus_files_processed_total{namespace="music",midicorpus="done"} 400',
      );
      expect(seriesOf(text, 'process_resident_memory_bytes')).toHaveLength(1);

      for (const name of ['done', 'typo']) {
        const gone = world.corpus('music', name)!;
        world.corpusMap.delete(`music/${name}`);
        corpusEvent('delete', gone);
      }
      text = await settled((t) => !t.includes('midicorpus="'));
      expect(samples(text).filter((s) => s.startsWith('midi_corpus_corpus_'))).toEqual([]);
      expect(samples(text)).toContain('midi_corpus_leader 1');
    } finally {
      await controller.stop();
    }
  });
});
