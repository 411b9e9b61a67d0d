/**
 * Benchmark (m): Postgres' own CPU per file through the runner's write path against a COPY of the same rows.
 *
 * The files are analysed once, in this process, into the results the runner's parse workers hand its writer
 * (run-shard.ts toRecord). Then, in a database of its own, each round records them three ways, in an order that
 * rotates from round to round so that neither side always meets the other's leftovers:
 *
 * - `runner`: what the runner meets: a scan recorded the files (pending, not measured), then writeBatch commits them
 *   in the runner's batches (RUN_SHARD_DEFAULTS.batchFiles each, one transaction each), one after another;
 * - `runnerFresh`: the same batches into a corpus no scan recorded, so every file row is inserted, as the COPY's are;
 * - `copy`: the cheapest way to load the same rows: one transaction, one text COPY per table (files, then their ids
 *   read back, then analyses, tracks, channels and split tracks). It keeps no batching, no idempotency and no retry
 *   safety: it is the floor, not a rival.
 *
 * Server CPU is the CPU time of the one backend that served each side (/proc/<pid>/schedstat, nanoseconds; the
 * backend's pid from pg_backend_pid()), read before and after: what this connection made Postgres do, whatever the
 * rest of the machine is doing. The whole server's (every postmaster child, WAL writer and checkpointer included) is
 * kept beside it in `raw`, noisier. After each side the three corpora's rows are compared: every side must have
 * written the same rows, or the comparison means nothing.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { analyzeMidi } from '../job-runner/analysis/analyze.js';
import { ANALYSIS_VERSION } from '../job-runner/analysis/version.js';
import { migrate } from '../job-runner/db/migrations.js';
import { displayPath } from '../job-runner/db/paths.js';
import {
  ANALYSIS_COLUMNS,
  CHANNEL_COLUMNS,
  ensureCorpus,
  recordScan,
  shardFiles,
  TRACK_COLUMNS,
  writeBatch,
  type FileResult,
} from '../job-runner/db/store.js';
import { copyText, Json, type CopyValue } from '../job-runner/db/copy-text.js';
import { inTransaction } from '../job-runner/db/transaction.js';
import { RUN_SHARD_DEFAULTS } from '../job-runner/runner/defaults.js';
import { median } from './support/stats.js';
import { inFreshDatabase } from './support/database.js';

export interface WritePathSide {
  /** Microseconds of the serving backend's CPU per file (median over the rounds). */
  serverCpuUsPerFile: number;
  /** The same for every postmaster child (background processes included). */
  wholeServerCpuUsPerFile: number;
  /** Round trips to the server (statements sent). */
  statementsPerFile: number;
}

export interface WritePathBenchResult {
  files: number;
  ok: number;
  /** Rows written per file, all tables together (files, analyses, tracks, channels). */
  rowsPerFile: number;
  batchFiles: number;
  rounds: number;
  runner: WritePathSide;
  runnerFresh: WritePathSide;
  copy: WritePathSide;
  /** Median of the rounds' runner ÷ copy server CPU. */
  serverCpuPerFileOverCopy: number;
  /** The same with the rows inserted by the batches (no scan first). */
  serverCpuPerFileOverCopyFresh: number;
  perRound: { runner: number; runnerFresh: number; copy: number }[];
}

export interface WritePathBenchOptions {
  /** The server's data directory (cluster in pgdata/): the postmaster's pid for the whole server's CPU. */
  dataDir: string;
  files: { path: string; bytes: Uint8Array }[];
  rounds: number;
  batchFiles?: number;
}

type Side = 'runner' | 'runnerFresh' | 'copy';
const SIDES: Side[] = ['runner', 'runnerFresh', 'copy'];

export async function benchWritePath(serverUrl: string, options: WritePathBenchOptions): Promise<WritePathBenchResult> {
  const batchFiles = options.batchFiles ?? RUN_SHARD_DEFAULTS.batchFiles;
  const results = options.files.map(({ path: p, bytes }) => resultOf(p, bytes));
  const ok = results.filter((r) => r.outcome.status === 'ok').length;
  const wholeServer = postmasterCpuNs(path.join(options.dataDir, 'pgdata'));
  return inFreshDatabase(serverUrl, 'mco_bench_write_path', 'mco bench write-path', async (url) => {
    const client = new pg.Client({ connectionString: url, application_name: 'mco bench write-path' });
    await client.connect();
    try {
      await migrate(client);
      const backend = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      const backendCpu = () => processCpuNs(backend.rows[0]!.pid);
      const rounds: Record<Side, { backendNs: number; serverNs: number; statements: number }>[] = [];
      let rowsPerFile = 0;
      for (let round = 0; round < options.rounds; round++) {
        const order = SIDES.map((_, i) => SIDES[(i + round) % SIDES.length]!);
        const measured = {} as (typeof rounds)[number];
        const corpora = {} as Record<Side, number>;
        for (const side of order) {
          const corpusId = await ensureCorpus(client, `bench-write-path-${side}-${round}`);
          corpora[side] = corpusId;
          if (side === 'runner')
            await recordScan(
              client,
              corpusId,
              results.map((r) => ({ path: r.path, size: r.size })),
              { shards: { shards: 1 } },
            );
          // As the runner does before its first batch: reading the shard also sets the scanned rows' hint bits, a cost
          // of the scan's commit that the first reader pays, not of the write path.
          if (side === 'runner') await shardFiles(client, corpusId, 0);
          // Every side starts just after a checkpoint, so each pays the same way for the first change to each page
          // (its full image goes to the WAL), as a runner does whose scan was long ago; otherwise whichever side the
          // server's own checkpoint happened to precede paid for it.
          await client.query('CHECKPOINT');
          const statements = countStatements(client);
          const [b0, s0] = [backendCpu(), wholeServer()];
          if (side === 'copy') await copyRows(client, corpusId, results);
          else
            for (let i = 0; i < results.length; i += batchFiles)
              await writeBatch(client, corpusId, results.slice(i, i + batchFiles));
          measured[side] = { backendNs: backendCpu() - b0, serverNs: wholeServer() - s0, statements: statements() };
        }
        const written: Awaited<ReturnType<typeof rowsOf>>[] = [];
        for (const s of SIDES) written.push(await rowsOf(client, corpora[s]));
        for (const [i, w] of written.entries())
          if (w.digest !== written[0]!.digest)
            throw new Error(`the ${SIDES[i]} side wrote other rows than the ${SIDES[0]} side`);
        rowsPerFile = written[0]!.rows / results.length;
        rounds.push(measured);
        // Empty tables again, the same for every round: a DELETE would leave free space scattered over the pages,
        // for the next round's sides to fill unevenly.
        await client.query('TRUNCATE midi.corpora CASCADE');
        const us = (s: Side) => (measured[s].backendNs / 1e3 / results.length).toFixed(0);
        process.stderr.write(
          `bench:   round ${round + 1}: server CPU per file: runner ${us('runner')} µs, fresh ${us('runnerFresh')} µs, COPY ${us('copy')} µs\n`,
        );
      }
      const side = (s: Side): WritePathSide => ({
        serverCpuUsPerFile: median(rounds.map((r) => r[s].backendNs)) / 1e3 / results.length,
        wholeServerCpuUsPerFile: median(rounds.map((r) => r[s].serverNs)) / 1e3 / results.length,
        statementsPerFile: rounds[0]![s].statements / results.length,
      });
      const perRound = rounds.map((r) => ({
        runner: r.runner.backendNs / 1e3 / results.length,
        runnerFresh: r.runnerFresh.backendNs / 1e3 / results.length,
        copy: r.copy.backendNs / 1e3 / results.length,
      }));
      return {
        files: results.length,
        ok,
        rowsPerFile,
        batchFiles,
        rounds: options.rounds,
        runner: side('runner'),
        runnerFresh: side('runnerFresh'),
        copy: side('copy'),
        serverCpuPerFileOverCopy: median(perRound.map((r) => r.runner / r.copy)),
        serverCpuPerFileOverCopyFresh: median(perRound.map((r) => r.runnerFresh / r.copy)),
        perRound,
      };
    } finally {
      await client.end();
    }
  });
}

/** What the runner's writer is handed for a file (run-shard.ts toRecord of a parse worker's result). */
function resultOf(p: string, bytes: Uint8Array): FileResult {
  const sha256 = createHash('sha256').update(bytes).digest();
  const o = analyzeMidi(bytes);
  return {
    path: p,
    size: bytes.length,
    shard: 0,
    sha256,
    analysisVersion: ANALYSIS_VERSION,
    outcome: o.ok
      ? { status: 'ok', analysis: o.analysis, warnings: o.warnings, splitTracks: [] }
      : { status: 'failed', reason: o.reason, warnings: o.warnings },
  };
}

/** Counts the statements a client sends from now on. */
function countStatements(client: pg.Client): () => number {
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  let n = 0;
  (client as { query: unknown }).query = (...args: unknown[]) => {
    n++;
    return query(...args);
  };
  return () => {
    (client as { query: unknown }).query = query;
    return n;
  };
}

/** The floor: every row in one transaction, a text COPY per table. */
async function copyRows(client: pg.Client, corpusId: number, results: readonly FileResult[]): Promise<void> {
  const copy = (table: string, columns: readonly string[], rows: Iterable<CopyValue[]>) =>
    pipeline(
      Readable.from(copyText(rows)),
      client.query(copyFrom(`COPY midi.${table} (${columns.join(', ')}) FROM STDIN`)),
    );
  await inTransaction(client, async () => {
    const now = new Date().toISOString();
    await copy(
      'files',
      [
        'corpus_id',
        'raw_path',
        'path',
        'size_bytes',
        'shard',
        'status',
        'reason',
        'warnings',
        'sha256',
        'analysis_version',
        'attempts',
        'analysed_at',
      ],
      results.map((r) => {
        const raw = Buffer.from(r.path as string);
        const o = r.outcome;
        return [
          corpusId,
          raw,
          displayPath(raw),
          r.size,
          r.shard,
          o.status,
          o.status === 'ok' ? null : o.reason,
          o.warnings ?? [],
          r.sha256,
          r.analysisVersion ?? null,
          1,
          now,
        ];
      }),
    );
    const { rows } = await client.query<{ id: string; path: string }>(
      `SELECT id, convert_from(raw_path, 'UTF8') AS path FROM midi.files WHERE corpus_id = $1`,
      [corpusId],
    );
    const idOf = new Map(rows.map((r) => [r.path, r.id]));
    const ok = results.flatMap((r) =>
      r.outcome.status === 'ok' ? [{ id: idOf.get(r.path as string)!, a: r.outcome.analysis }] : [],
    );
    await copy(
      'file_analysis',
      ANALYSIS_COLUMNS,
      ok.map(({ id, a }) => [
        id,
        a.format,
        a.division.kind,
        a.division.kind === 'ppq' ? a.division.ticksPerQuarter : null,
        a.division.kind === 'smpte' ? a.division.framesPerSecond : null,
        a.division.kind === 'smpte' ? a.division.ticksPerFrame : null,
        a.trackCount,
        a.channelCount,
        a.durationSeconds,
        a.durationTicks,
        a.mainBpm,
        new Json(a.tempoMap),
        new Json(a.timeSignatures),
        new Json(a.keySignatures),
        a.estimatedKey?.tonic ?? null,
        a.estimatedKey?.mode ?? null,
        a.estimatedKey?.correlation ?? null,
        a.estimatedKey?.confidence ?? null,
        a.noteCount,
        a.pitchMin,
        a.pitchMax,
        a.distinctPitches,
        a.velocityMin,
        a.velocityMean,
        a.velocityMax,
        a.noteDensity,
        a.maxPolyphony,
        a.meanPolyphony,
        a.pitchClassHistogram,
        a.hasDrums,
        a.controlChangeCount,
        a.pitchBendCount,
      ]),
    );
    await copy(
      'tracks',
      TRACK_COLUMNS,
      ok.flatMap(({ id, a }) =>
        a.tracks.map((t) => [
          id,
          t.index,
          t.name,
          t.channels,
          t.noteCount,
          t.pitchMin,
          t.pitchMax,
          t.durationSeconds,
          t.program,
          t.isDrum,
        ]),
      ),
    );
    await copy(
      'channel_instruments',
      CHANNEL_COLUMNS,
      ok.flatMap(({ id, a }) =>
        a.channels.map((c) => [id, c.channel, c.program, c.programName, c.family, c.isDrum, c.noteCount]),
      ),
    );
  });
}

/** Every row a corpus has in the four tables, ids, timestamps and attempt counts apart, as one digest. */
async function rowsOf(client: pg.Client, corpusId: number): Promise<{ rows: number; digest: string }> {
  const { rows } = await client.query<{ rows: string; digest: string }>(
    `WITH f AS (SELECT * FROM midi.files WHERE corpus_id = $1),
     r AS (
       SELECT f.raw_path, 0 AS t, 0 AS k,
              to_jsonb(f) - '{id,corpus_id,attempts,scanned_at,analysed_at,updated_at,modified_at}'::text[] AS j FROM f
       UNION ALL SELECT f.raw_path, 1, 0, to_jsonb(a) - 'file_id' FROM f JOIN midi.file_analysis a ON a.file_id = f.id
       UNION ALL SELECT f.raw_path, 2, t.track_index, to_jsonb(t) - 'file_id' FROM f JOIN midi.tracks t ON t.file_id = f.id
       UNION ALL SELECT f.raw_path, 3, c.channel, to_jsonb(c) - 'file_id'
         FROM f JOIN midi.channel_instruments c ON c.file_id = f.id)
     SELECT count(*) AS rows, md5(string_agg(j::text, E'\\n' ORDER BY raw_path, t, k)) AS digest FROM r`,
    [corpusId],
  );
  return { rows: Number(rows[0]!.rows), digest: rows[0]!.digest };
}

/** A process's CPU time so far in nanoseconds (the first field of /proc/<pid>/schedstat). */
function processCpuNs(pid: number | string): number {
  return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]);
}

/** CPU nanoseconds so far of every live child of the postmaster and of those it reaped (cutime + cstime). */
function postmasterCpuNs(clusterDir: string): () => number {
  const pid = readFileSync(path.join(clusterDir, 'postmaster.pid'), 'utf8').split('\n')[0]!.trim();
  const tickNs = 1e9 / 100;
  return () => {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    let ns = (Number(fields[13]) + Number(fields[14])) * tickNs;
    for (const child of childrenOf(pid)) {
      try {
        ns += processCpuNs(child);
      } catch {
        // Exited meanwhile: its time is in cutime from the next reading on.
      }
    }
    return ns;
  };
}

function childrenOf(pid: string): string[] {
  return readdirSync(`/proc/${pid}/task`).flatMap((t) =>
    readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim().split(' ').filter(Boolean),
  );
}
