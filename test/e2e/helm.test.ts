/**
 * End to end on the real control plane and real nodes (test/cluster) and real Postgres servers, with the operator installed by its
 * Helm chart exactly as the README says: two controller replicas under the chart's ServiceAccount, one of them the
 * leader. Each scenario has its own namespace and its own Postgres server (a budget belongs to a server), and they run
 * one after the other on one cluster.
 *
 * Connections are sampled from pg_stat_activity about every 100 ms through each whole run (see support/database.ts)
 * and compared with the budget the controller computed and wrote in the corpus's status.
 */
import { expect, it } from 'vitest';
import { stringify } from 'yaml';
import { BatchV1Api, CoreV1Api, type CoreV1Event } from '@kubernetes/client-node';
import { describeWithCluster, eventually } from '../cluster/vitest.js';
import { ConnectionSampler, WriteGate, recordedPerShard } from './support/database.js';
import { databaseSecret } from './support/database-secret.js';
import { CorpusObserver } from './support/observe.js';
import {
  OPERATOR_NAME,
  OPERATOR_NAMESPACE,
  apply,
  applyOrFail,
  completionIndex,
  controllerPods,
  corpusObject,
  createDatabaseSecret,
  deleteCorpus,
  followPodLog,
  installWithHelm,
  isRunning,
  jobPods,
  killPodProcess,
  leaseHolder,
  readCorpus,
  readJob,
  serviceAccountMay,
  waitForPhase,
} from './support/operator.js';
import { budgetOf, expectEveryFileRecordedOnce } from './support/scenario.js';
import { SCENARIO_TIMEOUT_MS, useOperatorSuite } from './support/suite.js';

describeWithCluster('end to end with the Helm chart', () => {
  const { cluster, scenario, keepReport } = useOperatorSuite(installWithHelm);
  const core = () => cluster().kc.makeApiClient(CoreV1Api);

  /**
   * The corpus's Events, once one with `reason` is among them: the controller records an Event just after the status
   * write a test has seen, so a single look can come a moment too early.
   */
  const corpusEvents = (namespace: string, name: string, reason: string): Promise<CoreV1Event[]> =>
    eventually(`${namespace}/${name}: an Event ${reason}`, async () => {
      const { items } = await core().listNamespacedEvent({
        namespace,
        fieldSelector: `involvedObject.kind=MidiCorpus,involvedObject.name=${name}`,
      });
      return items.some((e) => e.reason === reason) ? items : undefined;
    });

  it(
    "ingests a generated corpus: every file recorded once, status Succeeded with the right counts, acted on by the leader under the chart's ServiceAccount",
    async () => {
      const s = await scenario('songs', 30);
      const { claim, files } = await s.corpus('songs', { files: 90, seed: 11, bad: true });
      const sampler = new ConnectionSampler(s.db.url);
      await sampler.start();
      const observer = new CorpusObserver(cluster(), s.namespace, 'songs').start();
      await applyOrFail(cluster(), corpusObject({ name: 'songs', namespace: s.namespace, claim, filesPerShard: 15 }));

      const status = await waitForPhase(cluster(), s.namespace, 'songs', ['Succeeded', 'Failed']);
      const history = await observer.stop();
      const figures = await sampler.stop();

      const { failed } = await expectEveryFileRecordedOnce(s.db.url, 'songs/songs', files);
      expect(failed).toBeGreaterThan(0); // the bad-input files are recorded as failures, not lost
      const shards = Math.ceil(files.length / 15);
      expect(status).toMatchObject({
        phase: 'Succeeded',
        files: { total: files.length, processed: files.length, failed },
        shards: { total: shards, succeeded: shards, failed: 0 },
        jobs: { scan: 'songs-scan', run: 'songs-run' },
      });
      expect(status.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'True', reason: 'Succeeded' });
      expect(history.phases).toEqual(expect.arrayContaining(['Scanning', 'Running']));

      const report = budgetOf('helm: one corpus', 30, history.budget, figures, history.peakLivePods);
      keepReport(report);
      expect(figures.peak.everyone).toBeLessThanOrEqual(report.budget);
      expect(figures.peak.runners).toBeLessThanOrEqual(report.runnerCeiling);
      expect(figures.peak.runners).toBeGreaterThan(0);

      // The controller: two replicas under the chart's own ServiceAccount, the Lease held by one of them, and that one
      // (not an admin, not the standby) wrote every Event of the corpus.
      const pods = await controllerPods(cluster());
      expect(pods.filter(isRunning)).toHaveLength(2);
      for (const pod of pods) expect(pod.spec?.serviceAccountName).toBe(OPERATOR_NAME);
      const { holder } = await leaseHolder(cluster());
      expect(pods.map((p) => p.metadata?.name)).toContain(holder);
      const events = await corpusEvents(s.namespace, 'songs', 'Succeeded');
      expect(events.map((e) => e.reason)).toEqual(expect.arrayContaining(['ScanStarted', 'Running', 'Succeeded']));
      expect(new Set(events.map((e) => e.reportingInstance))).toEqual(new Set([holder]));
      const sa = { namespace: OPERATOR_NAMESPACE, name: OPERATOR_NAME };
      expect(await serviceAccountMay(cluster(), sa, 'create', 'batch', 'jobs', s.namespace)).toBe(true);
      for (const [verb, group, resource] of [
        ['create', '', 'pods'],
        ['delete', '', 'pods'],
        ['list', '', 'secrets'],
        ['update', 'midi.corpus.dev', 'midicorpora'],
        ['*', '*', '*'],
      ] as const) {
        expect(await serviceAccountMay(cluster(), sa, verb, group, resource, s.namespace), `${verb} ${resource}`).toBe(
          false,
        );
      }
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    'never holds more connections than a tight max_connections allows, with more shards than fit, and still finishes',
    async () => {
      // max_connections 22, reserved 3, headroom 2, the operator's 1, and the test's own 2 (sampler and gate), which
      // the operator reads off the server as another application's: runners may hold 14, i.e. 7 pods of 2 (100m CPU:
      // one parse worker, a pool of 2), for 20 shards.
      const s = await scenario('tight', 22);
      const { claim, files } = await s.corpus('many', { files: 200, seed: 12 });
      const gate = await WriteGate.install(s.ownerUrl, 0);
      await gate.freeze('tight/many');
      const sampler = new ConnectionSampler(s.db.url);
      await sampler.start();
      const observer = new CorpusObserver(cluster(), s.namespace, 'many').start();
      try {
        await applyOrFail(cluster(), corpusObject({ name: 'many', namespace: s.namespace, claim, filesPerShard: 10 }));

        // Held at the gate, every runner pod the budget allows is started and holds its pool: the budget is reached,
        // and nothing more is started on top of it.
        await eventually(
          '7 runner pods holding 14 connections, waiting at the gate',
          async () => sampler.current?.runners === 14 && (await gate.waiting('tight/many')) === 7,
          120_000,
        );
        expect((await readJob(cluster(), s.namespace, 'many-run'))?.spec?.parallelism).toBe(7);
        const limited = (await readCorpus(cluster(), s.namespace, 'many'))?.status;
        expect(limited?.budget).toMatchObject({
          limit: 22,
          foreignConnections: 2,
          allowance: 14,
          perPod: 2,
          parallelism: 7,
          inUse: 14,
        });
        expect(limited?.conditions?.find((c) => c.type === 'BudgetLimited')).toMatchObject({
          status: 'True',
          reason: 'BudgetShared',
        });
        expect(
          (await jobPods(cluster(), s.namespace, 'many-run')).filter(
            (p) => p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed',
          ),
        ).toHaveLength(7);
        await gate.thaw('tight/many');

        const status = await waitForPhase(cluster(), s.namespace, 'many', ['Succeeded', 'Failed']);
        await expectEveryFileRecordedOnce(s.db.url, 'tight/many', files, { allGood: true });
        expect(status).toMatchObject({
          phase: 'Succeeded',
          files: { total: 200, processed: 200, failed: 0 },
          shards: { total: 20, succeeded: 20, failed: 0 },
        });
      } finally {
        await gate.close();
      }
      const history = await observer.stop();
      const figures = await sampler.stop();
      const report = budgetOf('helm: tight budget, 20 shards', 22, history.budget, figures, history.peakLivePods);
      keepReport(report);
      expect(report.budget).toBe(17);
      expect(figures.peak.everyone).toBeLessThanOrEqual(17);
      expect(figures.peak.total).toBeLessThanOrEqual(15);
      expect(figures.peak.runners).toBe(14);
      expect(history.peakLivePods).toBe(7);
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    "shares one database between two corpora fairly, and hands a deleted corpus's share to the other",
    async () => {
      // Two namespaces, one Postgres server: one budget of 14 runner connections (7 pods of 2), once the operator's
      // own and the test's 2 (sampler and gate: another application's, to the operator) are off 22 − 3 − 2.
      const s = await scenario('share-a', 22);
      await cluster().createNamespace('share-b');
      await createDatabaseSecret(cluster(), 'share-b', s.podUrl); // the Service of share-a, by its ClusterIP
      const a = await s.corpus('a', { files: 400, seed: 21 });
      const b = await s.corpus('b', { files: 150, seed: 22, namespace: 'share-b' });
      const gate = await WriteGate.install(s.ownerUrl, 0);
      await gate.freeze('share-a/a');
      await gate.freeze('share-b/b');
      const sampler = new ConnectionSampler(s.db.url);
      await sampler.start();
      const observeA = new CorpusObserver(cluster(), 'share-a', 'a').start();
      const observeB = new CorpusObserver(cluster(), 'share-b', 'b').start();
      const parallelism = async (ns: string, job: string) => (await readJob(cluster(), ns, job))?.spec?.parallelism;
      const live = async (ns: string, job: string) =>
        (await jobPods(cluster(), ns, job)).filter(
          (p) => p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed',
        );
      /** Lets a's stopping pods finish their batch in flight and go (they hold connections until then), then holds a again. */
      const drainA = async () => {
        await gate.thaw('share-a/a');
        await eventually(
          "a's pods above its parallelism to be gone",
          async () => {
            const pods = await live('share-a', 'a-run');
            return (
              pods.every((p) => !p.metadata?.deletionTimestamp) &&
              pods.length <= ((await parallelism('share-a', 'a-run')) ?? 0)
            );
          },
          120_000,
        );
        await gate.freeze('share-a/a');
      };
      try {
        await applyOrFail(
          cluster(),
          corpusObject({ name: 'a', namespace: 'share-a', claim: a.claim, filesPerShard: 10 }),
        );
        await eventually(
          'a to run 7 pods, all held at the gate',
          async () => (await gate.waiting('share-a/a')) === 7,
          120_000,
        );

        // b arrives: its scan needs one connection, so a gives up one pod first; b waits for it, and says so.
        await applyOrFail(
          cluster(),
          corpusObject({ name: 'b', namespace: 'share-b', claim: b.claim, filesPerShard: 10 }),
        );
        await eventually(
          "a to be scaled down to 6 for b's scan",
          async () => (await parallelism('share-a', 'a-run')) === 6,
        );
        const waiting = (await readCorpus(cluster(), 'share-b', 'b'))?.status;
        expect(waiting?.phase).toBe('Pending');
        expect(waiting?.conditions?.find((c) => c.type === 'BudgetLimited')).toMatchObject({
          status: 'True',
          reason: 'BudgetShared',
        });
        await drainA();

        // b scanned: the fair split of 7 pods is a 4, b 3 (ties go to the older corpus); b grows only as a's pods go.
        await eventually(
          'a to be scaled down to its share of 4',
          async () => (await parallelism('share-a', 'a-run')) === 4,
          120_000,
        );
        await drainA();
        await eventually(
          'b to reach its share of 3 pods',
          async () => (await parallelism('share-b', 'b-run')) === 3,
          120_000,
        );
        const shared = await eventually("b's status to show its share", async () => {
          const status = (await readCorpus(cluster(), 'share-b', 'b'))?.status;
          return status?.budget?.parallelism === 3 ? status : undefined;
        });
        expect(shared?.budget).toMatchObject({
          foreignConnections: 2,
          allowance: 14,
          share: 6,
          perPod: 2,
          parallelism: 3,
        });
        expect(shared?.conditions?.find((c) => c.type === 'BudgetLimited')).toMatchObject({
          status: 'True',
          reason: 'BudgetShared',
        });
        expect(shared?.conditions?.find((c) => c.type === 'BudgetLimited')?.message).toContain('fair share');

        // a is deleted: its pods stop (let through the gate to finish quickly), and b grows into the whole budget.
        await deleteCorpus(cluster(), 'share-a', 'a');
        await gate.thaw('share-a/a');
        await eventually('b to grow to all 7 pods', async () => (await parallelism('share-b', 'b-run')) === 7, 120_000);
        await eventually(
          'b to run 7 pods, all held at the gate',
          async () => (await gate.waiting('share-b/b')) === 7,
          120_000,
        );
        await gate.thaw('share-b/b');
        const status = await waitForPhase(cluster(), 'share-b', 'b', ['Succeeded', 'Failed']);
        await expectEveryFileRecordedOnce(s.db.url, 'share-b/b', b.files, { allGood: true });
        expect(status).toMatchObject({
          phase: 'Succeeded',
          files: { total: 150, processed: 150, failed: 0 },
          shards: { total: 15, succeeded: 15 },
        });
      } finally {
        await gate.close();
      }
      const historyA = await observeA.stop();
      const historyB = await observeB.stop();
      const figures = await sampler.stop();
      // a may start at 6 for a pass: seen once on a loaded machine, its first plan took one connection more than the
      // test's 2 off the allowance (a session that two readings in a row both caught), and a grew to 7 a pass later.
      // From 7 on: 6 for b's scan, then its share of 4.
      const from7 = historyA.parallelism.indexOf(7);
      expect(historyA.parallelism.slice(0, from7)).toEqual(from7 === 0 ? [] : [6]);
      expect(historyA.parallelism.slice(from7, from7 + 3)).toEqual([7, 6, 4]);
      expect(historyB.parallelism).toContain(3);
      expect(historyB.parallelism.at(-1)).toBe(0); // capped by the shards left, down to none
      expect(Math.max(...historyB.parallelism)).toBe(7);
      const report = budgetOf('helm: two corpora sharing one server', 22, historyB.budget, figures);
      keepReport(report);
      expect(figures.peak.everyone).toBeLessThanOrEqual(report.budget);
      expect(figures.peak.runners).toBeLessThanOrEqual(report.runnerCeiling);
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    'survives a runner killed mid-shard, a runner evicted and the leader deleted: every file recorded exactly once',
    async () => {
      const s = await scenario('chaos', 30);
      const { claim, files } = await s.corpus('songs', { files: 600, seed: 31 });
      // Shards of 120: the runner's first batch (50 files) commits, the next waits at the gate: each pod is mid-shard.
      const gate = await WriteGate.install(s.ownerUrl, 60);
      await gate.freeze('chaos/songs');
      const sampler = new ConnectionSampler(s.db.url);
      await sampler.start();
      const observer = new CorpusObserver(cluster(), s.namespace, 'songs').start();
      let killed: string | undefined;
      let evicted: string | undefined;
      let oldLeader: { holder: string; transitions: number } | undefined;
      let newLeader: { holder: string; transitions: number } | undefined;
      let leaderLog: { done: () => Promise<string> } | undefined;
      try {
        await applyOrFail(
          cluster(),
          corpusObject({ name: 'songs', namespace: s.namespace, claim, filesPerShard: 120 }),
        );
        await eventually(
          'all 5 shards half recorded, their next batch held at the gate',
          async () => {
            const shards = await recordedPerShard(s.db.url, 'chaos/songs');
            return (
              shards.size === 5 &&
              [...shards.values()].every((x) => x.done >= 1) &&
              (await gate.waiting('chaos/songs')) === 5
            );
          },
          120_000,
        );
        const pods = (await jobPods(cluster(), s.namespace, 'songs-run')).filter(isRunning);
        const byIndex = (i: string) => pods.find((p) => completionIndex(p) === i)!.metadata!.name!;
        killed = byIndex('0');
        evicted = byIndex('1');

        await killPodProcess(killed, 'run-shard'); // a crash: no SIGTERM, no goodbye to the database
        await cluster().evictPod(s.namespace, evicted); // as a drain or the autoscaler does: DisruptionTarget, then SIGTERM
        oldLeader = await leaseHolder(cluster());
        leaderLog = await followPodLog(cluster(), OPERATOR_NAMESPACE, oldLeader.holder);
        await core().deleteNamespacedPod({ namespace: OPERATOR_NAMESPACE, name: oldLeader.holder });
        newLeader = await leaseHolder(cluster(), 60_000, oldLeader.holder);

        await gate.thaw('chaos/songs');
        const status = await waitForPhase(cluster(), s.namespace, 'songs', ['Succeeded', 'Failed']);
        await expectEveryFileRecordedOnce(s.db.url, 'chaos/songs', files, { allGood: true });
        expect(status).toMatchObject({
          phase: 'Succeeded',
          files: { total: 600, processed: 600, failed: 0 },
          shards: { total: 5, succeeded: 5, failed: 0 },
        });
      } finally {
        await gate.close();
      }
      const history = await observer.stop();
      const figures = await sampler.stop();

      // The crash counted against shard 0's retries; the eviction did not count against shard 1's.
      const pods = await jobPods(cluster(), s.namespace, 'songs-run');
      const crashed = pods.find((p) => p.metadata?.name === killed);
      expect(crashed?.status?.containerStatuses?.[0]?.state?.terminated?.exitCode).toBe(137);
      const retry = (index: string) =>
        pods.find((p) => completionIndex(p) === index && p.status?.phase === 'Succeeded')!.metadata!.annotations!;
      expect(retry('0')['batch.kubernetes.io/job-index-failure-count']).toBe('1');
      expect(retry('1')['batch.kubernetes.io/job-index-failure-count']).toBe('0');
      expect(retry('1')['batch.kubernetes.io/job-index-ignored-failure-count']).toBe('1');

      // The other replica took over (the deleted leader gave the Lease up on SIGTERM) and finished the corpus.
      expect(await leaderLog!.done()).toContain('released leadership');
      expect(newLeader!.holder).not.toBe(oldLeader!.holder);
      expect(newLeader!.transitions).toBeGreaterThan(oldLeader!.transitions);
      const succeeded = (await corpusEvents(s.namespace, 'songs', 'Succeeded')).filter((e) => e.reason === 'Succeeded');
      expect(succeeded.map((e) => e.reportingInstance)).toContain(newLeader!.holder);

      const report = budgetOf('helm: kill, evict, leader deleted', 30, history.budget, figures, history.peakLivePods);
      keepReport(report);
      expect(figures.peak.everyone).toBeLessThanOrEqual(report.budget);
      expect(figures.peak.runners).toBeLessThanOrEqual(report.runnerCeiling);
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    'refuses a nonsensical MidiCorpus at the API server, and marks what only the controller can judge InvalidSpec',
    async () => {
      const ns = 'invalid';
      await cluster().createNamespace(ns);
      const base = corpusObject({ name: 'x', namespace: ns, claim: 'absent', filesPerShard: 10 });
      const spec = base.spec as unknown as Record<string, Record<string, unknown>>;
      const refused = async (name: string, change: (spec: Record<string, Record<string, unknown>>) => void) => {
        const copy = structuredClone(spec);
        change(copy);
        const r = await apply(cluster(), { ...base, metadata: { name, namespace: ns }, spec: copy });
        expect(r.code, `${name} should be refused`).not.toBe(0);
        return r.stderr;
      };
      expect(
        await refused('reserved', (x) => {
          x.database = { ...x.database, maxConnections: 10, reservedConnections: 10 };
        }),
      ).toContain('reservedConnections must be less than maxConnections');
      expect(
        await refused('headroom', (x) => {
          x.database = { ...x.database, maxConnections: 10, reservedConnections: 5, headroom: 5 };
        }),
      ).toContain('reservedConnections + headroom must leave at least one connection');
      expect(
        await refused('sharding', (x) => {
          x.sharding = { filesPerShard: 10, targetShards: 3 };
        }),
      ).toContain('set exactly one of filesPerShard or targetShards');
      expect(
        await refused('zero-cpu', (x) => {
          x.runner = { resources: { requests: { cpu: '0' } } };
        }),
      ).toContain('spec.runner.resources.requests.cpu');
      expect(
        await refused('no-cpu', (x) => {
          x.runner = { resources: { requests: { memory: '1Gi' } } };
        }),
      ).toContain('requests.cpu is required');
      expect(
        await refused('negative', (x) => {
          x.runner = { ...x.runner, maxParallelism: -1 };
        }),
      ).toContain('spec.runner.maxParallelism');
      expect(
        await refused('escape', (x) => {
          x.source = { ...x.source, path: '../etc' };
        }),
      ).toContain('must stay inside the volume');
      // Two sources in one volume: the schema's refusal (both of allowed types, so the pod policy has no say).
      expect(
        await refused('two-volumes', (x) => {
          x.source = { volume: { persistentVolumeClaim: { claimName: 'a' }, nfs: { server: 'nas', path: '/a' } } };
        }),
      ).toMatch(/spec\.source\.volume.*at most 1/);

      // The pod policy (a ValidatingAdmissionPolicy the chart installs): no node-level volume, no image outside the
      // allow-list, each refusal saying what was refused, what is allowed and where the allow-lists are changed.
      const hostSource = await refused('host-source', (x) => {
        x.source = { volume: { hostPath: { path: '/' } } };
      });
      expect(hostSource).toContain('spec.source.volume is a hostPath volume');
      expect(hostSource).toContain('Allowed volume types: persistentVolumeClaim, ephemeral, csi, nfs.');
      expect(hostSource).toContain('ValidatingAdmissionPolicy midi-corpus-operator-pod-policy');
      expect(hostSource).toContain('podPolicy.allowedVolumeTypes');
      expect(
        await refused('host-split', (x) => {
          x.splitTracks = { volume: { hostPath: { path: '/tmp' } } };
        }),
      ).toContain('spec.splitTracks.volume is a hostPath volume');
      expect(
        await refused('secret-split', (x) => {
          x.splitTracks = { volume: { secret: { secretName: 'db' } } };
        }),
      ).toContain('spec.splitTracks.volume is a secret volume');
      const otherImage = await refused('other-image', (x) => {
        x.runner = { ...x.runner, image: 'docker.io/library/busybox:1.37' };
      });
      expect(otherImage).toContain(
        'spec.runner.image docker.io/library/busybox:1.37 is not an image this cluster allows',
      );
      expect(otherImage).toContain('Allowed: images of ghcr.io/midi-corpus/midi-corpus-operator, localhost:5999/');
      expect(otherImage).toContain('podPolicy.allowedImages');
      // A repository is not a string prefix: a look-alike repository is another image.
      expect(
        await refused('lookalike-image', (x) => {
          x.runner = { ...x.runner, image: 'ghcr.io/midi-corpus/midi-corpus-operator-evil:0.1.0' };
        }),
      ).toContain('is not an image this cluster allows');
      // What the policy allows: claims for both volumes, and another tag of the operator's repository.
      const allowed = structuredClone(spec);
      allowed.splitTracks = { volume: { persistentVolumeClaim: { claimName: 'tracks' } } };
      allowed.runner = { ...allowed.runner, image: 'ghcr.io/midi-corpus/midi-corpus-operator:0.0.9' };
      const accepted = await cluster().kubectl(
        ['apply', '--dry-run=server', '-f', '-'],
        stringify({ ...base, metadata: { name: 'allowed', namespace: ns }, spec: allowed }),
      );
      expect(accepted.code, accepted.stderr).toBe(0);

      // What the schema cannot know: the Secret is missing, is not labelled for MidiCorpora, or holds no postgres://
      // URL. Invalid, said why, no Job.
      await core().createNamespacedSecret({
        namespace: ns,
        body: databaseSecret('mysql', 'mysql://root:hunter2@db.example:3306/midi'),
      });
      await core().createNamespacedSecret({
        namespace: ns,
        body: databaseSecret('unlabelled', 'postgres://app:hunter2@db.example:5432/app', { labelled: false }),
      });
      await applyOrFail(cluster(), {
        ...base,
        metadata: { name: 'not-labelled', namespace: ns },
        spec: { ...spec, database: { secretRef: { name: 'unlabelled' } } },
      });
      await applyOrFail(cluster(), {
        ...base,
        metadata: { name: 'no-secret', namespace: ns },
        spec: { ...spec, database: { secretRef: { name: 'absent' } } },
      });
      await applyOrFail(cluster(), {
        ...base,
        metadata: { name: 'bad-url', namespace: ns },
        spec: { ...spec, database: { secretRef: { name: 'mysql' } } },
      });
      const noSecret = await waitForPhase(cluster(), ns, 'no-secret', ['Invalid']);
      expect(noSecret.conditions?.find((c) => c.type === 'InvalidSpec')).toMatchObject({
        status: 'True',
        reason: 'SecretNotFound',
      });
      const notLabelled = await waitForPhase(cluster(), ns, 'not-labelled', ['Invalid']);
      expect(notLabelled.conditions?.find((c) => c.type === 'InvalidSpec')).toMatchObject({
        status: 'True',
        reason: 'SecretNotLabelled',
      });
      const notLabelledEvents = await corpusEvents(ns, 'not-labelled', 'SecretNotLabelled');
      expect(notLabelledEvents.map((e) => [e.type, e.reason])).toContainEqual(['Warning', 'SecretNotLabelled']);
      expect(JSON.stringify([notLabelled, notLabelledEvents])).not.toContain('hunter2');
      const badUrl = await waitForPhase(cluster(), ns, 'bad-url', ['Invalid']);
      expect(badUrl.conditions?.find((c) => c.type === 'InvalidSpec')).toMatchObject({
        status: 'True',
        reason: 'InvalidDatabaseUrl',
      });
      const events = await corpusEvents(ns, 'bad-url', 'InvalidDatabaseUrl');
      expect(events.map((e) => [e.type, e.reason])).toContainEqual(['Warning', 'InvalidDatabaseUrl']);
      expect(JSON.stringify([badUrl, events])).not.toContain('hunter2');
      expect((await cluster().kc.makeApiClient(BatchV1Api).listNamespacedJob({ namespace: ns })).items).toEqual([]);

      // source is immutable once created.
      const moved = await apply(cluster(), {
        ...base,
        metadata: { name: 'no-secret', namespace: ns },
        spec: { ...spec, database: { secretRef: { name: 'absent' } }, source: { ...spec.source, path: 'elsewhere' } },
      });
      expect(moved.code).not.toBe(0);
      expect(moved.stderr).toContain('source is immutable');
      // The policy judges UPDATEs too: split tracks added later must not be a hostPath either.
      const hostLater = await apply(cluster(), {
        ...base,
        metadata: { name: 'no-secret', namespace: ns },
        spec: {
          ...spec,
          database: { secretRef: { name: 'absent' } },
          splitTracks: { volume: { hostPath: { path: '/tmp' } } },
        },
      });
      expect(hostLater.code).not.toBe(0);
      expect(hostLater.stderr).toContain('spec.splitTracks.volume is a hostPath volume');
    },
    SCENARIO_TIMEOUT_MS,
  );
});
