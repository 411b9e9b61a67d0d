/**
 * What a run again needs to tell an unchanged file from a changed one without reading it, and to keep the results of a
 * file that is gone. Expand-only, so that the previous release's runner and scan still work against it:
 *
 * - `modified_at`, the file's modification time at its last scan (microseconds, as timestamptz keeps them), beside
 *   `size_bytes`: a rescan sends a file back to pending when either differs. Nullable: rows scanned before this
 *   migration, or by a scan that does not know the column, have none, and then the size alone decides (the next scan
 *   records the time).
 * - the status `missing`: recorded once but absent from the last scan. The row keeps its reason, hash and analysis
 *   (someone may want to know what the deleted file was), so the two CHECKs that tie a reason to failed/skipped and an
 *   analysis time to "not pending" are widened to let a missing file keep whatever it had. Constraints are only ever
 *   widened here: every row valid before is valid after, and no column is dropped or renamed.
 */
export const sql = String.raw`
ALTER TABLE midi.files ADD COLUMN modified_at timestamptz;

ALTER TABLE midi.files DROP CONSTRAINT files_status_check;
ALTER TABLE midi.files ADD CONSTRAINT files_status_check
  CHECK (status IN ('pending', 'ok', 'failed', 'skipped', 'missing'));

ALTER TABLE midi.files DROP CONSTRAINT files_reason_iff_not_ok;
ALTER TABLE midi.files ADD CONSTRAINT files_reason_iff_not_ok
  CHECK (status = 'missing' OR (status IN ('failed', 'skipped')) = (reason IS NOT NULL));

ALTER TABLE midi.files DROP CONSTRAINT files_analysed_unless_pending;
ALTER TABLE midi.files ADD CONSTRAINT files_analysed_unless_pending
  CHECK (status = 'missing' OR (status = 'pending') = (analysed_at IS NULL));
`;
