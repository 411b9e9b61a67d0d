/**
 * End to end on real nodes, with the operator installed by its Helm chart: what happens to a run when the machines
 * under it change. A node drained and removed as the cluster autoscaler scales down (and another added), a node lost
 * outright, the runner pods' restricted security context as the kubelet and runc enforce it, and the two failures a
 * user meets first on a real cluster (an image that cannot be pulled, shown in the PodsFailing condition; a runner
 * within its memory limit on hostile files).
 *
 * Every scenario samples the server's own connection count through the whole run (support/database.ts) and compares
 * its peak with the budget the controller wrote in the corpus's status.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect, it } from 'vitest';
import { CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { eventually, describeWithCluster } from '../cluster/vitest.js';
import { ConnectionSampler, WriteGate, filesUnder, recordedFiles, recordedPerShard } from './support/database.js';
import { CorpusObserver } from './support/observe.js';
import {
  applyOrFail,
  completionIndex,
  controllerPods,
  corpusObject,
  installWithHelm,
  isRunning,
  jobPods,
  readCorpus,
  waitForPhase,
} from './support/operator.js';
import { budgetOf, expectEveryFileRecordedOnce } from './support/scenario.js';
import { MAX_WARNINGS_PER_FILE } from '../../job-runner/analysis/warnings.js';
import {
  longLatin1Name,
  manyMalformedTempos,
  manyNotes,
  manyUnknownChunks,
} from '../../job-runner/synth/hostile-inputs.js';
import { SCENARIO_TIMEOUT_MS, useOperatorSuite } from './support/suite.js';

const SAFE_TO_EVICT = 'cluster-autoscaler.kubernetes.io/safe-to-evict';

describeWithCluster('end to end on real nodes that change under the run', () => {
  const { cluster, scenario, keepReport } = useOperatorSuite(installWithHelm);
  const core = () => cluster().kc.makeApiClient(CoreV1Api);
  const nodeOf = (pod: V1Pod) => pod.spec?.nodeName;

  /** The node holding the most of these pods (ties: the first by name). */
  const busiest = (pods: V1Pod[]): string => {
    const counts = new Map<string, number>();
    for (const p of pods) if (nodeOf(p)) counts.set(nodeOf(p)!, (counts.get(nodeOf(p)!) ?? 0) + 1);
    return [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]![0];
  };

  /** What the Job controller noted on each index's successful pod: its failures, counted and ignored. */
  const retriesByIndex = async (namespace: string, job: string) => {
    const pods = (await jobPods(cluster(), namespace, job)).filter((p) => p.status?.phase === 'Succeeded');
    return new Map(
      pods.map((p) => [
        completionIndex(p)!,
        {
          failed: p.metadata?.annotations?.['batch.kubernetes.io/job-index-failure-count'],
          ignored: p.metadata?.annotations?.['batch.kubernetes.io/job-index-ignored-failure-count'],
        },
      ]),
    );
  };

  /**
   * A corpus of 6 shards of 100 files in namespace `namespace`, on a server of max_connections 30, with every runner
   * held mid-shard: its first batch (50 files) committed, the next one waiting at the gate. The connections are
   * sampled and the corpus observed from before it is applied.
   */
  const startHeldRun = async (namespace: string, seed: number) => {
    const s = await scenario(namespace, 30);
    const { claim, files } = await s.corpus('songs', { files: 600, seed });
    const key = `${namespace}/songs`;
    const gate = await WriteGate.install(s.ownerUrl, 60);
    await gate.freeze(key);
    const sampler = new ConnectionSampler(s.db.url);
    await sampler.start();
    const observer = new CorpusObserver(cluster(), namespace, 'songs').start();
    await applyOrFail(cluster(), corpusObject({ name: 'songs', namespace, claim, filesPerShard: 100 }));
    await eventually(
      'all 6 shards half recorded, their next batch held at the gate',
      async () => {
        const shards = await recordedPerShard(s.db.url, key);
        return shards.size === 6 && [...shards.values()].every((x) => x.done >= 1) && (await gate.waiting(key)) === 6;
      },
      180_000,
    );
    const runners = (await jobPods(cluster(), namespace, 'songs-run')).filter(isRunning);
    /** Ends the sampling and checks the connection peak over the whole run against the budget in status. */
    const expectWithinBudget = async (scenarioName: string) => {
      const history = await observer.stop();
      const figures = await sampler.stop();
      const report = budgetOf(scenarioName, 30, history.budget, figures, history.peakLivePods);
      keepReport(report);
      expect(figures.peak.everyone).toBeLessThanOrEqual(report.budget);
      expect(figures.peak.runners).toBeLessThanOrEqual(report.runnerCeiling);
    };
    return { s, files, key, gate, runners, expectWithinBudget };
  };

  it(
    'drains a node as the cluster autoscaler scales down (Eviction API, disruption budget, safe-to-evict), removes it and adds a new one mid-run: every file once, no retry burnt',
    async () => {
      const { s, files, key, gate, runners, expectWithinBudget } = await startHeldRun('drain', 61);
      let drained = '';
      try {
        // The autoscaler drains only nodes whose pods it may move: runner pods say so despite their emptyDir /tmp.
        for (const pod of runners) expect(pod.metadata?.annotations?.[SAFE_TO_EVICT]).toBe('true');
        drained = busiest(runners);
        const onDrained = runners.filter((p) => nodeOf(p) === drained).map((p) => p.metadata!.name!);
        expect(onDrained.length).toBeGreaterThan(0);

        // Scale-up first (a new node), then the scale-down of the busiest one: cordon, evictions (the controller's
        // PodDisruptionBudget allows one of its two replicas at a time), the node stopped and its Node object deleted.
        await cluster().addNode({ name: 'node-3' });
        await cluster().removeNode(drained);
        expect(cluster().nodeNames()).not.toContain(drained);
        expect((await core().listNode()).items.map((n) => n.metadata?.name)).not.toContain(drained);
        expect((await controllerPods(cluster())).filter(isRunning)).toHaveLength(2);

        await gate.thaw(key);
        const status = await waitForPhase(cluster(), s.namespace, 'songs', ['Succeeded', 'Failed']);
        await expectEveryFileRecordedOnce(s.db.url, key, files, { allGood: true });
        expect(status).toMatchObject({
          phase: 'Succeeded',
          files: { total: 600, processed: 600, failed: 0 },
          shards: { total: 6, succeeded: 6, failed: 0 },
        });

        // The evicted runners' shards were finished by replacements elsewhere; the evictions cost no retry.
        const pods = await jobPods(cluster(), s.namespace, 'songs-run');
        for (const name of onDrained) {
          const evicted = pods.find((p) => p.metadata?.name === name);
          if (evicted)
            expect(evicted.status?.conditions?.find((c) => c.type === 'DisruptionTarget')?.status).toBe('True');
        }
        const retries = await retriesByIndex(s.namespace, 'songs-run');
        expect([...retries.values()].map((r) => r.failed)).toEqual(Array(6).fill('0'));
        expect([...retries.values()].filter((r) => Number(r.ignored) >= 1).length).toBe(onDrained.length);
        expect(pods.filter((p) => p.status?.phase === 'Succeeded').map(nodeOf)).not.toContain(drained);
      } finally {
        await gate.close();
      }
      await expectWithinBudget('nodes: drain, remove, add mid-run');
    },
    SCENARIO_TIMEOUT_MS * 2,
  );

  it(
    'finishes a run whose node is lost mid-shard (every process of the node killed, its Node object deleted later): every file once, the budget never exceeded',
    async () => {
      const { s, files, key, gate, runners, expectWithinBudget } = await startHeldRun('lost', 62);
      try {
        const lost = busiest(runners);
        const onLost = runners.filter((p) => nodeOf(p) === lost).map((p) => p.metadata!.name!);

        // The machine vanishes: kubelet, containerd, shims and containers all SIGKILLed at once. Its pods' objects stay
        // Running (nobody is left to report otherwise), so the budget keeps counting them: nothing replaces them yet.
        await cluster().loseNode(lost);
        expect(cluster().nodePids(lost)).toEqual([]);
        await eventually(
          "the lost runners' connections to be gone from the server",
          async () => (await gate.waiting(key)) === 6 - onLost.length,
          60_000,
        );
        const live = (await jobPods(cluster(), s.namespace, 'songs-run')).filter(
          (p) => !p.status?.phase || !['Succeeded', 'Failed'].includes(p.status.phase),
        );
        expect(live.map((p) => p.metadata?.name)).toEqual(expect.arrayContaining(onLost));

        // A while later the cloud's node controller deletes the Node: the pod garbage collector then deletes its pods
        // (with DisruptionTarget), and the Job controller replaces them on the node that is left.
        await core().deleteNode({ name: lost });
        await gate.thaw(key);
        const status = await waitForPhase(cluster(), s.namespace, 'songs', ['Succeeded', 'Failed'], 300_000);
        await expectEveryFileRecordedOnce(s.db.url, key, files, { allGood: true });
        expect(status).toMatchObject({
          phase: 'Succeeded',
          files: { total: 600, processed: 600, failed: 0 },
          shards: { total: 6, succeeded: 6, failed: 0 },
        });
        const retries = await retriesByIndex(s.namespace, 'songs-run');
        expect([...retries.values()].map((r) => r.failed)).toEqual(Array(6).fill('0'));
      } finally {
        await gate.close();
      }
      await expectWithinBudget('nodes: a node lost mid-run');
    },
    SCENARIO_TIMEOUT_MS * 2,
  );

  it(
    'ends the connections of vanished runners within 60 s, a force-deleted pod and a silently partitioned node alike, and their replacements wait for the room: every file once, the budget never exceeded',
    async () => {
      // The node lost in the scenario before is replaced first, so that the runners spread over two nodes again.
      await cluster().addNode({ name: 'node-4' });
      const { s, files, key, gate, runners, expectWithinBudget } = await startHeldRun('vanish', 64);
      /** Seconds until no backend on the server carries one of these pods' names (each name ends with its pod). */
      const goneAfter = async (what: string, pods: string[], from: number) => {
        await eventually(
          what,
          async () => {
            const { rows } = await s.db.query<{ application_name: string }>(
              'SELECT application_name FROM pg_stat_activity WHERE application_name IS NOT NULL',
            );
            return !rows.some((r) => pods.some((pod) => r.application_name.endsWith(pod)));
          },
          90_000,
        );
        return (Date.now() - from) / 1000;
      };
      try {
        const partitioned = busiest(runners);
        const other = runners.find((p) => nodeOf(p) !== partitioned) ?? runners[0]!;
        const onPartitioned = runners
          .filter((p) => nodeOf(p) === partitioned && p !== other)
          .map((p) => p.metadata!.name!);

        // Force deletion: the object goes at once, the Job controller creates a replacement at once, and the kubelet
        // kills the container meanwhile. The replacement's pool waits in the server ledger until the old one's
        // backends are gone.
        const forcedAt = Date.now();
        await core().deleteNamespacedPod({
          namespace: s.namespace,
          name: other.metadata!.name!,
          gracePeriodSeconds: 0,
        });
        const forced = await goneAfter(
          "the force-deleted runner's connections to end",
          [other.metadata!.name!],
          forcedAt,
        );

        // A partition: the node's processes run on, holding their transactions open at the gate, but nothing they send
        // arrives and nothing is answered. Only the server's keepalives (set by every runner connection) end their
        // backends; the OS default would keep them for two hours.
        const partitionedAt = Date.now();
        await cluster().partitionNode(partitioned);
        const silent = await goneAfter("the partitioned runners' connections to end", onPartitioned, partitionedAt);
        console.log(
          `[orphans] force-deleted pod: connections gone after ${forced.toFixed(1)} s; ` +
            `partitioned node (${onPartitioned.length} runners): gone after ${silent.toFixed(1)} s`,
        );
        expect(forced).toBeLessThanOrEqual(60);
        expect(silent).toBeLessThanOrEqual(60);

        // The cloud's node controller deletes the unreachable Node: its pods are deleted and replaced elsewhere.
        await core().deleteNode({ name: partitioned });
        await gate.thaw(key);
        const status = await waitForPhase(cluster(), s.namespace, 'songs', ['Succeeded', 'Failed'], 300_000);
        await expectEveryFileRecordedOnce(s.db.url, key, files, { allGood: true });
        expect(status).toMatchObject({
          phase: 'Succeeded',
          files: { total: 600, processed: 600, failed: 0 },
          shards: { total: 6, succeeded: 6, failed: 0 },
        });
      } finally {
        await gate.close();
        await cluster()
          .loseNode(busiest(runners))
          .catch(() => undefined);
      }
      await expectWithinBudget('nodes: force-deleted pod, partitioned node');
    },
    SCENARIO_TIMEOUT_MS * 2,
  );

  it(
    'runs its runners as the restricted security context says, enforced by the node: user 65532, read-only root, no privilege escalation, no capabilities',
    async () => {
      const s = await scenario('restricted', 20);
      const { claim } = await s.corpus('songs', { files: 20, seed: 63 });
      const gate = await WriteGate.install(s.ownerUrl, 0);
      await gate.freeze('restricted/songs');
      try {
        await applyOrFail(cluster(), corpusObject({ name: 'songs', namespace: s.namespace, claim, filesPerShard: 10 }));
        await eventually(
          '2 runner pods held at the gate',
          async () => (await gate.waiting('restricted/songs')) === 2,
          120_000,
        );
        const pod = (await jobPods(cluster(), s.namespace, 'songs-run')).find(isRunning)!.metadata!.name!;
        const r = await cluster().kubectl([
          '-n',
          s.namespace,
          'exec',
          pod,
          '--',
          'sh',
          '-c',
          'id -u; id -g; grep -E "^(NoNewPrivs|CapEff|CapPrm|CapBnd):" /proc/1/status; ' +
            '(echo x > /probe) 2>&1 || true; (echo x > /tmp/probe && echo tmp-writable) 2>&1',
        ]);
        expect(r.code, r.stderr).toBe(0);
        const out = r.stdout.split('\n');
        expect(out.slice(0, 2)).toEqual(['65532', '65532']);
        expect(out).toContain('NoNewPrivs:\t1');
        for (const cap of ['CapEff', 'CapPrm', 'CapBnd']) expect(out).toContain(`${cap}:\t0000000000000000`);
        expect(r.stdout).toMatch(/can't create \/probe: Read-only file system/);
        expect(out).toContain('tmp-writable');
        await gate.thaw('restricted/songs');
        await waitForPhase(cluster(), s.namespace, 'songs', ['Succeeded']);
      } finally {
        await gate.close();
      }
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    'shows a runner image that cannot be pulled in the corpus: PodsFailing ImagePullFailed, naming the scan pod',
    async () => {
      const s = await scenario('nopull', 20);
      const { claim } = await s.corpus('songs', { files: 5, seed: 64 });
      // A registry on the node's own loopback, where nothing listens: the pull fails at once, and no packet leaves.
      const image = 'localhost:5999/midi-corpus/absent:0.1.0';
      const corpus = corpusObject({ name: 'songs', namespace: s.namespace, claim, filesPerShard: 10 });
      (corpus.spec.runner as { image?: string }).image = image;
      await applyOrFail(cluster(), corpus);
      const waiting = await eventually(
        'the scan pod to wait on its image',
        async () => {
          const pod = (await jobPods(cluster(), s.namespace, 'songs-scan'))[0];
          const reason = pod?.status?.containerStatuses?.[0]?.state?.waiting?.reason;
          return reason === 'ErrImagePull' || reason === 'ImagePullBackOff' ? pod : undefined;
        },
        120_000,
      );
      expect(waiting.spec?.containers[0]?.image).toBe(image);
      // What the MidiCorpus says meanwhile: still Scanning, and why (it used to say nothing; the reason was only on
      // the pod).
      const status = await eventually('PodsFailing to say ImagePullFailed', async () => {
        const status = (await readCorpus(cluster(), s.namespace, 'songs'))?.status;
        const c = status?.conditions?.find((x) => x.type === 'PodsFailing');
        return c?.status === 'True' && c.reason === 'ImagePullFailed' ? status : undefined;
      });
      expect(status.phase).toBe('Scanning');
      expect(status.reason).toBe('ImagePullFailed');
      expect(status.conditions?.find((x) => x.type === 'PodsFailing')?.message).toContain(
        `pod ${waiting.metadata!.name} (scan)`,
      );
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    'analyses hostile files on a real node within the default memory limit: no runner OOMKilled, each file recorded with its reason',
    async () => {
      const s = await scenario('hostile', 20);
      const { dir, claim } = await s.corpus('songs', { files: 3, seed: 65 });
      // About 16 MB each: what took a runner past 1 GiB (a warning per event or chunk), a name that overflowed the
      // stack, and 4.8 million events, within the reader's bound for one worker of a 1 GiB pod.
      const hostile: Record<string, Uint8Array> = {
        'notes.mid': manyNotes(2_400_000),
        'tempos.mid': manyMalformedTempos(2_700_000),
        'chunks.mid': manyUnknownChunks(2_000_000),
        'name.mid': longLatin1Name(16 * 1024 * 1024),
      };
      for (const [name, bytes] of Object.entries(hostile)) await writeFile(path.join(dir, name), bytes);
      const corpus = corpusObject({ name: 'songs', namespace: s.namespace, claim, filesPerShard: 10 });
      const runner = corpus.spec.runner as { resources: { limits?: Record<string, string> } };
      runner.resources.limits = { memory: '1Gi' }; // the CRD's default limit
      const sampler = new ConnectionSampler(s.db.url);
      await sampler.start();
      await applyOrFail(cluster(), corpus);
      const status = await waitForPhase(cluster(), s.namespace, 'songs', ['Succeeded', 'Failed'], 240_000);
      const figures = await sampler.stop();
      const runs = (await jobPods(cluster(), s.namespace, 'songs-run')).map(
        (p) => p.status?.containerStatuses?.[0]?.state?.terminated,
      );
      expect(runs).toEqual([expect.objectContaining({ reason: 'Completed', exitCode: 0 })]); // one pod, no retry
      expect(status).toMatchObject({ phase: 'Succeeded', shards: { total: 1, succeeded: 1, failed: 0 } });
      await expectEveryFileRecordedOnce(s.db.url, 'hostile/songs', await filesUnder(dir));
      const byPath = new Map((await recordedFiles(s.db.url, 'hostile/songs')).map((r) => [r.path, r]));
      for (const name of Object.keys(hostile)) expect(byPath.get(name)?.status, name).toBe('ok');
      for (const name of ['tempos.mid', 'chunks.mid'])
        expect(byPath.get(name)?.warnings).toBe(MAX_WARNINGS_PER_FILE + 1);
      expect(figures.peak.everyone).toBeLessThanOrEqual(20 - 3 - 2);
    },
    SCENARIO_TIMEOUT_MS,
  );
});
