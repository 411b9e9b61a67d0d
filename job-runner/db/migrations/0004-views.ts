/**
 * Views for the questions people ask of an ingested corpus, so that `midi-corpus query`, psql, a notebook and
 * `midi-corpus export` all read the same definitions instead of each re-joining the tables its own way.
 *
 * Expand-only: CREATE OR REPLACE VIEW and comments, no table touched, so a release that does not know the views
 * still works on a database that has them. (CREATE OR REPLACE VIEW can only add columns at the end: a later migration
 * that extends a view appends its columns.) Every view is per corpus (`corpus` = midi.corpora.key) and reads
 * statuses as they are: missing (migration 3: gone from the volume at the last scan, its results kept) has its own
 * column in v_corpora, and a status a later release adds shows as itself in v_files and v_corpus_status and counts as
 * `other` in v_corpora, never as an error. Figures are those of the files analysed ok (and of missing ones in
 * v_files): a changed file back at pending keeps its old analysis row until the new one replaces it, and the views do
 * not show it.
 */
export const sql = String.raw`
CREATE OR REPLACE VIEW midi.v_files AS
SELECT c.key                                     AS corpus,
       f.id                                      AS file_id,
       f.path,
       f.status,
       f.reason,
       f.warnings,
       f.size_bytes,
       encode(f.sha256, 'hex')                   AS sha256,
       f.analysis_version,
       f.analysed_at,
       a.format,
       a.track_count,
       a.channel_count,
       a.ticks_per_quarter,
       a.duration_seconds::double precision      AS duration_seconds,
       a.main_bpm::double precision              AS bpm,
       jsonb_array_length(a.tempo_map)           AS tempo_changes,
       (a.time_signatures -> 0 ->> 'numerator') || '/' || (a.time_signatures -> 0 ->> 'denominator') AS meter,
       jsonb_array_length(a.time_signatures)     AS meter_changes,
       a.key_tonic,
       a.key_mode,
       a.key_tonic || ' ' || a.key_mode          AS key,
       a.key_confidence::double precision        AS key_confidence,
       a.key_signatures -> 0 ->> 'key'           AS key_signature,
       a.note_count,
       a.note_density::double precision          AS note_density,
       a.max_polyphony,
       a.mean_polyphony::double precision        AS mean_polyphony,
       a.pitch_min,
       a.pitch_max,
       a.distinct_pitches,
       a.velocity_mean::double precision         AS velocity_mean,
       a.has_drums,
       CASE WHEN a.file_id IS NOT NULL THEN coalesce(i.programs, '{}') END    AS programs,
       CASE WHEN a.file_id IS NOT NULL THEN coalesce(i.instruments, '{}') END AS instruments,
       CASE WHEN a.file_id IS NOT NULL THEN coalesce(i.families, '{}') END    AS families,
       a.control_change_count,
       a.pitch_bend_count
  FROM midi.files f
  JOIN midi.corpora c ON c.id = f.corpus_id
  -- A changed file back at pending keeps its old analysis row until the new one replaces it: not its figures.
  LEFT JOIN midi.file_analysis a ON a.file_id = f.id AND f.status IN ('ok', 'missing')
  LEFT JOIN LATERAL (
    SELECT array_agg(DISTINCT ci.program ORDER BY ci.program) FILTER (WHERE NOT ci.is_drum)           AS programs,
           array_agg(DISTINCT ci.program_name ORDER BY ci.program_name) FILTER (WHERE NOT ci.is_drum) AS instruments,
           array_agg(DISTINCT ci.family ORDER BY ci.family)                                           AS families
      FROM midi.channel_instruments ci
     WHERE ci.file_id = a.file_id
  ) i ON true;

COMMENT ON VIEW midi.v_files IS
  'One row per file found by a scan, with its status and, when it was analysed (status ok), its figures; a file gone from the volume (status missing) keeps its last figures. Other files, a changed one waiting for its new analysis among them, have NULL figures.';
COMMENT ON COLUMN midi.v_files.corpus IS 'midi.corpora.key: <namespace>/<name> of a MidiCorpus, or local mode''s corpus key';
COMMENT ON COLUMN midi.v_files.path IS 'Path under the corpus root, for people (bytes that are not UTF-8 written as \xNN)';
COMMENT ON COLUMN midi.v_files.status IS 'pending, ok, failed, skipped, missing (gone from the volume at the last scan; later releases may add more)';
COMMENT ON COLUMN midi.v_files.reason IS 'Why the file failed or was skipped; NULL otherwise';
COMMENT ON COLUMN midi.v_files.sha256 IS 'SHA-256 of the file''s bytes, lower-case hex';
COMMENT ON COLUMN midi.v_files.bpm IS 'The tempo that lasts longest in the file, in quarter notes per minute';
COMMENT ON COLUMN midi.v_files.meter IS 'The first time signature, as numerator/denominator; NULL when the file has none (MIDI then assumes 4/4)';
COMMENT ON COLUMN midi.v_files.key IS 'The estimated key (Krumhansl-Schmuckler over note durations), e.g. "A minor"; NULL without pitched notes';
COMMENT ON COLUMN midi.v_files.key_confidence IS 'How far the best key stands out from the runner-up, 0 to 1';
COMMENT ON COLUMN midi.v_files.key_signature IS 'The first key-signature event of the file as written, if any (not an estimate)';
COMMENT ON COLUMN midi.v_files.note_density IS 'Notes per second of duration';
COMMENT ON COLUMN midi.v_files.programs IS 'General MIDI programs (0-127) played on channels other than the drum channel, ascending';
COMMENT ON COLUMN midi.v_files.instruments IS 'Names of those programs';
COMMENT ON COLUMN midi.v_files.families IS 'Instrument families of every channel with notes, drums included';

CREATE OR REPLACE VIEW midi.v_corpora AS
SELECT c.key AS corpus,
       count(f.id)                                                   AS files,
       count(*) FILTER (WHERE f.status = 'ok')                       AS ok,
       count(*) FILTER (WHERE f.status = 'failed')                   AS failed,
       count(*) FILTER (WHERE f.status = 'skipped')                  AS skipped,
       count(*) FILTER (WHERE f.status = 'pending')                  AS pending,
       count(*) FILTER (WHERE f.status = 'missing')                  AS missing,
       count(*) FILTER (WHERE f.status NOT IN ('ok', 'failed', 'skipped', 'pending', 'missing')) AS other,
       coalesce(sum(a.duration_seconds), 0)::double precision / 3600 AS hours,
       coalesce(sum(a.note_count), 0)                                AS notes,
       max(f.analysed_at)                                            AS last_analysed_at
  FROM midi.corpora c
  LEFT JOIN midi.files f ON f.corpus_id = c.id
  LEFT JOIN midi.file_analysis a ON a.file_id = f.id AND f.status = 'ok'
 GROUP BY c.key;
COMMENT ON VIEW midi.v_corpora IS
  'One row per corpus: files by status (other = a status this release does not know), hours of music and notes of the files analysed ok';

CREATE OR REPLACE VIEW midi.v_corpus_status AS
SELECT corpus, status, count(*) AS files FROM midi.v_files GROUP BY corpus, status;
COMMENT ON VIEW midi.v_corpus_status IS 'Files per corpus and status';

CREATE OR REPLACE VIEW midi.v_failure_reasons AS
SELECT corpus, status, reason, count(*) AS files, min(path) AS example_path
  FROM midi.v_files WHERE reason IS NOT NULL GROUP BY corpus, status, reason;
COMMENT ON VIEW midi.v_failure_reasons IS
  'Why files failed or were skipped, per corpus: how many files gave each reason, and one of them';

CREATE OR REPLACE VIEW midi.v_corpus_keys AS
SELECT corpus, key_tonic, key_mode, key, count(*) AS files, avg(key_confidence) AS mean_confidence
  FROM midi.v_files WHERE key IS NOT NULL GROUP BY corpus, key_tonic, key_mode, key;
COMMENT ON VIEW midi.v_corpus_keys IS 'Analysed files per corpus and estimated key, with the mean confidence of the estimate';

CREATE OR REPLACE VIEW midi.v_corpus_tempi AS
SELECT corpus, (floor(bpm / 10) * 10)::integer AS bpm_from, (floor(bpm / 10) * 10 + 10)::integer AS bpm_to,
       count(*) AS files
  FROM midi.v_files WHERE bpm IS NOT NULL GROUP BY corpus, floor(bpm / 10);
COMMENT ON VIEW midi.v_corpus_tempi IS 'Analysed files per corpus and main tempo, in bins of 10 BPM: bpm_from <= bpm < bpm_to';

CREATE OR REPLACE VIEW midi.v_corpus_meters AS
SELECT corpus, meter, count(*) AS files FROM midi.v_files WHERE status = 'ok' GROUP BY corpus, meter;
COMMENT ON VIEW midi.v_corpus_meters IS 'Analysed files per corpus and first time signature (meter NULL: the file has none)';

CREATE OR REPLACE VIEW midi.v_corpus_instruments AS
SELECT c.key AS corpus, ci.family, ci.program, ci.program_name, ci.is_drum,
       count(DISTINCT ci.file_id) AS files, sum(ci.note_count) AS notes
  FROM midi.channel_instruments ci
  JOIN midi.files f ON f.id = ci.file_id
  JOIN midi.corpora c ON c.id = f.corpus_id
 GROUP BY c.key, ci.family, ci.program, ci.program_name, ci.is_drum;
COMMENT ON VIEW midi.v_corpus_instruments IS
  'Per corpus and General MIDI program (drum kits with is_drum): how many files play it and how many notes';
`;
