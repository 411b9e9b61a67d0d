import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { analyzeMidi } from '../analysis/analyze.js';
import { FailureKind, failureKindOf } from '../analysis/failure.js';
import { DEFAULT_READER_LIMITS } from '../analysis/smf-reader.js';
import { errorCode, isInside, notRegular, OUTSIDE_ROOT_REASON, unreadableReason } from './list.js';
import type { ParseReply, ParseResult, ParseTask } from './protocol.js';
import { writeSplitTracks } from './split-output.js';

/**
 * A parse worker thread: reads one file, hashes it, and analyses it unless its hash matches the recorded one.
 * Started by ParsePool from the compiled dist/ file.
 *
 * The pool sends a worker its next file before the current one is done, so the worker never waits for the main
 * thread (busy writing batches) between files. Files are still handled strictly one at a time, in the order sent:
 * the pool's time limit runs for one file at a time, and it knows which file a stopped worker was holding.
 */

if (!parentPort) throw new Error('parse-worker.js runs as a worker thread of the runner');
const port = parentPort;

let queue: Promise<void> = Promise.resolve();
port.on('message', (task: ParseTask) => {
  queue = queue.then(() =>
    handle(task).then(
      (result) => port.postMessage({ id: task.id, result } satisfies ParseReply),
      (e: unknown) =>
        port.postMessage({
          id: task.id,
          result: {
            kind: 'aborted',
            size: null,
            sha256: null,
            reason: `analysis failed unexpectedly: ${e instanceof Error ? e.message : String(e)}`,
          },
        } satisfies ParseReply),
    ),
  );
});
port.postMessage({ ready: true } satisfies ParseReply);

function refused(reason: string, size: number | null = null, status: 'failed' | 'skipped' = 'failed'): ParseResult {
  return { kind: 'refused', status, reason, size, sha256: null };
}

function tooBig(size: number, limit: number): ParseResult {
  return refused(`file is ${size} bytes, over the limit of ${limit}`, size);
}

async function handle(task: ParseTask): Promise<ParseResult> {
  const path = asBuffer(task.path);
  const root = asBuffer(task.root);
  // Synchronous calls: this thread has nothing else to do meanwhile, and each asynchronous call would be a hop through
  // libuv's thread pool and back — five per file, each waiting for a core on a busy machine, which cost more than
  // the analysis itself. A read that hangs (a dead network mount) holds only this thread: the pool's time limit
  // gives up on it and starts another worker, where a hung asynchronous read would hold one of the process's four
  // shared thread-pool threads.
  let fd: number;
  try {
    // O_NONBLOCK: a FIFO put in place of a file after the scan must not block the worker forever on open().
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    return refused(await unreadableReason(path, e));
  }
  let bytes: Buffer;
  try {
    // The scan confined symlinks to the root, but the tree may have changed since: check what was actually opened.
    if (!isInside(openedPath(fd, path), root)) return refused(OUTSIDE_ROOT_REASON, null, 'skipped');
    const stats = fstatSync(fd);
    if (!stats.isFile()) return refused(notRegular(stats).reason);
    // Checked on the open file, before reading: a 40 GB "MIDI" file costs one fstat, not 40 GB of memory.
    if (stats.size > task.maxFileBytes) return tooBig(stats.size, task.maxFileBytes);
    bytes = readFileSync(fd);
  } catch (e) {
    return refused(`file could not be read (${errorCode(e)})`);
  } finally {
    closeSync(fd);
  }
  // The file may have grown between fstat and read.
  if (bytes.length > task.maxFileBytes) return tooBig(bytes.length, task.maxFileBytes);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  if (sha256 === task.knownSha256) return { kind: 'unchanged', sha256, size: bytes.length };
  port.postMessage({ id: task.id, hashed: { sha256, size: bytes.length } } satisfies ParseReply);
  const outcome = analyzeMidi(bytes, { maxEvents: task.maxEvents });
  if (
    !outcome.ok &&
    task.maxEvents < DEFAULT_READER_LIMITS.maxEvents &&
    failureKindOf(outcome.reason) === FailureKind.tooManyEvents
  ) {
    outcome.reason += `; ${task.maxEvents} events is the most this pod's memory limit allows per file`;
  }
  if (!outcome.ok || !task.splitOutputDir)
    return { kind: 'analysed', sha256, size: bytes.length, outcome, splitTracks: [] };
  const split = await writeSplitTracks(bytes, sha256, task.splitOutputDir);
  if (split.warning) outcome.warnings.push(split.warning);
  return { kind: 'analysed', sha256, size: bytes.length, outcome, splitTracks: split.files };
}

/** The real path of an open file: /proc/self/fd names exactly what was opened; realpath() where there is no /proc. */
function openedPath(fd: number, path: Buffer): Buffer {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`, { encoding: 'buffer' });
  } catch {
    return realpathSync(path, { encoding: 'buffer' });
  }
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
