import { databaseUrlProblem } from '../common/flags.js';
import { createLogger, type Logger } from '../common/log.js';
import { describeDatabaseUrl, describeError } from '../contract/describe-error.js';
import { withTlsFiles, type TlsFiles } from '../contract/database-tls.js';
import { checkDatabaseTls } from '../contract/tls-options.js';
import { EXIT_OK, EXIT_USAGE } from '../contract/exit-codes.js';
import { SCAN_CONNECTIONS } from '../contract/pool-sizing.js';
import { applicationNameFor, processName } from '../contract/application-name.js';
import type { CapSettings } from '../contract/cap-options.js';
import { Admission } from '../job-runner/pool/admission.js';
import { RunnerPool } from '../job-runner/pool/pool.js';
import { exitCodeFor } from '../job-runner/runner/errors.js';
import { exitOnShutdownSignal } from '../job-runner/runner/shutdown.js';

export interface OneConnectionCommand {
  /** The command, for application_name and log lines: 'migrate', 'scan'. */
  role: string;
  corpus?: string;
  /** --database-url; DATABASE_URL from the environment when absent. */
  databaseUrl: string | undefined;
  /** --ssl-root-cert and its siblings. */
  tlsFiles: TlsFiles;
  /** How long to wait for an unreachable database (the pool's default otherwise). */
  openTimeoutMs?: number;
  /** The cap the server ledger admits this connection against; without it the connection claims nothing (migrate). */
  cap?: CapSettings;
}

/**
 * Runs a command whose work is one short conversation with the database over one connection (scan, migrate), in the
 * contract's terms: SIGTERM exits 75 at once (the transaction in flight rolls back), the pool waits for a database
 * that is coming up, every error becomes its exit code (64 bad configuration, 75 retry me), and log lines name the
 * database by host, port and name only.
 */
export async function runWithOneConnection(
  command: OneConnectionCommand,
  work: (pool: RunnerPool, log: Logger, database: string) => Promise<void>,
): Promise<number> {
  const log = createLogger({
    base: { component: command.role, ...(command.corpus !== undefined ? { corpus: command.corpus } : {}) },
  });
  exitOnShutdownSignal(log);
  const given = command.databaseUrl ?? process.env.DATABASE_URL;
  if (!given) {
    log.error('no database: pass --database-url or set DATABASE_URL');
    return EXIT_USAGE;
  }
  // Checked at parse time too (cli/usage.ts); here for callers of the handler, which pg would read as a host name.
  const problem = databaseUrlProblem(given);
  if (problem) {
    log.error(`the database URL ${problem}`);
    return EXIT_USAGE;
  }
  let url: string;
  try {
    url = withTlsFiles(given, command.tlsFiles);
    checkDatabaseTls(url, {});
  } catch (err) {
    log.error(describeError(err));
    return EXIT_USAGE;
  }
  const database = describeDatabaseUrl(url);
  const claim = command.cap ? SCAN_CONNECTIONS : undefined;
  const applicationName = applicationNameFor({
    role: command.role,
    corpus: command.corpus,
    pod: process.env.POD_NAME ?? (claim ? processName() : undefined),
    claim,
  });
  const pool = new RunnerPool({
    connectionString: url,
    size: { max: SCAN_CONNECTIONS, warm: SCAN_CONNECTIONS },
    applicationName,
    ...(command.cap
      ? {
          admission: new Admission({
            connectionString: url,
            ledgerDatabase: command.cap.ledgerDatabase,
            holder: applicationName,
            claim: SCAN_CONNECTIONS,
            cap: command.cap,
            log,
          }),
        }
      : {}),
    ...(command.openTimeoutMs !== undefined ? { openTimeoutMs: command.openTimeoutMs } : {}),
    statsIntervalMs: 0,
    log,
  });
  try {
    await pool.open();
    await work(pool, log, database);
    return EXIT_OK;
  } catch (err) {
    log.error({ database, err: describeError(err) }, `${command.role} failed`);
    return exitCodeFor(err);
  } finally {
    await pool.close().catch(() => {});
  }
}
