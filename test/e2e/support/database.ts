/**
 * The Postgres side of the end-to-end tests: a real server per scenario, a sampler of its connections, a gate that
 * holds the runners' result writes at a chosen point, and what the runners recorded.
 *
 * Connections the tests open themselves carry an application_name starting with "e2e " and are counted apart: they are
 * "another application on the server" to the operator, which takes them off its budget (status.budget's
 * foreignConnections) and admits its runners beside them. The sampler's `everyone` is the server's whole count.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { migrate } from '../../../job-runner/db/migrations.js';
import { startTestPostgres, type TestPostgres } from '../../support/postgres.js';

export const TEST_APPLICATION_PREFIX = 'e2e ';

/**
 * A Postgres server outside the cluster, as users run one: on this machine, listening on 127.0.0.1 for the tests
 * and on the cluster network's host address for the pods (which reach it through a Service, see scenario.ts).
 */
export async function startDatabase(
  maxConnections: number,
  network: { address: string; cidr: string },
): Promise<TestPostgres> {
  return startTestPostgres({ maxConnections, listen: [{ address: network.address, clients: network.cidr }] });
}

async function connect(url: string, name: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, application_name: `${TEST_APPLICATION_PREFIX}${name}` });
  client.on('error', () => {}); // the server may go away at the end of a test: the next query fails instead
  await client.connect();
  return client;
}

/** One sample of the server's client connections, the tests' own left out. */
export interface ConnectionSample {
  /** Every other client backend: runners, scans, the operator, migrations. */
  total: number;
  /**
   * Every client backend on the server, the tests' own (this sampler, the gate) included: what the cap holds against,
   * since the operator counts the tests' connections as another application's.
   */
  everyone: number;
  runners: number;
  scans: number;
  operator: number;
}

export interface ConnectionFigures {
  samples: number;
  /** The highest of each count over the run (each its own maximum, not one sample's). */
  peak: ConnectionSample;
}

/**
 * Samples pg_stat_activity about every 100 ms on its own connection, from start() to stop(), and keeps the peaks.
 * Every client backend counts (on any database of the server: max_connections is the server's), except this sampler's
 * and the other test connections'.
 */
export class ConnectionSampler {
  private client?: pg.Client;
  private running?: Promise<void>;
  private stopped = false;
  private last?: ConnectionSample;
  private readonly figures: ConnectionFigures = {
    samples: 0,
    peak: { total: 0, everyone: 0, runners: 0, scans: 0, operator: 0 },
  };

  constructor(
    private readonly url: string,
    private readonly intervalMs = 100,
  ) {}

  async start(): Promise<void> {
    this.client = await connect(this.url, 'sampler');
    await this.sample();
    this.running = this.loop();
  }

  /** The latest sample. */
  get current(): ConnectionSample | undefined {
    return this.last;
  }

  /** The peaks so far (the sampler keeps running). */
  get peaks(): ConnectionFigures {
    return { samples: this.figures.samples, peak: { ...this.figures.peak } };
  }

  async stop(): Promise<ConnectionFigures> {
    this.stopped = true;
    await this.running;
    await this.client?.end().catch(() => {});
    return this.peaks;
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      await new Promise((resolve) => setTimeout(resolve, this.intervalMs));
      if (!this.stopped) await this.sample().catch(() => {});
    }
  }

  private async sample(): Promise<void> {
    const { rows } = await this.client!.query<Record<keyof ConnectionSample, string>>(
      `
      SELECT count(*) FILTER (WHERE application_name NOT LIKE $1) AS total,
             count(*) AS everyone,
             count(*) FILTER (WHERE application_name LIKE 'mco run%') AS runners,
             count(*) FILTER (WHERE application_name LIKE 'mco scan%') AS scans,
             count(*) FILTER (WHERE application_name = 'mco operator') AS operator
        FROM pg_stat_activity
       WHERE backend_type = 'client backend'`,
      [`${TEST_APPLICATION_PREFIX}%`],
    );
    const row = rows[0]!;
    const sample: ConnectionSample = {
      total: Number(row.total),
      everyone: Number(row.everyone),
      runners: Number(row.runners),
      scans: Number(row.scans),
      operator: Number(row.operator),
    };
    this.last = sample;
    this.figures.samples++;
    for (const key of ['total', 'everyone', 'runners', 'scans', 'operator'] as const)
      this.figures.peak[key] = Math.max(this.figures.peak[key], sample[key]);
  }
}

/**
 * A test-owned trigger on midi.files that can hold a corpus's result writes. While a corpus is frozen, a batch that
 * records any file past the first `freePerShard` of its shard (in path order) waits on an advisory lock the test
 * holds for that corpus. So runner pods are caught mid-shard deterministically (the shard's first batch committed,
 * the next one in flight) instead of by timing, and a shared budget's pods stay alive long enough to watch shares
 * move. The scan's inserts (status 'pending') always pass.
 */
export class WriteGate {
  static readonly LOCK_CLASS = 4242;
  private holder?: pg.Client;
  private readonly frozen = new Set<string>();

  private constructor(private readonly url: string) {}

  /** Migrates the database (as the runners would) and installs the trigger. */
  static async install(url: string, freePerShard: number): Promise<WriteGate> {
    const client = await connect(url, 'gate setup');
    try {
      await migrate(client);
      await client.query(`
        CREATE SCHEMA IF NOT EXISTS e2e;
        CREATE OR REPLACE FUNCTION e2e.gate() RETURNS trigger LANGUAGE plpgsql AS $fn$
        BEGIN
          IF NEW.status <> 'pending' AND (SELECT count(*) FROM midi.files f
                WHERE f.corpus_id = NEW.corpus_id AND f.shard = NEW.shard AND f.raw_path < NEW.raw_path) >= ${Number(freePerShard)} THEN
            PERFORM pg_advisory_xact_lock_shared(${WriteGate.LOCK_CLASS}, hashtext((SELECT key FROM midi.corpora WHERE id = NEW.corpus_id)));
          END IF;
          RETURN NEW;
        END
        $fn$;
        DROP TRIGGER IF EXISTS e2e_gate ON midi.files;
        CREATE TRIGGER e2e_gate BEFORE INSERT OR UPDATE ON midi.files FOR EACH ROW EXECUTE FUNCTION e2e.gate();`);
    } finally {
      await client.end();
    }
    return new WriteGate(url);
  }

  /** Holds the result writes of corpus `key` (`<namespace>/<name>`) from now on. */
  async freeze(key: string): Promise<void> {
    if (this.frozen.has(key)) return;
    this.holder ??= await connect(this.url, 'gate');
    await this.holder.query('SELECT pg_advisory_lock($1, hashtext($2))', [WriteGate.LOCK_CLASS, key]);
    this.frozen.add(key);
  }

  async thaw(key: string): Promise<void> {
    if (!this.frozen.delete(key)) return;
    await this.holder!.query('SELECT pg_advisory_unlock($1, hashtext($2))', [WriteGate.LOCK_CLASS, key]);
  }

  /** Lets everything through and closes the gate's connection. */
  async close(): Promise<void> {
    this.frozen.clear();
    const holder = this.holder;
    this.holder = undefined;
    await holder?.end().catch(() => {});
  }

  /** Runner processes (told apart by application_name: pod and shard) with a result write of corpus `key` waiting at the gate now. */
  async waiting(key: string): Promise<number> {
    const client = await connect(this.url, 'gate probe');
    try {
      const { rows } = await client.query<{ n: string }>(
        `SELECT count(DISTINCT a.application_name) AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
          WHERE l.locktype = 'advisory' AND l.classid = $1 AND l.objid = hashtext($2)::oid AND l.objsubid = 2 AND NOT l.granted`,
        [WriteGate.LOCK_CLASS, key],
      );
      return Number(rows[0]!.n);
    } finally {
      await client.end();
    }
  }
}

export interface RecordedFile {
  path: string;
  shard: number;
  status: 'pending' | 'ok' | 'failed' | 'skipped';
  reason: string | null;
  /** How many times a result was written for the file. */
  attempts: number;
  analysed: boolean;
  /** How many warnings the row holds. */
  warnings: number;
}

/** Every row the runners' database holds for a corpus (key `<namespace>/<name>`), in path order. */
export async function recordedFiles(url: string, corpusKey: string): Promise<RecordedFile[]> {
  const client = await connect(url, 'check');
  try {
    const { rows } = await client.query<RecordedFile>(
      `
      SELECT f.path, f.shard, f.status, f.reason, f.attempts, a.file_id IS NOT NULL AS analysed,
             cardinality(f.warnings) AS warnings
        FROM midi.files f JOIN midi.corpora c ON c.id = f.corpus_id LEFT JOIN midi.file_analysis a ON a.file_id = f.id
       WHERE c.key = $1 ORDER BY f.path`,
      [corpusKey],
    );
    return rows;
  } finally {
    await client.end();
  }
}

/** Files recorded per shard, for a corpus. */
export async function recordedPerShard(
  url: string,
  corpusKey: string,
): Promise<Map<number, { total: number; done: number }>> {
  const out = new Map<number, { total: number; done: number }>();
  for (const f of await recordedFiles(url, corpusKey)) {
    const s = out.get(f.shard) ?? { total: 0, done: 0 };
    s.total++;
    if (f.status !== 'pending') s.done++;
    out.set(f.shard, s);
  }
  return out;
}

/** Every file under `dir`, as paths relative to it with '/' separators, sorted. */
export async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)).split(path.sep).join('/'))
    .sort();
}
