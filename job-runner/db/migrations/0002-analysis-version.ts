/**
 * Which version of the analysis made each result (job-runner/analysis/version.ts), so that a rerun analyses again
 * what an older version made. An added nullable column: the previous release's runners, which do not know it, keep
 * writing (their rows get NULL, read as "made by an old version", and are analysed again by a newer runner).
 * Results already recorded were made by version 1; files never read (pending, unreadable, skipped) have none.
 */
export const sql = String.raw`
ALTER TABLE midi.files ADD COLUMN analysis_version integer CHECK (analysis_version > 0);
UPDATE midi.files SET analysis_version = 1 WHERE sha256 IS NOT NULL;
`;
