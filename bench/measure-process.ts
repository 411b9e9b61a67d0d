import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface MeasuredRun {
  code: number | null;
  seconds: number;
  /**
   * The most resident memory the process had (VmHWM), sampled from /proc every 20 ms until it exited; with
   * `children`, the most any of its direct children had (a command run under a shell).
   */
  peakRssMb: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end, timing it and sampling its peak resident memory (VmHWM from /proc/<pid>/status). */
export async function measureProcess(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; children?: boolean } = {},
): Promise<MeasuredRun> {
  const started = process.hrtime.bigint();
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: options.env ?? process.env });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  let peakKb = 0;
  const hwm = (pid: number | string) => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) peakKb = Math.max(peakKb, Number(m[1]));
    } catch {
      // Exited between two samples: the last one stands.
    }
  };
  const sample = () => {
    if (!options.children) return hwm(child.pid!);
    try {
      const kids = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(' ');
      for (const k of kids) if (k) hwm(k);
    } catch {
      // As above.
    }
  };
  const timer = setInterval(sample, 20);
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  clearInterval(timer);
  return { code, seconds: Number(process.hrtime.bigint() - started) / 1e9, peakRssMb: peakKb / 1024, stdout, stderr };
}
