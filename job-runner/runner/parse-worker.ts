import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open, readlink, realpath, type FileHandle } from 'node:fs/promises';
import { parentPort } from 'node:worker_threads';
import { analyzeMidi } from '../analysis/analyze.js';
import { errorCode, isInside, notRegular, OUTSIDE_ROOT_REASON, unreadableReason } from './list.js';
import type { ParseReply, ParseResult, ParseTask } from './protocol.js';
import { writeSplitTracks } from './split-output.js';

/**
 * A parse worker thread: reads one file, hashes it, and analyses it unless its hash matches the recorded one.
 * Started by ParsePool from the compiled dist/ file.
 */

if (!parentPort) throw new Error('parse-worker.js runs as a worker thread of the runner');
const port = parentPort;

port.on('message', (task: ParseTask) => {
  void handle(task).then(
    (result) => port.postMessage({ id: task.id, result } satisfies ParseReply),
    (e: unknown) => port.postMessage({
      id: task.id,
      result: { kind: 'aborted', size: null, sha256: null, reason: `analysis failed unexpectedly: ${e instanceof Error ? e.message : String(e)}` },
    } satisfies ParseReply),
  );
});

function refused(reason: string, size: number | null = null, status: 'failed' | 'skipped' = 'failed'): ParseResult {
  return { kind: 'refused', status, reason, size, sha256: null };
}

function tooBig(size: number, limit: number): ParseResult {
  return refused(`file is ${size} bytes, over the limit of ${limit}`, size);
}

async function handle(task: ParseTask): Promise<ParseResult> {
  const path = asBuffer(task.path);
  const root = asBuffer(task.root);
  let file: FileHandle;
  try {
    // O_NONBLOCK: a FIFO put in place of a file after the scan must not block the worker forever on open().
    file = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    return refused(await unreadableReason(path, e));
  }
  let bytes: Buffer;
  try {
    // The scan confined symlinks to the root, but the tree may have changed since: check what was actually opened.
    if (!isInside(await openedPath(file, path), root)) return refused(OUTSIDE_ROOT_REASON, null, 'skipped');
    const stats = await file.stat();
    if (!stats.isFile()) return refused(notRegular(stats).reason);
    // Checked on the open file, before reading: a 40 GB "MIDI" file costs one fstat, not 40 GB of memory.
    if (stats.size > task.maxFileBytes) return tooBig(stats.size, task.maxFileBytes);
    bytes = await file.readFile();
  } catch (e) {
    return refused(`file could not be read (${errorCode(e)})`);
  } finally {
    await file.close();
  }
  // The file may have grown between fstat and read.
  if (bytes.length > task.maxFileBytes) return tooBig(bytes.length, task.maxFileBytes);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  if (sha256 === task.knownSha256) return { kind: 'unchanged', sha256, size: bytes.length };
  port.postMessage({ id: task.id, hashed: { sha256, size: bytes.length } } satisfies ParseReply);
  const outcome = analyzeMidi(bytes);
  if (!outcome.ok || !task.splitOutputDir) return { kind: 'analysed', sha256, size: bytes.length, outcome, splitTracks: [] };
  const split = await writeSplitTracks(bytes, sha256, task.splitOutputDir);
  if (split.warning) outcome.warnings.push(split.warning);
  return { kind: 'analysed', sha256, size: bytes.length, outcome, splitTracks: split.files };
}

/** The real path of an open file: /proc/self/fd names exactly what was opened; realpath() where there is no /proc. */
async function openedPath(file: FileHandle, path: Buffer): Promise<Buffer> {
  try {
    return await readlink(`/proc/self/fd/${file.fd}`, { encoding: 'buffer' });
  } catch {
    return realpath(path, { encoding: 'buffer' });
  }
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
