import type pg from 'pg';
import { ensureCorpus, recordScan, writeBatch, type FileResult, type ScannedFile } from '../db/store.js';
import { describeError } from '../../contract/describe-error.js';
import type { ScanSummary } from '../../contract/scan-summary.js';
import type { ShardRequest } from '../../contract/shards.js';
import { UsageError } from './errors.js';
import { listCorpus, type CorpusEntry } from './list.js';

/**
 * The scan: walk the corpus and stream the listing into Postgres as it is walked (COPY, one transaction), compare it
 * with the last scan of the same corpus key, and give shards to the files that need work (recordScan says which).
 * Entries the listing already knows will not be read (symlinks out of the root, FIFOs, dangling links, directories
 * it could not open) are then recorded with their status and reason, so they show up among the results at once and
 * no runner ever opens them.
 *
 * `midi-corpus scan` (a Kubernetes scan pod) and local mode both call this; it uses only the client it is given.
 */

export interface ScanOptions {
  corpus: string;
  root: string;
  include?: string[];
  /** Fixed, or decided from the number of files that need work (all of them on a corpus's first scan). */
  shards: ShardRequest | ((entries: number) => ShardRequest);
  /** Stored with the corpus (what it was scanned with), for people looking at the database later. */
  settings?: Record<string, unknown>;
  /** WriteOptions.namedStatements of the problem entries' batches: false behind a transaction pooler. Default true. */
  namedStatements?: boolean;
}

/** Problem entries go through writeBatch in slices of this many: one transaction each, like a runner's batches. */
const PROBLEM_BATCH = 1000;

export async function scanCorpus(client: pg.ClientBase, options: ScanOptions): Promise<ScanSummary> {
  const listing = await listCorpus({ root: options.root, include: options.include }).catch((e: unknown) => {
    throw new UsageError(`cannot list corpus root ${options.root}: ${describeError(e)}`);
  });
  const corpusId = await ensureCorpus(client, options.corpus, {
    root: listing.root,
    include: options.include ?? null,
    ...options.settings,
  });
  let files = 0;
  let bytes = 0;
  // Held until the listing is recorded, which decides their shard; only these: a corpus has few, whatever its size.
  const problems: CorpusEntry[] = [];
  function* scanned(): Generator<ScannedFile> {
    for (const e of listing.walk()) {
      files++;
      bytes += e.size;
      if (e.problem) problems.push(e);
      yield { path: e.path, size: e.size, modifiedUs: e.modifiedUs, problem: e.problem !== null };
    }
  }
  // Shards are planned over the files that need work, which only the comparison with the last scan knows.
  const recorded = await recordScan(client, corpusId, scanned(), { shards: options.shards });
  // Parked with the files that need no work (recordScan gives them shard number `shards`): the scan records them.
  const records = problemRecords(problems, recorded.shards);
  for (let i = 0; i < records.length; i += PROBLEM_BATCH)
    await writeBatch(client, corpusId, records.slice(i, i + PROBLEM_BATCH), {
      namedStatements: options.namedStatements ?? true,
    });
  return {
    corpus: options.corpus,
    files,
    bytes,
    shards: recorded.shards,
    problems: records.length,
    added: recorded.added,
    changed: recorded.changed,
    unchanged: recorded.unchanged,
    missing: recorded.missing,
    work: recorded.work,
  };
}

function problemRecords(entries: CorpusEntry[], parked: number): FileResult[] {
  return entries.map((e) => ({
    path: e.path,
    size: e.size,
    shard: parked,
    sha256: null,
    outcome: { status: e.problem!.status, reason: e.problem!.reason, warnings: [] },
  }));
}
