/**
 * The controller's informers after their connections to the API server break. client-node's informer (2.0 as 1.4)
 * restarts its watch by itself only after a 410 or its own timeout; on a reset connection or a failed list it stops for good, and a controller
 * on top of it would silently never see another change. Here the controller runs as a plain process (not in a pod:
 * its kubeconfig points at a TCP proxy the test can cut) against the real control plane; after every connection is
 * reset and the API server is unreachable for a few seconds, a MidiCorpus created afterwards must still be seen and
 * ingested.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { KubeConfig } from '@kubernetes/client-node';
import { midiCorpusCRDYaml } from '../../controller/api/crd.js';
import { describeWithCluster, eventually } from '../cluster/vitest.js';
import { applyOrFail, corpusObject, repoRoot, waitForPhase } from './support/operator.js';
import { useE2ECluster } from './support/suite.js';
import { expectEveryFileRecordedOnce, startScenario, type Scenario } from './support/scenario.js';
import { TcpProxy } from '../../bench/support/tcp-proxy.js';

const TIMEOUT_MS = 300_000;

describeWithCluster('the controller after its API server connections break', () => {
  const cluster = useE2ECluster();
  let proxy: TcpProxy;
  let controller: ChildProcess;
  let dir: string;
  let logFile: string;
  let scenario: Scenario | undefined;

  beforeAll(async () => {
    const r = await cluster().kubectl(['apply', '-f', '-'], midiCorpusCRDYaml());
    expect(r.code, r.stderr).toBe(0);
    await cluster().kubectl([
      'wait',
      '--for=condition=Established',
      'crd/midicorpora.midi.corpus.dev',
      '--timeout=60s',
    ]);
    const apiserver = new URL(cluster().apiserverUrl);
    proxy = new TcpProxy({ host: apiserver.hostname, port: Number(apiserver.port) });
    const port = await proxy.start();

    // The admin kubeconfig with the server moved behind the proxy (same TLS end to end: the proxy only forwards bytes).
    const kc = new KubeConfig();
    kc.loadFromFile(cluster().kubeconfigPath);
    const viaProxy = new KubeConfig();
    viaProxy.loadFromOptions({
      clusters: kc.clusters.map((c) => ({ ...c, server: `https://127.0.0.1:${port}` })),
      users: kc.users,
      contexts: kc.contexts,
      currentContext: kc.currentContext,
    });
    dir = await mkdtemp(path.join(os.tmpdir(), 'mco-e2e-restart-'));
    await writeFile(path.join(dir, 'kubeconfig'), viaProxy.exportConfig());
    logFile = path.join(dir, 'controller.log');
    controller = spawn(
      process.execPath,
      [
        path.join(repoRoot, 'dist', 'cli', 'main.js'),
        'controller',
        '--namespace=restart',
        '--leader-elect=false',
        '--metrics-port=0',
        '--health-port=0',
      ],
      {
        env: { ...process.env, KUBECONFIG: path.join(dir, 'kubeconfig'), POD_NAME: 'restart-test', LOG_LEVEL: 'info' },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    controller.stderr!.pipe(createWriteStream(logFile));
    await eventually('the controller to list and watch', async () =>
      (await readFile(logFile, 'utf8')).includes('controller running'),
    );
  }, TIMEOUT_MS);

  afterAll(async () => {
    // Stopped, and gone, before the proxy it talks through.
    if (controller && controller.exitCode === null && controller.signalCode === null) {
      const exited = once(controller, 'exit');
      controller.kill('SIGTERM');
      await exited;
    }
    await proxy?.stop();
    await scenario?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const logLines = async () =>
    (await readFile(logFile, 'utf8'))
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);

  it(
    'restarts every informer after the connections are reset and the API server is away, and acts on what changed meanwhile',
    async () => {
      // The controller runs on this machine, not in a pod: the Secret gives the server's host address, which it and the
      // runner pods can both reach (a ClusterIP is reachable from pods only).
      scenario = await startScenario(cluster(), 'restart', 30, { via: 'host' });
      const before = await scenario.corpus('before', { files: 20, seed: 51 });
      await applyOrFail(
        cluster(),
        corpusObject({ name: 'before', namespace: 'restart', claim: before.claim, filesPerShard: 10 }),
      );
      await waitForPhase(cluster(), 'restart', 'before', ['Succeeded']);

      // Every watch reset; for 3 s no connection at all (the restarts' lists fail too and back off).
      const cutAt = Date.now();
      await proxy.cut();
      const after = await scenario.corpus('after', { files: 20, seed: 52 });
      await applyOrFail(
        cluster(),
        corpusObject({ name: 'after', namespace: 'restart', claim: after.claim, filesPerShard: 10 }),
      );
      await sleep(3000);
      await proxy.resume();

      const status = await waitForPhase(cluster(), 'restart', 'after', ['Succeeded', 'Failed']);
      expect(status).toMatchObject({ phase: 'Succeeded', files: { total: 20, processed: 20, failed: 0 } });
      await expectEveryFileRecordedOnce(scenario.db.url, 'restart/after', after.files, { allGood: true });
      const restarted = new Set(
        (await logLines())
          .filter((l) => l.msg === 'watch failed; restarting' && Number(l.time) >= cutAt)
          .map((l) => l.informer),
      );
      expect(restarted).toEqual(new Set(['midicorpora', 'jobs', 'pods']));
      expect(controller.exitCode).toBeNull(); // still running: the errors were survived, not fatal

      // The endpoints tell the same: ready (the informers have listed again), restarts counted, both corpora done.
      const ports = (await logLines()).find((l) => l.msg === 'controller running') as {
        health: number;
        metrics: number;
      };
      expect((await fetch(`http://127.0.0.1:${ports.health}/readyz`)).status).toBe(200);
      // The phase gauge is counted from the controller's cache, which sees the status it wrote a moment after the
      // API server does (the watch): CI once read it in between, with "after" still Running.
      const metrics = await eventually('the corpora gauge to count both corpora Succeeded', async () => {
        const text = await (await fetch(`http://127.0.0.1:${ports.metrics}/metrics`)).text();
        return /midi_corpus_corpora\{phase="Succeeded"\} 2/.test(text) ? text : undefined;
      });
      for (const informer of ['midicorpora', 'jobs', 'pods']) {
        expect(
          Number(new RegExp(`midi_corpus_watch_restarts_total\\{informer="${informer}"\\} (\\d+)`).exec(metrics)?.[1]),
        ).toBeGreaterThanOrEqual(1);
      }
      expect(metrics).toMatch(/midi_corpus_corpora\{phase="Succeeded"\} 2/);
      expect(metrics).toMatch(/midi_corpus_leader 1/);
    },
    TIMEOUT_MS,
  );
});
