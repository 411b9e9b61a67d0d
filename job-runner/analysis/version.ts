/**
 * The version of the analysis, recorded with every result it makes (midi.files.analysis_version). Raise it with any
 * change that can change a stored result (a field, a rule, a fixed defect): a rerun then analyses again the files
 * whose results an older version made, while files with a current result and unchanged bytes are still skipped.
 *
 * 1. The first release (results recorded before the column existed count as version 1).
 * 2. Zero-length notes written off-then-on, dangling notes ended at the next note-on of their pitch, warnings
 *    capped per file, long track names cut.
 */
export const ANALYSIS_VERSION = 2;
