import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../../common/log.js';
import { installShutdownHandlers } from '../../../job-runner/runner/shutdown.js';

const log = createLogger({ level: 'silent' });
// 'disconnect' too: vitest's worker is a forked process with an IPC channel, so the handlers take it for local mode's
// lifeline, listen on it and unref it. Left behind, a channel closing at the worker's end would call the real
// process.exit, and an unref'd channel lets the worker's loop end under vitest's feet.
const EVENTS = ['SIGTERM', 'SIGINT', 'disconnect'] as const;

describe('installShutdownHandlers', () => {
  let before: Map<(typeof EVENTS)[number], ((...args: unknown[]) => void)[]>;
  let exit: ReturnType<typeof vi.spyOn>;
  beforeEach(() => {
    vi.useFakeTimers();
    before = new Map(EVENTS.map((e) => [e, process.listeners(e as 'disconnect') as (() => void)[]]));
    exit = vi.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
  });
  afterEach(() => {
    for (const e of EVENTS)
      for (const l of process.listeners(e as 'disconnect'))
        if (!before.get(e)!.includes(l)) process.removeListener(e as 'disconnect', l);
    process.channel?.ref();
    exit.mockRestore();
    vi.useRealTimers();
  });

  it('a runner: the first signal aborts, and past the grace the process exits 75', () => {
    const signal = installShutdownHandlers(log, { graceMs: 1000 });
    process.emit('SIGTERM', 'SIGTERM');
    expect(signal.aborted).toBe(true);
    vi.advanceTimersByTime(999);
    expect(exit).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(exit).toHaveBeenCalledWith(75);
  });

  it('local mode (no grace): waits for its runners however long, and a second signal exits 75 at once', () => {
    const signal = installShutdownHandlers(log, { graceMs: null, message: 'stopping' });
    process.emit('SIGINT', 'SIGINT');
    expect(signal.aborted).toBe(true);
    vi.advanceTimersByTime(3_600_000);
    expect(exit).not.toHaveBeenCalled();
    process.emit('SIGINT', 'SIGINT');
    expect(exit).toHaveBeenCalledWith(75);
  });
});
const SHUTDOWN = path.resolve('dist/job-runner/runner/shutdown.js');
const LOG = path.resolve('dist/common/log.js');

/**
 * A process spawned as local mode spawns its runners (with an IPC channel) that installs the runner's shutdown
 * handlers, either at once or only after its channel has closed (its parent died while it was starting), and prints
 * the reason its signal aborted with. The parent closes the channel as its death would: once the child is listening,
 * or at once.
 */
async function abortReason(listen: 'at once' | 'after the channel closed'): Promise<unknown> {
  if (!existsSync(SHUTDOWN)) throw new Error(`${SHUTDOWN} is missing: run \`npm run build\` first (npm test does)`);
  const script = `
    const { installShutdownHandlers } = await import(${JSON.stringify(pathToFileURL(SHUTDOWN).href)});
    const { createLogger } = await import(${JSON.stringify(pathToFileURL(LOG).href)});
    const late = ${JSON.stringify(listen === 'after the channel closed')};
    while (late && process.connected) await new Promise((resolve) => setTimeout(resolve, 10));
    const signal = installShutdownHandlers(createLogger({ level: 'silent' }));
    setInterval(() => {}, 60_000); // a runner's work, which keeps it alive (the channel does not)
    const report = () => process.stdout.write(JSON.stringify({ reason: signal.reason }), () => process.exit(0));
    if (signal.aborted) report();
    else signal.addEventListener('abort', report);
    if (!late) process.stdout.write('listening\\n');
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  let stdout = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    if (child.connected && stdout.includes('listening\n')) child.disconnect();
  });
  if (listen === 'after the channel closed') child.disconnect();
  // After a disconnect of its own, Node emits no 'close' for a child: its exit and the end of its stdout say it is done.
  const deadline = AbortSignal.timeout(10_000);
  try {
    await Promise.all([once(child, 'exit', { signal: deadline }), once(child.stdout!, 'end', { signal: deadline })]);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  return (JSON.parse(stdout.split('\n').pop()!) as { reason: unknown }).reason;
}

describe('installShutdownHandlers under local mode', () => {
  it('shuts the runner down when its IPC channel to local mode closes', async () => {
    expect(await abortReason('at once')).toBe('the end of local mode, its parent');
  });

  it('shuts the runner down when the channel had closed before it listened (the parent died during its start)', async () => {
    expect(await abortReason('after the channel closed')).toBe('the end of local mode, its parent');
  });
});
