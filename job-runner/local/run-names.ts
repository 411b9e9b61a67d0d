import { claimOf, WAITING_PREFIX } from '../../contract/ledger.js';

/**
 * How local mode tells its own connections from everyone else's on a shared server: by application_name, the same
 * claim the server ledger reads (contract/ledger.ts). Pure.
 */

/** What names one local run: its control connection's application_name and the prefix of its runners' pods. */
export interface RunNames {
  controlName: string;
  /** `local<pid>`: a process id is unique on this machine while the run lives. */
  runId: string;
}

/** The pod name (POD_NAME) of the runners in `slot`: the end of their application_name. */
export function runnerPod(runId: string, slot: number): string {
  return `${runId}-r${slot}`;
}

/**
 * Whether an application_name is this run's: its control connection, or a runner of one of its slots (any shard),
 * its pool's or its probe's while it waits for admission (`mco wait run/2 <pod>`). A runner's pod is short enough
 * that applicationNameFor never cuts it, so it is the name's exact end.
 */
export function isRunsOwn(names: RunNames): (applicationName: string) => boolean {
  const runner = new RegExp(` ${names.runId}-r\\d+$`);
  return (name) =>
    name === names.controlName ||
    ((claimOf(name)?.role === 'run' || name.startsWith(`${WAITING_PREFIX}run/`)) && runner.test(name));
}
