/**
 * The scan pod's answer, read from its termination message: the JSON of contract/scan-summary.ts, checked before the
 * run Job is sized from it.
 */
import type { V1Pod } from '@kubernetes/client-node';
import type { ScanSummary } from '../../contract/scan-summary.js';
import { MAX_SHARDS } from '../api/v1alpha1/midicorpus.js';
import { SCAN_CONTAINER } from './desired-jobs.js';

/** How the scan compared with the last one (absent from the answer of a scan image older than run-again). */
export type RescanCounts = Pick<ScanSummary, 'added' | 'changed' | 'unchanged' | 'missing' | 'work'>;

/** What the controller uses of the scan's summary. */
export type ScanResult = Pick<ScanSummary, 'files' | 'bytes' | 'shards'> & { lastScan?: RescanCounts };

const RESCAN_FIELDS = [
  'added',
  'changed',
  'unchanged',
  'missing',
  'work',
] as const satisfies readonly (keyof RescanCounts)[];

export type ScanOutcome = { ok: true; result: ScanResult } | { ok: false; message: string };

/** Parses and checks a termination message. The message in a failure names the problem, never the content. */
export function parseScanResult(message: string, expectedCorpus: string): ScanOutcome {
  let value: unknown;
  try {
    value = JSON.parse(message.trim());
  } catch {
    return { ok: false, message: "the scan's termination message is not JSON" };
  }
  if (typeof value !== 'object' || value === null)
    return { ok: false, message: "the scan's termination message is not a JSON object" };
  const v = value as Record<string, unknown>;
  if (v.corpus !== expectedCorpus) return { ok: false, message: 'the scan reported another corpus than this one' };
  for (const field of ['files', 'bytes', 'shards'] as const satisfies readonly (keyof ScanSummary)[]) {
    const n = v[field];
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0)
      return { ok: false, message: `the scan's ${field} is not a whole number ≥ 0` };
  }
  const result: ScanResult = { files: v.files as number, bytes: v.bytes as number, shards: v.shards as number };
  if (v.work !== undefined) {
    for (const field of RESCAN_FIELDS) {
      const n = v[field];
      if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0)
        return { ok: false, message: `the scan's ${field} is not a whole number ≥ 0` };
    }
    result.lastScan = Object.fromEntries(RESCAN_FIELDS.map((f) => [f, v[f] as number])) as RescanCounts;
  }
  // The shards cover the files that need work: all of them on a first scan (or from a scan that does not say).
  const work = result.lastScan?.work ?? result.files;
  if (result.shards > MAX_SHARDS) {
    return {
      ok: false,
      message: `the scan made ${result.shards} shards, more than an Indexed Job can run (${MAX_SHARDS}); raise sharding.filesPerShard`,
    };
  }
  if (work > result.files || result.shards > work || (work > 0 && result.shards === 0))
    return { ok: false, message: "the scan's shard count does not fit its file count" };
  return { ok: true, result };
}

/** The termination message of the scan Job's succeeded pod, if the informer still has one. */
export function scanTerminationMessage(pods: readonly V1Pod[]): string | undefined {
  for (const pod of pods) {
    if (pod.status?.phase !== 'Succeeded') continue;
    const status = pod.status.containerStatuses?.find((c) => c.name === SCAN_CONTAINER);
    const message = status?.state?.terminated?.message;
    if (message !== undefined && message !== '') return message;
  }
  return undefined;
}
