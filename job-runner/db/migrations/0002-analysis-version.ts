/**
 * Which version of the analysis made each result (job-runner/analysis/version.ts), so that a rerun analyses again
 * what an older version made. An added nullable column, so that a writer that does not know it would still work
 * (its rows get NULL, read as "made by an old version"); the release before this one refuses a schema newer than
 * its own (SchemaTooNewError) all the same. Results already recorded were made by version 1; files never read
 * (pending, unreadable, skipped) have none.
 */
export const sql = String.raw`
ALTER TABLE midi.files ADD COLUMN analysis_version integer CHECK (analysis_version > 0);
UPDATE midi.files SET analysis_version = 1 WHERE sha256 IS NOT NULL;
`;
