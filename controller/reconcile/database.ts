/**
 * What the controller needs from a corpus's database, with the fewest connections possible.
 *
 * - The URL comes from the Secret named in the spec. It is kept in memory only, never logged or written anywhere;
 *   errors about it name the Secret, not its content.
 * - max_connections, when the spec does not give it, is read with SHOW max_connections; progress counts (files done
 *   and failed) with one COUNT query. Each uses one short-lived connection, and calls for one budget key are chained,
 *   so the operator never holds more than OPERATOR_CONNECTIONS (1) per database: exactly what the budget sets aside.
 * - The server's ledger (contract/ledger.ts: every session's application_name, so every claim and every foreign
 *   connection) is read through the ledger database, with the corpus's credentials: the database the runners are
 *   admitted in, so one the runners cannot use is one this read fails on too, and status says so. The same connection
 *   refreshes max_connections, so a pass that needs both opens one connection, not two.
 * - The backends of a pod that no longer exists are ended (endBackends) on the same serialised path.
 * - Answers are cached (the Secret for a minute, max_connections for ten, the ledger for a few seconds, a failed
 *   ledger read as long) and progress queries are throttled per corpus, so a busy reconcile loop does not become a
 *   busy database client.
 */
import pg from 'pg';
import { describeError } from '../../contract/describe-error.js';
import {
  pgTlsOptions,
  readUrlTls,
  TlsConfigurationError,
  tlsRefusal,
  TlsRefusedError,
  type TlsMaterial,
} from '../../contract/database-tls.js';
import { ledgerDatabaseUrl, readLedgerSessions, type LedgerReading } from '../../contract/ledger.js';
import { realClock, type Clock } from '../../common/clock.js';
import { Reason } from '../api/v1alpha1/conditions.js';
import { DATABASE_SECRET_LABEL, DATABASE_SECRET_LABEL_VALUE, type MidiCorpus } from '../api/v1alpha1/midicorpus.js';
import { InvalidDatabaseUrlError, budgetKey } from '../budget/pool-key.js';

/** What the operator reads of a Secret: its labels (may it be used at all?) and its decoded data. */
export interface SecretContent {
  labels: Readonly<Record<string, string>>;
  data: Readonly<Record<string, string>>;
}

/** A Secret as read, or undefined when it does not exist. */
export type SecretData = SecretContent | undefined;

export interface PostgresDatabaseAccessOptions {
  /** Reads a Secret's labels and decoded data; undefined when the Secret does not exist. */
  readSecret: (namespace: string, name: string) => Promise<SecretData>;
  clock?: Clock;
  secretTtlMs?: number;
  limitTtlMs?: number;
  progressIntervalMs?: number;
  /** How long a ledger reading (or a failure to read it) stands for the next passes. Default 5 s. */
  ledgerTtlMs?: number;
  /** Connection and statement timeout of the operator's own queries. */
  queryTimeoutMs?: number;
}

/** What ending a holder's backends did. */
export interface EndedBackends {
  /** Backends signalled (pg_terminate_backend returned true). */
  ended: number;
  /** The operator's role may not end them (SQLSTATE 42501): neither superuser, nor their role, nor pg_signal_backend. */
  denied: boolean;
}

/**
 * A database as the operator connects to it: the URL, and the certificates of spec.database.tls (read from its Secret
 * through the API, kept in memory: never written to disk or to the environment).
 */
export interface DatabaseTarget {
  url: string;
  tls?: TlsMaterial;
}

export type Resolution =
  { ok: true; url: string; budgetKey: string; tls?: TlsMaterial } | { ok: false; reason: Reason; message: string };

export interface Progress {
  processed: number;
  failed: number;
}

/** What the reconcile asks of the corpora's databases: the seam where tests put a fake (no database needed). */
export interface DatabaseAccess {
  /** The URL and budget key of a corpus, or why there is none (an InvalidSpec reason and message). */
  resolve(corpus: MidiCorpus): Promise<Resolution>;
  /**
   * max_connections of the server. Throws with a scrubbed message when it cannot be read; a TlsRefusedError when the
   * TLS handshake was refused (contract/database-tls.ts).
   */
  maxConnections(budgetKey: string, db: DatabaseTarget): Promise<number>;
  /**
   * Files recorded for the corpus (ok, failed or skipped: neither pending nor missing) and failed ones; undefined when not due yet (throttled,
   * unless `force`: the final count of a finished corpus must be exact), or when the schema is not there yet (the
   * runners create it).
   */
  progress(
    budgetKey: string,
    db: DatabaseTarget,
    corpusKey: string,
    options?: { force?: boolean },
  ): Promise<Progress | undefined>;
  /**
   * The server's ledger: every session but the reader's own, read through `ledgerDatabase` with the URL's
   * credentials. At most one read per budget key every few seconds; throws (with a scrubbed message) when the
   * sessions cannot be read, and keeps throwing that for as long as a reading would have stood.
   */
  ledger(budgetKey: string, db: DatabaseTarget, ledgerDatabase: string): Promise<LedgerReading>;
  /**
   * Ends the backends among `pids` that still carry `applicationName` (a pid alone may have been reused since the
   * reading). The next ledger() reads the server afresh.
   */
  endBackends(
    budgetKey: string,
    db: DatabaseTarget,
    applicationName: string,
    pids: readonly number[],
  ): Promise<EndedBackends>;
  /**
   * Deletes every row of the corpus (its files, and all that cascades from them, then its midi.corpora row), in
   * batches so that no statement runs long; the number of files deleted. Nothing to delete (never scanned, or no
   * schema yet) is 0. Throws with a scrubbed message when the database cannot be reached.
   */
  deleteCorpusRows(budgetKey: string, db: DatabaseTarget, corpusKey: string): Promise<number>;
}

/**
 * The URL and budget key a Secret gives a corpus, or why it gives none. Pure: a fake resolves the same way.
 *
 * The label is checked before the data is looked at, so a refused Secret's keys are never used, not even to say which
 * is missing: the message names the Secret and the label, nothing of its content.
 */
export function resolveFromSecret(corpus: MidiCorpus, secret: SecretData, tlsSecret?: SecretData): Resolution {
  const { namespace } = corpus.metadata;
  const { name, key } = corpus.spec.database.secretRef;
  const url = secretValue(namespace, name, secret, key);
  if (!url.ok) return url;
  let tls: TlsMaterial | undefined;
  const tlsSpec = corpus.spec.database.tls;
  if (tlsSpec !== undefined) {
    const tlsName = tlsSpec.secretRef.name;
    const read = (k: string) => secretValue(namespace, tlsName, tlsSecret, k);
    const ca = read(tlsSpec.caKey);
    if (!ca.ok) return ca;
    tls = { ca: ca.value, caSource: `Secret ${namespace}/${tlsName} key ${tlsSpec.caKey}` };
    if (tlsSpec.certKey !== undefined && tlsSpec.keyKey !== undefined) {
      const cert = read(tlsSpec.certKey);
      if (!cert.ok) return cert;
      const clientKey = read(tlsSpec.keyKey);
      if (!clientKey.ok) return clientKey;
      tls = { ...tls, cert: cert.value, key: clientKey.value };
    }
  }
  const invalid = (message: string): Resolution => ({
    ok: false,
    reason: Reason.InvalidDatabaseUrl,
    message: `Secret ${namespace}/${name} key "${key}": ${message}.`,
  });
  try {
    const { files } = readUrlTls(url.value);
    // In a pod such paths name nothing (the operator mounts spec.database.tls's Secret, at paths of its own).
    if (files.rootCert !== undefined || files.cert !== undefined || files.key !== undefined)
      return invalid(
        'the URL names certificate files (sslrootcert, sslcert or sslkey), which the pods do not have: give the ' +
          'certificates in a Secret named by spec.database.tls',
      );
    pgTlsOptions(url.value, tls);
    return {
      ok: true,
      url: url.value,
      budgetKey: budgetKey(corpus.spec.database, url.value),
      ...(tls !== undefined ? { tls } : {}),
    };
  } catch (err) {
    if (err instanceof InvalidDatabaseUrlError) return invalid(err.message);
    if (err instanceof TlsConfigurationError)
      return invalid(
        err.message.replace('sslrootcert (a file), --ssl-root-cert, spec.database.tls', 'spec.database.tls'),
      );
    if (err instanceof TypeError) return invalid('the database URL is not a valid URL');
    throw err;
  }
}

/**
 * A value of a Secret the spec names, trimmed, or why there is none. The label is checked before the data is looked
 * at, so a refused Secret's keys are never used, not even to say which is missing.
 */
function secretValue(
  namespace: string,
  name: string,
  secret: SecretData,
  key: string,
): { ok: true; value: string } | { ok: false; reason: Reason; message: string } {
  if (secret === undefined)
    return { ok: false, reason: Reason.SecretNotFound, message: `Secret ${namespace}/${name} not found.` };
  if (secret.labels[DATABASE_SECRET_LABEL] !== DATABASE_SECRET_LABEL_VALUE)
    return {
      ok: false,
      reason: Reason.SecretNotLabelled,
      message:
        `Secret ${namespace}/${name} is not labelled ${DATABASE_SECRET_LABEL}=${DATABASE_SECRET_LABEL_VALUE}: ` +
        'label it to let MidiCorpora use it (the operator passes it to the pods it creates).',
    };
  const value = secret.data[key];
  if (value === undefined || value.trim() === '')
    return { ok: false, reason: Reason.SecretKeyMissing, message: `Secret ${namespace}/${name} has no key "${key}".` };
  return { ok: true, value: value.trim() };
}

/** Files deleted per statement when a corpus's rows go (each batch cascades to their analyses, tracks, channels). */
const DELETE_BATCH = 2000;

/** The real DatabaseAccess: Secrets read with `readSecret` (the Kubernetes API), the rest with short queries. */
export class PostgresDatabaseAccess implements DatabaseAccess {
  private readonly clock: Clock;
  private readonly secrets = new Map<string, { at: number; data: SecretData }>();
  private readonly limits = new Map<string, { at: number; value: number }>();
  private readonly progressAt = new Map<string, number>();
  /** By budget key and ledger database: the last reading, or why there is none. */
  private readonly ledgers = new Map<string, { at: number; reading?: LedgerReading; error?: Error }>();
  private readonly chains = new Map<string, Promise<unknown>>();

  constructor(private readonly o: PostgresDatabaseAccessOptions) {
    this.clock = o.clock ?? realClock;
  }

  async resolve(corpus: MidiCorpus): Promise<Resolution> {
    const { namespace } = corpus.metadata;
    const secret = await this.secret(namespace, corpus.spec.database.secretRef.name);
    const tlsName = corpus.spec.database.tls?.secretRef.name;
    return resolveFromSecret(corpus, secret, tlsName !== undefined ? await this.secret(namespace, tlsName) : undefined);
  }

  private async secret(namespace: string, name: string): Promise<SecretData> {
    const cacheKey = `${namespace}/${name}`;
    let cached = this.secrets.get(cacheKey);
    if (!cached || this.clock.now() - cached.at > (this.o.secretTtlMs ?? 60_000)) {
      cached = { at: this.clock.now(), data: await this.o.readSecret(namespace, name) };
      this.secrets.set(cacheKey, cached);
    }
    return cached.data;
  }

  /** From cache or one short query. */
  async maxConnections(key: string, db: DatabaseTarget): Promise<number> {
    const cached = this.limits.get(key);
    if (cached && this.clock.now() - cached.at <= (this.o.limitTtlMs ?? 600_000)) return cached.value;
    const value = await this.serial(key, () =>
      this.query(db, async (c) => {
        const r = await c.query<{ max_connections: string }>('SHOW max_connections');
        const n = Number(r.rows[0]?.max_connections);
        if (!Number.isInteger(n) || n < 1) throw new Error('SHOW max_connections gave no whole number');
        return n;
      }),
    );
    this.limits.set(key, { at: this.clock.now(), value });
    return value;
  }

  async progress(
    key: string,
    db: DatabaseTarget,
    corpusKey: string,
    options: { force?: boolean } = {},
  ): Promise<Progress | undefined> {
    const last = this.progressAt.get(corpusKey);
    if (!options.force && last !== undefined && this.clock.now() - last < (this.o.progressIntervalMs ?? 30_000))
      return undefined;
    this.progressAt.set(corpusKey, this.clock.now());
    return this.serial(key, () =>
      this.query(db, async (c) => {
        const exists = await c.query<{ t: string | null }>("SELECT to_regclass('midi.files') AS t");
        if (!exists.rows[0]?.t) return undefined;
        const r = await c.query<{ processed: string; failed: string }>(
          `SELECT count(*) FILTER (WHERE f.status IN ('ok', 'failed', 'skipped')) AS processed, count(*) FILTER (WHERE f.status = 'failed') AS failed
           FROM midi.files f JOIN midi.corpora c ON c.id = f.corpus_id WHERE c.key = $1`,
          [corpusKey],
        );
        return { processed: Number(r.rows[0]?.processed ?? 0), failed: Number(r.rows[0]?.failed ?? 0) };
      }),
    );
  }

  async ledger(key: string, db: DatabaseTarget, ledgerDatabase: string): Promise<LedgerReading> {
    const cacheKey = `${key}\0${ledgerDatabase}`;
    const fresh = () => {
      const cached = this.ledgers.get(cacheKey);
      return cached && this.clock.now() - cached.at < (this.o.ledgerTtlMs ?? 5_000) ? cached : undefined;
    };
    const cached =
      fresh() ??
      (await this.serial(key, async () => {
        // Another pass may have read it while this one waited for the connection.
        const again = fresh();
        if (again) return again;
        let entry: { at: number; reading?: LedgerReading; error?: Error };
        try {
          entry = await this.query({ ...db, url: ledgerDatabaseUrl(db.url, ledgerDatabase) }, async (c) => {
            const reading = await readLedgerSessions(c);
            const max = await c.query<{ max_connections: string }>('SHOW max_connections');
            const n = Number(max.rows[0]?.max_connections);
            if (Number.isInteger(n) && n >= 1) this.limits.set(key, { at: this.clock.now(), value: n });
            return { at: this.clock.now(), reading };
          });
        } catch (err) {
          entry = {
            at: this.clock.now(),
            // A refused handshake is the server's, whichever database: it keeps its class (the reconcile starts
            // nothing on it) and its message, which names the cause.
            error:
              err instanceof TlsRefusedError
                ? err
                : new Error(`through the ledger database "${ledgerDatabase}": ${(err as Error).message}`),
          };
        }
        this.ledgers.set(cacheKey, entry);
        return entry;
      }));
    if (cached.error) throw cached.error;
    return cached.reading!;
  }

  async endBackends(
    key: string,
    db: DatabaseTarget,
    applicationName: string,
    pids: readonly number[],
  ): Promise<EndedBackends> {
    const result = await this.serial(key, () =>
      this.query(db, async (c) => {
        try {
          // One statement: a pid is ended only if it still carries the name, i.e. is still the backend the reading saw.
          const r = await c.query<{ ended: boolean }>(
            `SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity
              WHERE pid = ANY($1::int[]) AND application_name = $2`,
            [[...pids], applicationName],
          );
          return { ended: r.rows.filter((x) => x.ended).length, denied: false };
        } catch (err) {
          if ((err as { code?: unknown }).code === '42501') return { ended: 0, denied: true };
          throw err;
        }
      }),
    );
    // What was read before is out of date now: the next pass must see whether the backends are gone.
    for (const cacheKey of this.ledgers.keys()) if (cacheKey.startsWith(`${key}\0`)) this.ledgers.delete(cacheKey);
    return result;
  }

  /** Runs `fn` after every earlier call for the same budget key has finished: one connection per database at most. */
  async deleteCorpusRows(key: string, db: DatabaseTarget, corpusKey: string): Promise<number> {
    return this.serial(key, () =>
      this.query(db, async (c) => {
        const exists = await c.query<{ t: string | null }>("SELECT to_regclass('midi.corpora') AS t");
        if (!exists.rows[0]?.t) return 0;
        const found = await c.query<{ id: string }>('SELECT id FROM midi.corpora WHERE key = $1', [corpusKey]);
        const id = found.rows[0]?.id;
        if (id === undefined) return 0;
        let deleted = 0;
        for (;;) {
          const r = await c.query(
            `DELETE FROM midi.files WHERE id IN (SELECT id FROM midi.files WHERE corpus_id = $1 LIMIT ${DELETE_BATCH})`,
            [id],
          );
          deleted += r.rowCount ?? 0;
          if ((r.rowCount ?? 0) < DELETE_BATCH) break;
        }
        await c.query('DELETE FROM midi.corpora WHERE id = $1', [id]);
        return deleted;
      }),
    );
  }

  private serial<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.chains.get(key) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(fn);
    this.chains.set(key, next);
    void next
      .catch(() => undefined)
      .finally(() => {
        if (this.chains.get(key) === next) this.chains.delete(key);
      });
    return next;
  }

  private async query<T>(db: DatabaseTarget, fn: (c: pg.Client) => Promise<T>): Promise<T> {
    const timeout = this.o.queryTimeoutMs ?? 5000;
    // The certificates in memory, as read from the Secret: nothing is read from or written to the operator's disk.
    const connection = pgTlsOptions(db.url, db.tls);
    const client = new pg.Client({
      connectionString: connection.connectionString,
      ssl: connection.ssl,
      application_name: 'mco operator',
      connectionTimeoutMillis: timeout,
      statement_timeout: timeout,
    });
    client.on('error', () => {}); // a dying connection must not crash the operator; the query fails instead
    try {
      await client.connect().catch((err: unknown) => {
        throw tlsRefusal(err, connection.tls) ?? err;
      });
      return await fn(client);
    } catch (err) {
      // Its message is one of ours, safe as it is; the class tells the reconcile what kind of problem it is.
      if (tlsRefusal(err, connection.tls)) throw err;
      throw new Error(describeError(err));
    } finally {
      await client.end().catch(() => {});
    }
  }
}
