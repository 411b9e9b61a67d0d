/**
 * `helm upgrade` while a corpus runs, end to end: the chart installed on real nodes, a corpus whose runner pods are
 * held mid-shard at the WriteGate, then the chart upgraded to a new image tag. The new controller must adopt the run
 * Job the old one created (same uid, same pod template), the pods that Job creates afterwards run the image it was
 * created with, a new run gets the new image, the server's own connection count never passes the budget, and every
 * file is recorded once.
 *
 * The new tag is the project image under a second name (the same layers, its docker-archive renamed and imported
 * into the nodes' containerd): for Kubernetes the Deployment's image and the controller's --runner-image change,
 * which is what an upgrade changes; the code in it is the same.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { BatchV1Api } from '@kubernetes/client-node';
import { expect, it } from 'vitest';
import { projectImage } from '../cluster/project-image.js';
import { describeWithCluster, eventually } from '../cluster/vitest.js';
import { ConnectionSampler, WriteGate, recordedPerShard } from './support/database.js';
import { CorpusObserver } from './support/observe.js';
import {
  OPERATOR_NAME,
  OPERATOR_NAMESPACE,
  applyOrFail,
  chartDir,
  completionIndex,
  controllerPods,
  corpusObject,
  installWithHelm,
  isRunning,
  jobPods,
  killPodProcess,
  leaseHolder,
  readJob,
  waitForPhase,
} from './support/operator.js';
import { budgetOf, expectEveryFileRecordedOnce } from './support/scenario.js';
import { SCENARIO_TIMEOUT_MS, useOperatorSuite } from './support/suite.js';

const exec = promisify(execFile);
const NEW_TAG = 'upgrade-test';

/**
 * The project image's docker-archive under the tag NEW_TAG: the same config and layers, only the archive's names
 * (manifest.json's RepoTags, `repositories`) rewritten. Made from the archive the nodes were given, not from buildah's
 * store, where another checkout's build may have moved the tag meanwhile.
 */
async function retaggedImage(): Promise<{ ref: string; archive: string; remove: () => Promise<void> }> {
  const { ref: current, archive: source } = await projectImage();
  const repository = current.slice(0, current.lastIndexOf(':'));
  const ref = `${repository}:${NEW_TAG}`;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mco-retag-'));
  const tree = path.join(dir, 'tree');
  await mkdir(tree);
  await exec('tar', ['-xf', source, '-C', tree]);
  const manifest = JSON.parse(await readFile(path.join(tree, 'manifest.json'), 'utf8')) as { RepoTags: string[] }[];
  await writeFile(path.join(tree, 'manifest.json'), JSON.stringify(manifest.map((m) => ({ ...m, RepoTags: [ref] }))));
  const repositories = JSON.parse(await readFile(path.join(tree, 'repositories'), 'utf8')) as Record<
    string,
    Record<string, string>
  >;
  const top = Object.values(repositories[repository] ?? {})[0];
  await writeFile(path.join(tree, 'repositories'), JSON.stringify({ [repository]: { [NEW_TAG]: top } }));
  const archive = path.join(dir, 'image.tar');
  await exec('tar', ['-cf', archive, '-C', tree, ...(await readdir(tree))]);
  return { ref, archive, remove: () => rm(dir, { recursive: true, force: true }) };
}

const image = (job: { spec?: { template?: { spec?: { containers?: { image?: string }[] } } } } | undefined) =>
  job?.spec?.template?.spec?.containers?.[0]?.image;

describeWithCluster('helm upgrade while a corpus runs', () => {
  const { cluster, scenario, keepReport } = useOperatorSuite(installWithHelm);

  it(
    'the new controller adopts the run Job as it is (no second Job, its pods keep their image), a new run takes the new image, the cap holds, every file once',
    async () => {
      const s = await scenario('upgrade', 30);
      const { claim, files } = await s.corpus('songs', { files: 600, seed: 53 });
      const { ref: oldImage } = await projectImage();
      const next = await retaggedImage();
      // Shards of 120: each runner commits its first 60 files, then its next batch waits at the gate: mid-shard.
      const gate = await WriteGate.install(s.ownerUrl, 60);
      await gate.freeze('upgrade/songs');
      const sampler = new ConnectionSampler(s.db.url);
      await sampler.start();
      const observer = new CorpusObserver(cluster(), s.namespace, 'songs').start();
      const batch = cluster().kc.makeApiClient(BatchV1Api);
      let before: Awaited<ReturnType<typeof readJob>>;
      let replacement: string | undefined;
      try {
        await applyOrFail(
          cluster(),
          corpusObject({ name: 'songs', namespace: s.namespace, claim, filesPerShard: 120 }),
        );
        await eventually(
          'all 5 shards half recorded, their next batch held at the gate',
          async () => {
            const shards = await recordedPerShard(s.db.url, 'upgrade/songs');
            return (
              shards.size === 5 &&
              [...shards.values()].every((x) => x.done >= 1) &&
              (await gate.waiting('upgrade/songs')) === 5
            );
          },
          120_000,
        );
        before = await readJob(cluster(), s.namespace, 'songs-run');
        expect(image(before)).toBe(oldImage);
        const oldControllers = new Set((await controllerPods(cluster())).map((p) => p.metadata?.name));

        await cluster().importImage(next.archive);
        const upgrade = await cluster().helm([
          'upgrade',
          OPERATOR_NAME,
          chartDir,
          '--namespace',
          OPERATOR_NAMESPACE,
          '--reuse-values',
          '--set',
          `image.tag=${NEW_TAG}`,
        ]);
        expect(upgrade.code, upgrade.stderr).toBe(0);
        const rollout = await cluster().kubectl([
          '-n',
          OPERATOR_NAMESPACE,
          'rollout',
          'status',
          `deployment/${OPERATOR_NAME}`,
          '--timeout=180s',
        ]);
        expect(rollout.code, rollout.stderr).toBe(0);
        const controllers = await eventually('only controller pods of the new image left', async () => {
          const pods = await controllerPods(cluster());
          return pods.length === 2 && pods.every((p) => isRunning(p) && !oldControllers.has(p.metadata?.name))
            ? pods
            : undefined;
        });
        for (const pod of controllers) expect(pod.spec?.containers[0]?.image).toBe(next.ref);
        const { holder } = await leaseHolder(cluster(), 60_000);
        expect(controllers.map((p) => p.metadata?.name)).toContain(holder);

        // A pod the Job creates after the upgrade: shard 0's runner crashes, and the Job replaces it from its template.
        const crashed = (await jobPods(cluster(), s.namespace, 'songs-run')).find(
          (p) => isRunning(p) && completionIndex(p) === '0',
        )!.metadata!.name!;
        await killPodProcess(crashed, 'run-shard');
        replacement = await eventually('a new pod for shard 0', async () => {
          const pod = (await jobPods(cluster(), s.namespace, 'songs-run')).find(
            (p) => completionIndex(p) === '0' && p.metadata?.name !== crashed && isRunning(p),
          );
          return pod?.metadata?.name;
        });

        await gate.thaw('upgrade/songs');
        const status = await waitForPhase(cluster(), s.namespace, 'songs', ['Succeeded', 'Failed']);
        expect(status).toMatchObject({
          phase: 'Succeeded',
          files: { total: 600, processed: 600, failed: 0 },
          shards: { total: 5, succeeded: 5, failed: 0 },
          jobs: { scan: 'songs-scan', run: 'songs-run' },
        });
        await expectEveryFileRecordedOnce(s.db.url, 'upgrade/songs', files, { allGood: true });
      } finally {
        await gate.close();
        await next.remove();
      }
      const history = await observer.stop();
      const figures = await sampler.stop();

      // Adopted as it was: the same Job object, its template untouched, and no other run Job beside it.
      const after = await readJob(cluster(), s.namespace, 'songs-run');
      expect(after?.metadata?.uid).toBe(before!.metadata!.uid);
      expect(after?.spec?.template).toEqual(before!.spec!.template);
      const jobs = (await batch.listNamespacedJob({ namespace: s.namespace })).items.map((j) => j.metadata?.name);
      expect(jobs.sort()).toEqual(['songs-run', 'songs-scan']);
      // Every pod of the Job, the one made after the upgrade included, ran the image the Job was created with.
      const pods = await jobPods(cluster(), s.namespace, 'songs-run');
      expect(pods.map((p) => p.metadata?.name)).toContain(replacement);
      for (const pod of pods) expect(pod.spec?.containers[0]?.image, pod.metadata?.name).toBe(oldImage);

      const report = budgetOf('upgrade: helm upgrade mid-run', 30, history.budget, figures, history.peakLivePods);
      keepReport(report);
      expect(figures.peak.everyone).toBeLessThanOrEqual(report.budget);
      expect(figures.peak.runners).toBeLessThanOrEqual(report.runnerCeiling);

      // A new run is the new release's: its scan Job takes the upgraded controller's runner image.
      const bump = await cluster().kubectl([
        '-n',
        s.namespace,
        'patch',
        'midicorpus',
        'songs',
        '--type=merge',
        '-p',
        JSON.stringify({ spec: { rerun: 1 } }),
      ]);
      expect(bump.code, bump.stderr).toBe(0);
      const rescan = await eventually('the scan Job of run 1', () => readJob(cluster(), s.namespace, 'songs-scan-1'));
      expect(image(rescan)).toBe(next.ref);
    },
    SCENARIO_TIMEOUT_MS,
  );
});
