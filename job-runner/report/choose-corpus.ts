import { UsageError } from '../runner/errors.js';

/** How many keys an error lists before it says "and N more": a database may hold hundreds of corpora. */
const LISTED_KEYS = 20;

/**
 * Which corpus a report is about: the one `--corpus` names, or the only one the database holds. Pure, so every
 * refusal is tested without a database. Throws UsageError (exit 64) naming --corpus and the keys there are: a
 * local run's key is its directory's absolute path, which people do not remember.
 */
export function chooseCorpus(keys: readonly string[], wanted: string | undefined): string {
  if (wanted !== undefined) {
    if (keys.includes(wanted)) return wanted;
    throw new UsageError(
      keys.length === 0
        ? `--corpus ${wanted}: this database holds no corpus yet (run midi-corpus local <dir> first)`
        : `--corpus ${wanted}: no such corpus in this database; it holds ${listKeys(keys)}`,
    );
  }
  if (keys.length === 1) return keys[0]!;
  if (keys.length === 0) throw new UsageError('this database holds no corpus yet (run midi-corpus local <dir> first)');
  throw new UsageError(`this database holds ${keys.length} corpora: choose one with --corpus: ${listKeys(keys)}`);
}

function listKeys(keys: readonly string[]): string {
  const shown = keys.slice(0, LISTED_KEYS).join(', ');
  return keys.length > LISTED_KEYS ? `${shown} and ${keys.length - LISTED_KEYS} more` : shown;
}
