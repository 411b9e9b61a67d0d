import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ledgerFiles, TEARDOWN_SCRIPT, teardownSync } from './ledger.js';

export interface SpawnOptions {
  env: NodeJS.ProcessEnv;
  cwd?: string;
  /** stdout and stderr both go to this file (appended), as a container runtime keeps a container's log. */
  logFile: string;
  uid?: number;
  gid?: number;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SupervisedProcess {
  name: string;
  pid: number;
  /** Resolves once the process has exited (never rejects: a failed spawn is an exit with code 127). */
  exited: Promise<Exit>;
  running(): boolean;
  /** Signals the whole process group, so shells and their children go too. */
  signal(sig: NodeJS.Signals): void;
}

/**
 * Runs every process of one test cluster in its own process group and makes sure none outlives the cluster:
 * `stopAll()` ends them in order, a process 'exit' hook kills what is left when the test process ends normally,
 * and a detached watchdog kills the recorded groups if the test process is killed outright (SIGKILL runs no hook).
 * Both also run node/teardown.sh over the ledgers in `ledgerDir`: the nodes' processes (containers and shims are in
 * no group of ours, only in the nodes' cgroups), cgroups, network namespaces, the host's veth and the slot claim;
 * the watchdog then removes the cluster directory (checked by hand: SIGKILL of a vitest worker holding a one-node
 * cluster with a running pod left no process, netns, cgroup, interface, slot or directory 8 s later).
 */
export class ProcessSupervisor {
  private readonly live = new Map<number, SupervisedProcess>();
  private readonly groupsFile: string;
  private readonly stoppedFile: string;
  private readonly onExit = () => this.killAllNow();
  private stopped = false;

  constructor(
    private readonly dir: string,
    private readonly ledgerDir: string,
  ) {
    this.groupsFile = path.join(dir, 'process-groups');
    this.stoppedFile = path.join(dir, 'stopped');
    writeFileSync(this.groupsFile, '');
    process.on('exit', this.onExit);
    // dash (/bin/sh here) has no `kill --`: a negative pid right after the signal names the process group.
    const watchdog = spawn(
      '/bin/sh',
      [
        '-c',
        [
          `while kill -0 ${process.pid} 2>/dev/null && [ ! -e "$2" ]; do sleep 1; done`,
          '[ -e "$2" ] && exit 0',
          'for g in $(cat "$1"); do kill -KILL "-$g" 2>/dev/null; done',
          '/bin/sh "$3" "$4"/*.list',
          // The cluster's directory goes too (containerd's snapshots are hundreds of MB), unless kept for a post-mortem.
          '[ -z "$5" ] || rm -rf "$5"',
        ].join('\n'),
        'watchdog',
        this.groupsFile,
        this.stoppedFile,
        TEARDOWN_SCRIPT,
        ledgerDir,
        process.env.MIDI_CORPUS_KEEP_CLUSTER ? '' : dir,
      ],
      { detached: true, stdio: 'ignore' },
    );
    watchdog.unref();
  }

  spawn(name: string, command: string, args: string[], options: SpawnOptions): SupervisedProcess {
    if (this.stopped) throw new Error(`cannot start ${name}: the cluster is stopped`);
    const log = openSync(options.logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(command, args, {
        env: options.env,
        cwd: options.cwd,
        detached: true,
        stdio: ['ignore', log, log],
        uid: options.uid,
        gid: options.gid,
      });
    } finally {
      closeSync(log);
    }
    let done = false;
    const exited = new Promise<Exit>((resolve) => {
      child.once('error', (err) => {
        writeFileSync(options.logFile, `failed to start ${command}: ${err.message}\n`, { flag: 'a' });
        if (!done) {
          done = true;
          resolve({ code: 127, signal: null });
        }
      });
      child.once('exit', (code, signal) => {
        if (!done) {
          done = true;
          resolve({ code, signal });
        }
      });
    });
    const pid = child.pid ?? -1;
    const proc: SupervisedProcess = {
      name,
      pid,
      exited,
      running: () => !done,
      signal: (sig) => {
        if (done || pid < 0) return;
        try {
          process.kill(-pid, sig);
        } catch {
          // The group is already gone.
        }
      },
    };
    if (pid > 0) {
      this.live.set(pid, proc);
      this.recordGroups();
      void exited.then(() => {
        this.live.delete(pid);
        this.recordGroups();
      });
    }
    return proc;
  }

  /** SIGTERM, then SIGKILL after graceMs, for one process group. */
  async terminate(proc: SupervisedProcess, graceMs: number): Promise<Exit> {
    proc.signal('SIGTERM');
    const timer = setTimeout(() => proc.signal('SIGKILL'), graceMs);
    try {
      return await proc.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stops the given processes in order (the last started first is the caller's choice), then any others. */
  async stopAll(order: SupervisedProcess[], graceMs: number): Promise<void> {
    for (const proc of order) await this.terminate(proc, graceMs);
    await Promise.all([...this.live.values()].map((p) => this.terminate(p, graceMs)));
    this.stopped = true;
    writeFileSync(this.stoppedFile, '');
    process.off('exit', this.onExit);
  }

  /** Process ids still running, for leak checks. */
  pids(): number[] {
    return [...this.live.keys()];
  }

  private killAllNow(): void {
    for (const proc of this.live.values()) proc.signal('SIGKILL');
    teardownSync(ledgerFiles(this.ledgerDir));
  }

  private recordGroups(): void {
    if (!existsSync(this.dir)) return;
    writeFileSync(this.groupsFile, [...this.live.keys()].join('\n'));
  }
}
