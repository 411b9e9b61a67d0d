/**
 * End to end with the operator installed by `kubectl apply -k manifests/`, exactly as the README says (no overlay:
 * the manifests' image tag is the project's image, built by `npm run image` and imported into the nodes). Its own
 * cluster, so the Helm tests and these run side by side.
 */
import { expect, it } from 'vitest';
import { describeWithCluster, eventually } from '../cluster/vitest.js';
import { ConnectionSampler, WriteGate } from './support/database.js';
import { CorpusObserver } from './support/observe.js';
import {
  OPERATOR_NAME,
  apply,
  applyOrFail,
  controllerPods,
  corpusObject,
  installWithKustomize,
  isRunning,
  jobPods,
  leaseHolder,
  readCorpus,
  readJob,
  waitForPhase,
} from './support/operator.js';
import { budgetOf, expectEveryFileRecordedOnce } from './support/scenario.js';
import { SCENARIO_TIMEOUT_MS, useOperatorSuite } from './support/suite.js';

describeWithCluster('end to end with kubectl apply -k manifests/', () => {
  const { cluster, scenario, keepReport } = useOperatorSuite(installWithKustomize);

  it(
    "ingests a generated corpus: every file recorded once, status Succeeded with the right counts, by the manifests' ServiceAccount",
    async () => {
      const s = await scenario('songs', 25);
      const { claim, files } = await s.corpus('songs', { files: 80, seed: 41, bad: true });
      const sampler = new ConnectionSampler(s.db.url);
      await sampler.start();
      const observer = new CorpusObserver(cluster(), s.namespace, 'songs').start();
      await applyOrFail(cluster(), corpusObject({ name: 'songs', namespace: s.namespace, claim, filesPerShard: 8 }));

      const status = await waitForPhase(cluster(), s.namespace, 'songs', ['Succeeded', 'Failed']);
      const history = await observer.stop();
      const figures = await sampler.stop();
      const { failed } = await expectEveryFileRecordedOnce(s.db.url, 'songs/songs', files);
      expect(failed).toBeGreaterThan(0);
      const shards = Math.ceil(files.length / 8);
      expect(status).toMatchObject({
        phase: 'Succeeded',
        files: { total: files.length, processed: files.length, failed },
        shards: { total: shards, succeeded: shards, failed: 0 },
      });

      // The runner pods ran the image the manifests' replacement copied into the controller's RUNNER_IMAGE.
      const runners = await jobPods(cluster(), s.namespace, 'songs-run');
      expect(new Set(runners.map((p) => p.spec?.containers[0]?.image))).toEqual(
        new Set(['ghcr.io/midi-corpus/midi-corpus-operator:0.1.0']),
      );
      const pods = await controllerPods(cluster());
      expect(pods.filter(isRunning)).toHaveLength(2);
      for (const pod of pods) expect(pod.spec?.serviceAccountName).toBe(OPERATOR_NAME);
      expect(pods.map((p) => p.metadata?.name)).toContain((await leaseHolder(cluster())).holder);

      const report = budgetOf('kustomize: one corpus', 25, history.budget, figures, history.peakLivePods);
      keepReport(report);
      expect(figures.peak.everyone).toBeLessThanOrEqual(report.budget);
      expect(figures.peak.runners).toBeLessThanOrEqual(report.runnerCeiling);
      // 10 shards, 2 connections a pod, 19 connections for runners: 9 pods at once at most.
      expect(history.peakLivePods).toBeLessThanOrEqual(9);
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    'suspends a running corpus: its pods stop and release their connections; resumed, it finishes with every file recorded once',
    async () => {
      // 22 − 3 − 2, less the operator's 1 and the test's 2 (sampler, gate: another application's to the operator): 7 pods of 2.
      const s = await scenario('pause', 22);
      const { claim, files } = await s.corpus('songs', { files: 120, seed: 42 });
      const gate = await WriteGate.install(s.ownerUrl, 0);
      await gate.freeze('pause/songs');
      const sampler = new ConnectionSampler(s.db.url);
      await sampler.start();
      const observer = new CorpusObserver(cluster(), s.namespace, 'songs').start();
      const live = async () =>
        (await jobPods(cluster(), s.namespace, 'songs-run')).filter(
          (p) => p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed',
        );
      const suspend = async (on: boolean) => {
        const r = await cluster().kubectl([
          '-n',
          s.namespace,
          'patch',
          'midicorpus',
          'songs',
          '--type=merge',
          '-p',
          JSON.stringify({ spec: { suspend: on } }),
        ]);
        expect(r.code, r.stderr).toBe(0);
      };
      try {
        await applyOrFail(cluster(), corpusObject({ name: 'songs', namespace: s.namespace, claim, filesPerShard: 10 }));
        await eventually(
          '7 runner pods held at the gate',
          async () => (await gate.waiting('pause/songs')) === 7,
          120_000,
        );

        await suspend(true);
        await eventually(
          'the run Job to be suspended',
          async () => (await readJob(cluster(), s.namespace, 'songs-run'))?.spec?.suspend === true,
        );
        await gate.thaw('pause/songs'); // the stopping runners finish (or roll back) the batch in flight and go
        await eventually(
          'every runner pod gone and no runner connection left',
          async () => (await live()).length === 0 && sampler.current?.runners === 0,
          120_000,
        );
        const suspended = await eventually('the status to say Suspended', async () => {
          const st = (await readCorpus(cluster(), s.namespace, 'songs'))?.status;
          return st?.phase === 'Suspended' && st.pods?.active === 0 ? st : undefined;
        });
        expect(suspended.conditions?.find((c) => c.type === 'Progressing')).toMatchObject({
          status: 'False',
          reason: 'Suspended',
        });

        await suspend(false);
        const status = await waitForPhase(cluster(), s.namespace, 'songs', ['Succeeded', 'Failed']);
        await expectEveryFileRecordedOnce(s.db.url, 'pause/songs', files, { allGood: true });
        expect(status).toMatchObject({
          phase: 'Succeeded',
          files: { total: 120, processed: 120, failed: 0 },
          shards: { total: 12, succeeded: 12, failed: 0 },
        });
      } finally {
        await gate.close();
      }
      const history = await observer.stop();
      const figures = await sampler.stop();
      expect(history.phases).toEqual(expect.arrayContaining(['Running', 'Suspended']));
      const report = budgetOf('kustomize: suspend and resume', 22, history.budget, figures, history.peakLivePods);
      keepReport(report);
      expect(figures.peak.everyone).toBeLessThanOrEqual(report.budget);
      expect(figures.peak.runners).toBe(14);
    },
    SCENARIO_TIMEOUT_MS,
  );
  it('installs the pod policy, which refuses a hostPath corpus and an image outside the allow-list at the API server', async () => {
    const ns = 'policy';
    await cluster().createNamespace(ns);
    const corpus = corpusObject({ name: 'host', namespace: ns, claim: 'absent', filesPerShard: 10 });
    const host = await apply(cluster(), {
      ...corpus,
      spec: { ...corpus.spec, source: { volume: { hostPath: { path: '/' } } } },
    });
    expect(host.code).not.toBe(0);
    expect(host.stderr).toContain('spec.source.volume is a hostPath volume');
    expect(host.stderr).toContain('ValidatingAdmissionPolicy midi-corpus-operator-pod-policy');
    const image = await apply(cluster(), {
      ...corpus,
      metadata: { name: 'image', namespace: ns },
      spec: { ...corpus.spec, runner: { ...corpus.spec.runner, image: 'docker.io/library/busybox:1.37' } },
    });
    expect(image.code).not.toBe(0);
    expect(image.stderr).toContain('Allowed: images of ghcr.io/midi-corpus/midi-corpus-operator ');
    // The claim-backed corpus every other test here runs is allowed (no Secret: it goes Invalid, and no pod starts).
    await applyOrFail(cluster(), { ...corpus, metadata: { name: 'claim', namespace: ns } });
  });
});
