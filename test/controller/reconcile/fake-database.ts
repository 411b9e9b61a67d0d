/**
 * A DatabaseAccess with no database behind it, for tests of the reconcile's decisions: Secrets resolve exactly as in
 * production (resolveFromSecret); there is no server to ask for max_connections, so a test gives
 * spec.database.maxConnections (or sees the corpus's budget unknown); there are no progress counts, so the stored
 * ones carry forward, as before the runners have created their schema. The server's ledger is `sessions`, which a
 * test fills (its pods' claims, other applications); it starts empty: nothing but the operator on the server.
 */
import type { MidiCorpus } from '../../../controller/api/v1alpha1/midicorpus.js';
import { pictureOf, type LedgerReading, type LocatedSessionRow } from '../../../contract/ledger.js';
import {
  resolveFromSecret,
  type DatabaseAccess,
  type DatabaseTarget,
  type EndedBackends,
  type Progress,
  type Resolution,
  type SecretContent,
} from '../../../controller/reconcile/database.js';

let pids = 1000;

/** A client session as pg_stat_activity shows it; `hidden`: as a role without pg_read_all_stats sees another's. */
export function clientSession(
  applicationName: string | null,
  o: { datname?: string; usename?: string; hidden?: boolean } = {},
): LocatedSessionRow {
  return {
    pid: ++pids,
    has_database: true,
    has_role: true,
    application_name: applicationName,
    backend_type: o.hidden ? null : 'client backend',
    datname: o.datname ?? 'midi',
    usename: o.usename ?? 'midi',
  };
}

export class FakeDatabase implements DatabaseAccess {
  /** Every session on the server but the operator's own. */
  sessions: LocatedSessionRow[] = [];
  /** When set, the ledger cannot be read: ledger() throws it. */
  ledgerError?: Error;
  /** The operator's role may not end other backends. */
  denyEnding = false;
  /** Every endBackends call. */
  readonly endings: Array<{ applicationName: string; pids: number[] }> = [];

  /** `secrets`: Secrets by `namespace/name`, read at each resolve (a test may change them between passes). */
  constructor(private readonly secrets: ReadonlyMap<string, SecretContent>) {}

  async resolve(corpus: MidiCorpus): Promise<Resolution> {
    const secret = (name: string) => this.secrets.get(`${corpus.metadata.namespace}/${name}`);
    const tlsName = corpus.spec.database.tls?.secretRef.name;
    return resolveFromSecret(
      corpus,
      secret(corpus.spec.database.secretRef.name),
      tlsName !== undefined ? secret(tlsName) : undefined,
    );
  }

  async maxConnections(): Promise<number> {
    throw new Error('a FakeDatabase has no server to read max_connections from');
  }

  async progress(): Promise<Progress | undefined> {
    return undefined;
  }

  async ledger(): Promise<LedgerReading> {
    if (this.ledgerError) throw this.ledgerError;
    const sessions = this.sessions.map((s) => ({ ...s }));
    return { picture: pictureOf(sessions), sessions };
  }

  /** Corpus keys whose rows were deleted; `deleteError`: the database cannot be reached. */
  readonly deletedCorpora: string[] = [];
  deleteError?: Error;
  async deleteCorpusRows(_key: string, _db: DatabaseTarget, corpusKey: string): Promise<number> {
    if (this.deleteError) throw this.deleteError;
    this.deletedCorpora.push(corpusKey);
    return 0;
  }

  async endBackends(
    _key: string,
    _db: DatabaseTarget,
    applicationName: string,
    pids: readonly number[],
  ): Promise<EndedBackends> {
    this.endings.push({ applicationName, pids: [...pids] });
    if (this.denyEnding) return { ended: 0, denied: true };
    const ends = (s: LocatedSessionRow) => pids.includes(s.pid) && s.application_name === applicationName;
    const ended = this.sessions.filter(ends).length;
    this.sessions = this.sessions.filter((s) => !ends(s));
    return { ended, denied: false };
  }
}
