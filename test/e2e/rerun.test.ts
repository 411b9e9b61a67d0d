/**
 * Running a corpus again (spec.rerun) and deleting it with its rows (spec.deletionPolicy: Delete), end to end: the
 * operator installed by `kubectl apply -k manifests/` (so under the manifests' RBAC, which must now allow deleting a
 * Job and patching a MidiCorpus's finalizers), real scan and runner pods on real nodes, a real Postgres whose own
 * connection count is sampled throughout.
 */
import { mkdir, readFile, unlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { expect, it } from 'vitest';
import { generateCorpus } from '../../job-runner/synth/corpus.js';
import { eventually, describeWithCluster } from '../cluster/vitest.js';
import { CoreV1Api, type CoreV1Event } from '@kubernetes/client-node';
import { ConnectionSampler, WriteGate } from './support/database.js';
import { CorpusObserver } from './support/observe.js';
import {
  applyOrFail,
  corpusObject,
  installWithKustomize,
  jobPods,
  readCorpus,
  readJob,
  waitForPhase,
} from './support/operator.js';
import { budgetOf, expectEveryFileRecordedOnce } from './support/scenario.js';
import { SCENARIO_TIMEOUT_MS, useOperatorSuite } from './support/suite.js';

interface Row {
  path: string;
  status: string;
  attempts: number;
  analysed_at: Date | null;
  id: string;
}

async function rows(url: string, key: string): Promise<Map<string, Row>> {
  const c = new pg.Client({ connectionString: url, application_name: 'e2e check' });
  await c.connect();
  try {
    const { rows } = await c.query<Row>(
      `SELECT f.id, f.path, f.status, f.attempts, f.analysed_at FROM midi.files f
         JOIN midi.corpora c ON c.id = f.corpus_id WHERE c.key = $1`,
      [key],
    );
    return new Map(rows.map((r) => [r.path, r]));
  } finally {
    await c.end();
  }
}

describeWithCluster('running a corpus again, and deleting it with its rows', () => {
  const { cluster, scenario, keepReport } = useOperatorSuite(installWithKustomize);

  it(
    'after files are added, changed and deleted on the volume, a bump of spec.rerun analyses exactly those, on the same rows, within the budget; Delete then removes the rows',
    async () => {
      const s = await scenario('again', 22);
      const { claim, dir, files } = await s.corpus('songs', { files: 40, seed: 47 });
      const sampler = new ConnectionSampler(s.db.url);
      await sampler.start();
      const observer = new CorpusObserver(cluster(), s.namespace, 'songs').start();
      await applyOrFail(cluster(), corpusObject({ name: 'songs', namespace: s.namespace, claim, filesPerShard: 10 }));
      const first = await waitForPhase(cluster(), s.namespace, 'songs', ['Succeeded', 'Failed'], 300_000);
      expect(first).toMatchObject({ phase: 'Succeeded', files: { total: 40, processed: 40 } });
      const before = await rows(s.db.url, 'again/songs');
      expect([...before.values()].filter((r) => r.status !== 'ok' || r.attempts !== 1)).toEqual([]);

      // 3 added, 2 changed (a byte more), 1 touched (same bytes, another mtime), 2 deleted.
      const added = generateCorpus({ files: 3, seed: 48 }).map((f) => ({ ...f, path: `added/${f.path}` }));
      for (const f of added) {
        await mkdir(path.dirname(path.join(dir, f.path)), { recursive: true, mode: 0o755 });
        await writeFile(path.join(dir, f.path), f.bytes, { mode: 0o644 });
      }
      const [changedA, changedB, touched, goneA, goneB] = [files[1]!, files[12]!, files[25]!, files[30]!, files[39]!];
      for (const f of [changedA, changedB])
        await writeFile(path.join(dir, f), Buffer.concat([await readFile(path.join(dir, f)), Buffer.alloc(1)]));
      await utimes(path.join(dir, touched), new Date(), new Date(Date.now() - 3_600_000));
      for (const f of [goneA, goneB]) await unlink(path.join(dir, f));

      const patch = async (spec: Record<string, unknown>) => {
        const r = await cluster().kubectl([
          '-n',
          s.namespace,
          'patch',
          'midicorpus',
          'songs',
          '--type=merge',
          '-p',
          JSON.stringify({ spec }),
        ]);
        expect(r.code, r.stderr).toBe(0);
      };
      await patch({ rerun: 1 });
      const again = await eventually(
        'run 1 to finish',
        async () => {
          const st = (await readCorpus(cluster(), s.namespace, 'songs'))?.status;
          return st?.observedRerun === 1 && (st.phase === 'Succeeded' || st.phase === 'Failed') ? st : undefined;
        },
        300_000,
      );
      expect(again).toMatchObject({
        phase: 'Succeeded',
        observedRerun: 1,
        lastScan: { added: 3, changed: 3, unchanged: 35, missing: 2, work: 6 },
        files: { total: 41, processed: 41, failed: 0 },
        shards: { total: 1, succeeded: 1, failed: 0 },
        jobs: { scan: 'songs-scan-1', run: 'songs-run-1' },
      });
      // The first run's Jobs are still there (retention), the new ones beside them.
      expect((await readJob(cluster(), s.namespace, 'songs-run'))?.spec?.completions).toBe(4);
      expect((await readJob(cluster(), s.namespace, 'songs-run-1'))?.spec?.completions).toBe(1);

      const after = await rows(s.db.url, 'again/songs');
      const written = [...after.values()].filter((r) => r.attempts > 1).map((r) => r.path);
      expect(written.sort()).toEqual([changedA, changedB, touched].sort());
      for (const f of added) expect(after.get(f.path)).toMatchObject({ status: 'ok', attempts: 1 });
      for (const f of [goneA, goneB]) expect(after.get(f)).toMatchObject({ status: 'missing', id: before.get(f)!.id });
      for (const [p, old] of before) {
        if ([changedA, changedB, touched, goneA, goneB].includes(p)) continue;
        expect(after.get(p), p).toMatchObject({ status: 'ok', id: old.id, attempts: 1, analysed_at: old.analysed_at });
      }

      const history = await observer.stop();
      const figures = await sampler.stop();
      const report = budgetOf('rerun: run again', 22, history.budget, figures, history.peakLivePods);
      keepReport(report);
      expect(figures.peak.everyone).toBeLessThanOrEqual(report.budget);
      expect(figures.peak.runners).toBeLessThanOrEqual(report.runnerCeiling);

      // Delete: the finalizer goes on; deleting the corpus deletes its rows, then the object.
      await patch({ deletionPolicy: 'Delete' });
      await eventually('the finalizer', async () =>
        (await readCorpus(cluster(), s.namespace, 'songs'))?.metadata.finalizers?.includes(
          'midi.corpus.dev/delete-rows',
        ),
      );
      const del = await cluster().kubectl([
        '-n',
        s.namespace,
        'delete',
        'midicorpus',
        'songs',
        '--wait=true',
        '--timeout=120s',
      ]);
      expect(del.code, del.stderr).toBe(0);
      expect(await readCorpus(cluster(), s.namespace, 'songs')).toBeUndefined();
      expect((await rows(s.db.url, 'again/songs')).size).toBe(0);
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    'a bump on a running corpus stops the run in flight, then runs again over what is left: every file once, within the budget; Delete with the database down says so, and Keep lets the corpus go',
    async () => {
      // Two shards of 120: each runner's first batch (50 files) commits, its next one waits at the gate (as in the
      // helm disruption scenario), and the last 20 files of each shard are not even in flight when the run is stopped.
      const s = await scenario('superseded', 22);
      const { claim, files } = await s.corpus('songs', { files: 240, seed: 49 });
      const gate = await WriteGate.install(s.ownerUrl, 60);
      await gate.freeze('superseded/songs');
      const sampler = new ConnectionSampler(s.db.url);
      await sampler.start();
      const observer = new CorpusObserver(cluster(), s.namespace, 'songs').start();
      const kubectl = async (args: string[]) => {
        const r = await cluster().kubectl(['-n', s.namespace, ...args]);
        expect(r.code, r.stderr).toBe(0);
        return r.stdout;
      };
      const patch = (spec: Record<string, unknown>) =>
        kubectl(['patch', 'midicorpus', 'songs', '--type=merge', '-p', JSON.stringify({ spec })]);
      try {
        await applyOrFail(
          cluster(),
          corpusObject({ name: 'songs', namespace: s.namespace, claim, filesPerShard: 120 }),
        );
        await eventually(
          'both runner pods held at the gate',
          async () => (await gate.waiting('superseded/songs')) === 2,
          120_000,
        );
        await patch({ rerun: 1 });
        await eventually('the run Job of the run in flight to be deleted', async () =>
          (await readJob(cluster(), s.namespace, 'songs-run')) === undefined ? true : undefined,
        );
        // Held at the gate, the stopping runners cannot commit their batch in flight: it is rolled back when they exit
        // (after their shutdown grace). Only then is the gate opened, for the new run (whose scan waits for it too).
        await eventually(
          "the stopped run's pods to be gone",
          async () => ((await jobPods(cluster(), s.namespace, 'songs-run')).length === 0 ? true : undefined),
          120_000,
        );
        await gate.thaw('superseded/songs');
        const status = await eventually(
          'run 1 to finish',
          async () => {
            const st = (await readCorpus(cluster(), s.namespace, 'songs'))?.status;
            return st?.observedRerun === 1 && (st.phase === 'Succeeded' || st.phase === 'Failed') ? st : undefined;
          },
          300_000,
        );
        expect(status).toMatchObject({ phase: 'Succeeded', files: { total: 240, processed: 240, failed: 0 } });
        // What the stopped run committed (the first batch of each shard at least: a batch holds at most 50 files, so
        // the first never reaches the gate; at most the first 60 files a shard) was kept; the rest, its batches in
        // flight rolled back, was the new run's work.
        expect(status.lastScan?.work).toBeGreaterThanOrEqual(120);
        expect(status.lastScan?.work).toBeLessThan(240);
        await expectEveryFileRecordedOnce(s.db.url, 'superseded/songs', files, { allGood: true });
        const events = (
          await cluster().kc.makeApiClient(CoreV1Api).listNamespacedEvent({
            namespace: s.namespace,
            fieldSelector: 'involvedObject.kind=MidiCorpus,involvedObject.name=songs',
          })
        ).items as CoreV1Event[];
        expect(events.map((e) => e.reason)).toEqual(expect.arrayContaining(['RunSuperseded', 'RerunStarted']));
      } finally {
        await gate.close();
      }
      const history = await observer.stop();
      const figures = await sampler.stop();
      const report = budgetOf('rerun: superseded mid-run', 22, history.budget, figures, history.peakLivePods);
      keepReport(report);
      expect(figures.peak.everyone).toBeLessThanOrEqual(report.budget);
      expect(figures.peak.runners).toBeLessThanOrEqual(report.runnerCeiling);

      // Delete with the database down: the deletion waits, and the corpus says why; Keep lets it go, rows kept.
      await patch({ deletionPolicy: 'Delete' });
      await eventually('the finalizer', async () =>
        (await readCorpus(cluster(), s.namespace, 'songs'))?.metadata.finalizers?.includes(
          'midi.corpus.dev/delete-rows',
        ),
      );
      await s.db.stop();
      try {
        await kubectl(['delete', 'midicorpus', 'songs', '--wait=false']);
        const progressing = await eventually(
          'the corpus to say its rows could not be deleted',
          async () =>
            (await readCorpus(cluster(), s.namespace, 'songs'))?.status?.conditions?.find(
              (c) => c.type === 'Progressing' && c.reason === 'RowsNotDeleted',
            ),
          60_000,
        );
        expect(progressing.message).toContain('set spec.deletionPolicy to Keep');
        expect(progressing.message).not.toMatch(/postgres:\/\/|midi:[0-9a-f]{24}@/);
        await patch({ deletionPolicy: 'Keep' });
        await eventually('the corpus to be gone', async () =>
          (await readCorpus(cluster(), s.namespace, 'songs')) === undefined ? true : undefined,
        );
      } finally {
        await s.db.start();
      }
      expect((await rows(s.db.url, 'superseded/songs')).size).toBe(240);
    },
    SCENARIO_TIMEOUT_MS,
  );
});
