/**
 * The operator's own writes, remembered until the informer shows them.
 *
 * Decisions about one database are taken one reconcile at a time, but the informer cache lags behind the writes: a
 * run Job just created, or a parallelism just raised, may not be in the cache when the next corpus on the same
 * database is reconciled. That reconcile would then see connections as free that another Job may already use. So every
 * Job returned by a create or a patch is kept here and stands in for the cached copy until the cache has a copy at
 * least as new (same uid, generation ≥). Lowered parallelism needs no such care: the stale, higher value is the
 * cautious one.
 */
import type { V1Job } from '@kubernetes/client-node';

export class JobExpectations {
  private readonly written = new Map<string, V1Job>();

  record(job: V1Job): void {
    if (job.metadata?.uid) this.written.set(job.metadata.uid, job);
  }

  /** The cached Jobs with the operator's newer copies in their place, plus created Jobs the cache has not seen. */
  merge(cached: readonly V1Job[]): V1Job[] {
    const out: V1Job[] = [];
    const seen = new Set<string>();
    for (const job of cached) {
      const uid = job.metadata?.uid ?? '';
      seen.add(uid);
      const mine = this.written.get(uid);
      if (mine && (job.metadata?.generation ?? 0) < (mine.metadata?.generation ?? 0)) {
        out.push(mine);
      } else {
        this.written.delete(uid);
        out.push(job);
      }
    }
    for (const [uid, job] of this.written) if (!seen.has(uid)) out.push(job);
    return out;
  }

  /** Forgets a Job the cache will never show (deleted). */
  forget(uid: string): void {
    this.written.delete(uid);
  }
}
