/**
 * The export's choices and defaults, apart from the code that exports: `midi-corpus export` shows them in its help and
 * checks --format against them, which must not load pg and the Parquet writer for a command that only parses its flags.
 */

export const EXPORT_FORMATS = ['csv', 'jsonl', 'parquet'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** Files per Parquet row group: large enough for good compression, small enough to hold in memory with ease. */
export const DEFAULT_ROW_GROUP_SIZE = 10_000;

/** Rows per FETCH: a few megabytes at most, whatever the corpus's size. */
export const DEFAULT_FETCH_SIZE = 2000;
