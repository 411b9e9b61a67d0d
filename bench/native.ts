/**
 * Benchmark (g): analyzeMidi's MB/s per core beside a native parser's on the same files: portSMF, the C++ Standard
 * MIDI File library Audacity uses, from Debian (bench/native/portsmf-parse.cpp, built on first use by
 * bench/native/build.sh). Both sides hold the files in memory and run whole passes on one core; the native one
 * parses, pairs notes and builds its tempo map, then walks every event (less than analyzeMidi does: no key, meter,
 * polyphony or drum analysis), so the ratio is a bound on the gap to native speed, not a like-for-like race.
 * Rounds alternate (native, ours, native, ours) so that machine noise falls on both alike.
 *
 * Files both refuse or that portSMF takes quadratic time on (tens of thousands of notes sounding at once: a
 * 20 000-note file takes it seconds) are for the analysis tests, not for a speed figure: the caller passes files
 * analyzeMidi accepts.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { analysisPass } from './analysis.js';

const exec = promisify(execFile);
const BUILD = fileURLToPath(new URL('../../bench/native/build.sh', import.meta.url));

export interface NativeFigures {
  passes: number;
  seconds: number;
  mbPerSecond: number;
  filesPerSecond: number;
  /** Files the parser refused in one pass. */
  failures: number;
}

export interface NativeBenchResult {
  parser: 'portSMF (Debian libportsmf-dev, g++ -O2)';
  files: number;
  bytes: number;
  analysis: NativeFigures;
  native: NativeFigures & { eventsPerPass: number; notesPerPass: number };
  /** analyzeMidi's MB/s over portSMF's: above 1, the analysis is the faster of the two. */
  analysisOverNative: number;
}

interface NativeRun {
  files: number;
  bytes: number;
  passes: number;
  seconds: number;
  events: number;
  notes: number;
  failures: number;
}

/** `paths` are absolute; `files` their bytes, in the same order. */
export async function benchNative(
  paths: readonly string[],
  files: readonly Uint8Array[],
  options: { minSeconds?: number; scratch: string },
): Promise<NativeBenchResult> {
  if (paths.length === 0 || paths.length !== files.length) throw new Error('benchNative needs paths and their bytes');
  const minSeconds = options.minSeconds ?? 3;
  const binary = (await exec('bash', [BUILD], { maxBuffer: 16 << 20 })).stdout.trim().split('\n').pop()!;
  const list = path.join(options.scratch, 'native-files.txt');
  await writeFile(list, `${paths.join('\n')}\n`);
  const bytes = files.reduce((n, f) => n + f.length, 0);

  const native = { passes: 0, seconds: 0, events: 0, notes: 0, failures: 0 };
  const ours = { passes: 0, seconds: 0, failures: 0 };
  analysisPass(files); // warm-up; the native side warms up inside its process
  for (let round = 0; round < 2; round++) {
    const { stdout } = await exec('bash', ['-c', `"$0" "$1" < "$2"`, binary, String(minSeconds / 2), list]);
    const run = JSON.parse(stdout) as NativeRun;
    if (run.bytes !== bytes) throw new Error(`the native parser read ${run.bytes} bytes, not ${bytes}`);
    native.passes += run.passes;
    native.seconds += run.seconds;
    Object.assign(native, { events: run.events, notes: run.notes, failures: run.failures });
    const until = ours.seconds + minSeconds / 2;
    while (ours.seconds < until) {
      const start = process.hrtime.bigint();
      ours.failures = analysisPass(files);
      ours.seconds += Number(process.hrtime.bigint() - start) / 1e9;
      ours.passes++;
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  const figures = (passes: number, seconds: number, failures: number): NativeFigures => ({
    passes,
    seconds,
    mbPerSecond: (passes * bytes) / 1e6 / seconds,
    filesPerSecond: (passes * files.length) / seconds,
    failures,
  });
  const analysis = figures(ours.passes, ours.seconds, ours.failures);
  const nativeFigures = {
    ...figures(native.passes, native.seconds, native.failures),
    eventsPerPass: native.events,
    notesPerPass: native.notes,
  };
  return {
    parser: 'portSMF (Debian libportsmf-dev, g++ -O2)',
    files: files.length,
    bytes,
    analysis,
    native: nativeFigures,
    analysisOverNative: analysis.mbPerSecond / nativeFigures.mbPerSecond,
  };
}
