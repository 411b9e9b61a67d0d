import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../../common/log.js';
import { installShutdownHandlers } from '../../../job-runner/runner/shutdown.js';

const log = createLogger({ level: 'silent' });
const SIGNALS = ['SIGTERM', 'SIGINT'] as const;

describe('installShutdownHandlers', () => {
  let before: Map<NodeJS.Signals, NodeJS.SignalsListener[]>;
  let exit: ReturnType<typeof vi.spyOn>;
  beforeEach(() => {
    vi.useFakeTimers();
    before = new Map(SIGNALS.map((s) => [s, process.listeners(s)]));
    exit = vi.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
  });
  afterEach(() => {
    for (const s of SIGNALS)
      for (const l of process.listeners(s)) if (!before.get(s)!.includes(l)) process.removeListener(s, l);
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
