/**
 * Benchmark (a): analyzeMidi against `new Midi(bytes)` from @tonejs/midi, side by side in one process on one core,
 * over the same files. Rounds alternate between the two so that machine noise (other processes, CPU frequency)
 * falls on both alike; each side runs whole passes over the files until it has run for at least `minSeconds`.
 */
import tonejs from '@tonejs/midi';
import { analyzeMidi } from '../job-runner/analysis/analyze.js';

// @tonejs/midi ships CommonJS (a UMD bundle) to Node: named ESM imports of it fail at run time, the default works.
const { Midi } = tonejs;

export interface ThroughputFigures {
  passes: number;
  seconds: number;
  filesPerSecond: number;
  mbPerSecond: number;
  /** Files that failed (analyzeMidi) or threw (tonejs) in one pass. */
  failures: number;
}

export interface AnalysisBenchResult {
  files: number;
  bytes: number;
  analysis: ThroughputFigures;
  tonejs: ThroughputFigures;
  /** Seconds per pass of @tonejs/midi over seconds per pass of analyzeMidi. */
  analysisSpeedupVsTonejs: number;
}

export interface AnalysisBenchOptions {
  /** Least time each side runs, in seconds (default 3). */
  minSeconds?: number;
}

/** One pass of analyzeMidi over the files; returns how many it refused. */
export function analysisPass(files: readonly Uint8Array[]): number {
  let failures = 0;
  for (const bytes of files) if (!analyzeMidi(bytes).ok) failures++;
  return failures;
}

function tonejsPass(files: readonly Uint8Array[]): number {
  let failures = 0;
  for (const bytes of files) {
    try {
      new Midi(bytes);
    } catch {
      failures++;
    }
  }
  return failures;
}

function timed(pass: () => number): { seconds: number; failures: number } {
  const start = process.hrtime.bigint();
  const failures = pass();
  return { seconds: Number(process.hrtime.bigint() - start) / 1e9, failures };
}

function figures(passes: number, seconds: number, files: number, bytes: number, failures: number): ThroughputFigures {
  return {
    passes,
    seconds,
    filesPerSecond: (passes * files) / seconds,
    mbPerSecond: (passes * bytes) / 1e6 / seconds,
    failures,
  };
}

export async function benchAnalysis(
  files: Uint8Array[],
  options: AnalysisBenchOptions = {},
): Promise<AnalysisBenchResult> {
  if (files.length === 0) throw new Error('benchAnalysis needs at least one file');
  const minSeconds = options.minSeconds ?? 3;
  const bytes = files.reduce((n, f) => n + f.length, 0);
  // Warm-up: let both reach optimised code before timing.
  analysisPass(files);
  tonejsPass(files);

  const side = { analysis: { passes: 0, seconds: 0, failures: 0 }, tonejs: { passes: 0, seconds: 0, failures: 0 } };
  while (side.analysis.seconds < minSeconds || side.tonejs.seconds < minSeconds) {
    if (side.analysis.seconds < minSeconds) {
      const run = timed(() => analysisPass(files));
      side.analysis.passes++;
      side.analysis.seconds += run.seconds;
      side.analysis.failures = run.failures;
    }
    if (side.tonejs.seconds < minSeconds) {
      const run = timed(() => tonejsPass(files));
      side.tonejs.passes++;
      side.tonejs.seconds += run.seconds;
      side.tonejs.failures = run.failures;
    }
    // Let the event loop breathe between rounds (progress output, signals).
    await new Promise((resolve) => setImmediate(resolve));
  }
  const analysis = figures(side.analysis.passes, side.analysis.seconds, files.length, bytes, side.analysis.failures);
  const tonejs = figures(side.tonejs.passes, side.tonejs.seconds, files.length, bytes, side.tonejs.failures);
  return {
    files: files.length,
    bytes,
    analysis,
    tonejs,
    analysisSpeedupVsTonejs: analysis.filesPerSecond / tonejs.filesPerSecond,
  };
}
