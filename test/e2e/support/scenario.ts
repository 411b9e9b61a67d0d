/**
 * One end-to-end scenario's surroundings: its namespace, its own Postgres server (max_connections is a server's, so
 * scenarios sharing a server would share a budget), a generated corpus on disk, the database Secret, and the
 * connection figures to report.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { expect } from 'vitest';
import { stringify } from 'yaml';
import { writeSampleCorpus } from '../../../job-runner/synth/sample.js';
import type { BudgetStatus } from '../../../controller/api/v1alpha1/midicorpus.js';
import type { TestCluster } from '../../cluster/cluster.js';
import type { TestPostgres } from '../../support/postgres.js';
import { filesUnder, recordedFiles, startDatabase, type ConnectionFigures } from './database.js';
import { applyOrFail, corpusVolumeObjects, createDatabaseSecret } from './operator.js';

export interface Scenario {
  namespace: string;
  /** The server; `db.url` is the tests' own way in (127.0.0.1). */
  db: TestPostgres;
  /**
   * The URL the pods are given in the Secret `db`: through the Service in front of the server, by its ClusterIP, as
   * the ordinary role `midi` (no superuser, no pg_monitor): what every connection test must use, so that an overshoot
   * is refused by the server as "too many clients" instead of taking a superuser's reserved slot.
   */
  podUrl: string;
  /** The tests' way in (127.0.0.1) as that same role: what creates the schema the runners then own (WriteGate). */
  ownerUrl: string;
  maxConnections: number;
  /** Corpora written so far, by name. */
  corpora: Map<string, ScenarioCorpus>;
  /**
   * Writes a generated corpus (songs, plus one file per bad-input kind when `bad`), makes it a local PersistentVolume
   * with a claim in the scenario's namespace or `namespace` (corpusVolumeObjects), and returns its directory, files
   * and claim.
   */
  corpus(name: string, o: { files: number; seed: number; bad?: boolean; namespace?: string }): Promise<ScenarioCorpus>;
  cleanup(): Promise<void>;
}

export interface ScenarioCorpus {
  dir: string;
  files: string[];
  /** The PersistentVolumeClaim of the corpus (`corpus-<name>`). */
  claim: string;
}

/**
 * `via`: how the pods reach the server. 'service' (default): a selector-less Service `postgres` in the namespace in
 * front of the server, as users deploy a database outside the cluster. 'host': the server's own address on the
 * cluster network, reachable from pods and from this machine alike (for a controller run outside the cluster).
 */
export async function startScenario(
  cluster: TestCluster,
  namespace: string,
  maxConnections: number,
  o: { via?: 'service' | 'host' } = {},
): Promise<Scenario> {
  await cluster.createNamespace(namespace);
  const db = await startDatabase(maxConnections, { address: cluster.hostAddress, cidr: cluster.hostNetwork });
  const password = randomBytes(12).toString('hex');
  const database = new URL(db.url).pathname.slice(1);
  await db.query(`CREATE ROLE midi LOGIN PASSWORD '${password}'`);
  await db.query(`GRANT CREATE ON DATABASE ${pg.escapeIdentifier(database)} TO midi`);
  const ownerUrl = new URL(db.url);
  ownerUrl.username = 'midi';
  ownerUrl.password = password;
  const podUrl = new URL(ownerUrl);
  if ((o.via ?? 'service') === 'service') {
    const service = await cluster.exposeHostService(namespace, 'postgres', db.port);
    podUrl.hostname = service.clusterIP;
    podUrl.port = String(service.port);
  } else {
    podUrl.hostname = cluster.hostAddress;
  }
  await createDatabaseSecret(cluster, namespace, podUrl.toString());
  const root = await mkdtemp(path.join(os.tmpdir(), `mco-e2e-${namespace}-`));
  // The runner pods read the corpus as the image's user (65532): mkdtemp's 0700 would shut them out.
  await chmod(root, 0o755);
  const corpora = new Map<string, ScenarioCorpus>();
  const volumes: object[] = [];
  return {
    namespace,
    db,
    podUrl: podUrl.toString(),
    ownerUrl: ownerUrl.toString(),
    maxConnections,
    corpora,
    async corpus(name, o) {
      const dir = path.join(root, name);
      await writeSampleCorpus(dir, { files: o.files, seed: o.seed, bad: o.bad ?? false });
      const claim = `corpus-${name}`;
      const objects = corpusVolumeObjects({ namespace: o.namespace ?? namespace, claim, dir });
      await applyOrFail(cluster, ...objects);
      volumes.push(...objects);
      const entry = { dir, files: await filesUnder(dir), claim };
      corpora.set(name, entry);
      return entry;
    },
    async cleanup() {
      // Not waiting: a claim still mounted by a finished pod stays until that pod is gone (pvc-protection).
      if (volumes.length > 0)
        await cluster.kubectl(
          ['delete', '--wait=false', '--ignore-not-found', '-f', '-'],
          volumes.map((v) => stringify(v)).join('---\n'),
        );
      await db.destroy();
      await rm(root, { recursive: true, force: true });
    },
  };
}

/**
 * What the runners recorded for a corpus, against the files on disk: every file present exactly once (one row per
 * path, and each file's result written once: `attempts` = 1, so no retry, crash or replacement pod analysed a file
 * twice), nothing left pending, an analysis row for every ok file; with `allGood` (a corpus without bad inputs), no
 * failure at all, each listed with its reason if there is one. Returns the numbers of ok and failed files.
 */
export async function expectEveryFileRecordedOnce(
  url: string,
  corpusKey: string,
  files: string[],
  o: { allGood?: boolean } = {},
): Promise<{ ok: number; failed: number }> {
  const rows = await recordedFiles(url, corpusKey);
  if (o.allGood)
    expect(rows.filter((r) => r.status !== 'ok').map((r) => `${r.path}: ${r.status} (${r.reason})`)).toEqual([]);
  expect(rows.map((r) => r.path)).toEqual(files);
  expect(rows.filter((r) => r.status === 'pending').map((r) => r.path)).toEqual([]);
  expect(rows.filter((r) => r.attempts !== 1).map((r) => `${r.path}: ${r.attempts} attempts`)).toEqual([]);
  expect(rows.filter((r) => r.status === 'ok' && !r.analysed).map((r) => r.path)).toEqual([]);
  return { ok: rows.filter((r) => r.status === 'ok').length, failed: rows.filter((r) => r.status === 'failed').length };
}

export interface BudgetReport {
  scenario: string;
  maxConnections: number;
  /** max_connections − reserved − headroom: what the operator, its scans and its runners may hold together. */
  budget: number;
  /** The runners' and scans' part of it (the operator keeps one connection for itself). */
  runnerCeiling: number;
  allowanceInStatus?: number;
  /** What the controller last saw others hold (the tests' own connections, to it another application). */
  foreignInStatus?: number;
  perPod?: number;
  figures: ConnectionFigures;
  peakLivePods?: number;
}

/** The budget the controller computed, from the figures it wrote in status, checked against the spec's inputs. */
export function budgetOf(
  scenario: string,
  maxConnections: number,
  status: BudgetStatus | undefined,
  figures: ConnectionFigures,
  peakLivePods?: number,
): BudgetReport {
  expect(status, 'budget figures in status').toBeDefined();
  expect(status).toMatchObject({ limit: maxConnections, reserved: 3, headroom: 2 });
  const budget = status!.limit! - status!.reserved! - status!.headroom!;
  return {
    scenario,
    maxConnections,
    budget,
    runnerCeiling: budget - 1,
    allowanceInStatus: status!.allowance,
    foreignInStatus: status!.foreignConnections,
    perPod: status!.perPod,
    figures,
    peakLivePods,
  };
}

export function formatReport(r: BudgetReport): string {
  const p = r.figures.peak;
  return (
    `${r.scenario}: max_connections ${r.maxConnections}, budget ${r.budget} (runners+scans ${r.runnerCeiling}, allowance in status ${r.allowanceInStatus}, foreign in status ${r.foreignInStatus}); ` +
    `peak everyone ${p.everyone}, operator's ${p.total}, runners ${p.runners}, scans ${p.scans}, operator ${p.operator} over ${r.figures.samples} samples` +
    (r.peakLivePods !== undefined ? `; peak live runner pods ${r.peakLivePods} × ${r.perPod} connections` : '')
  );
}
