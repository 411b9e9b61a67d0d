import type { Logger } from '../../common/log.js';
import { EXIT_TEMPFAIL } from '../../contract/exit-codes.js';

/**
 * SIGTERM and SIGINT for a runner process, or for local mode over its runners. The first one aborts the returned
 * signal: the runner stops taking files and lets its batches in flight commit or roll back. If that takes longer than
 * `graceMs` (a hung database), or a second signal comes (Ctrl-C twice), the process exits 75 at once; Postgres rolls
 * back whatever transaction a closed connection had open, so an exit at any moment leaves only whole batches behind.
 *
 * Kubernetes sends SIGTERM and waits terminationGracePeriodSeconds (30 s by default) before SIGKILL: the default
 * grace stays under that.
 */
export const DEFAULT_SHUTDOWN_GRACE_MS = 20_000;

export interface ShutdownOptions {
  /**
   * How long the work in flight may take after the first signal before the process exits 75 anyway. null: as long as
   * it takes, for local mode, whose runners each keep a grace of their own and whose summary comes once they stopped.
   */
  graceMs?: number | null;
  /** What the first signal logs: what is being finished, and how to stop at once. */
  message?: string;
}

export function installShutdownHandlers(log: Logger, options: ShutdownOptions = {}): AbortSignal {
  const graceMs = options.graceMs === undefined ? DEFAULT_SHUTDOWN_GRACE_MS : options.graceMs;
  const message = options.message ?? 'shutdown requested: finishing the batches in flight';
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(EXIT_TEMPFAIL);
    }
    log.warn(graceMs === null ? { signal } : { signal, graceMs }, message);
    controller.abort(signal);
    if (graceMs === null) return;
    setTimeout(() => {
      log.error({ graceMs }, 'shutdown took longer than its grace period: exiting; uncommitted batches roll back');
      process.exit(EXIT_TEMPFAIL);
    }, graceMs).unref();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return controller.signal;
}

/**
 * SIGTERM and SIGINT for a command whose work is one transaction (scan, migrate): exit 75 at once. Postgres rolls
 * back the transaction of a closed connection, so nothing half-done stays behind, and the pod is not left to be
 * killed after its grace period (Node as a container's PID 1 gets no default action for SIGTERM: without a handler
 * the signal is ignored).
 */
export function exitOnShutdownSignal(log: Logger): void {
  const onSignal = (signal: NodeJS.Signals) => {
    log.warn({ signal }, 'shutdown requested: exiting; the transaction in flight rolls back');
    process.exit(EXIT_TEMPFAIL);
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
}
