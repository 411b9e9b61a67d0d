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
 *
 * A runner of local mode shuts down the same way when local mode ends without a word (SIGKILL, a crash), rather than
 * run on alone. Linux's PR_SET_PDEATHSIG is not reachable from Node, so local mode spawns its runners with an IPC
 * channel (stdio 'ipc') as a lifeline: the kernel closes the parent's end when the parent dies, however it dies, and
 * Node reports 'disconnect'. A pipe on stdin would do the same, but its EOF cannot tell local mode's end from a pod's
 * stdin that is /dev/null, and a flag would have to say which; a channel exists only when a Node parent made one, so a
 * runner in a Kubernetes pod has none and is unaffected.
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
  const shutDown = (reason: string) => {
    if (controller.signal.aborted) {
      log.warn({ reason }, 'second shutdown request: exiting now');
      process.exit(EXIT_TEMPFAIL);
    }
    log.warn(graceMs === null ? { reason } : { reason, graceMs }, message);
    controller.abort(reason);
    if (graceMs === null) return;
    setTimeout(() => {
      log.error({ graceMs }, 'shutdown took longer than its grace period: exiting; uncommitted batches roll back');
      process.exit(EXIT_TEMPFAIL);
    }, graceMs).unref();
  };
  process.on('SIGTERM', () => shutDown('SIGTERM'));
  process.on('SIGINT', () => shutDown('SIGINT'));
  const parentGone = 'the end of local mode, its parent';
  if (process.channel) {
    // The lifeline carries no work: it must not keep a finished runner alive.
    process.channel.unref();
    process.once('disconnect', () => shutDown(parentGone));
  } else if (process.connected === false) {
    // The channel closed while this process was starting, before anyone listened: its parent is already gone.
    shutDown(parentGone);
  }
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
