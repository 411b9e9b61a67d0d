/**
 * The first schema: corpora, their files, and what the analysis found in each file.
 *
 * Everything lives in its own Postgres schema `midi`, so the operator can share a database with other applications
 * without name clashes. Conventions:
 * - `midi.finite_float` is double precision that refuses NaN and ±Infinity. A plain `x = x` check would NOT do:
 *   Postgres treats NaN as equal to itself (and greater than every number), so the domain compares against the
 *   infinities instead, which NaN fails too.
 * - Status and similar small vocabularies are text with CHECK rather than enum types: adding a value to an enum
 *   cannot run inside the migration's transaction on every supported version, a CHECK can be replaced in one.
 * - A file has an analysis row exactly when its status is 'ok'; tracks, channels and split-track outputs hang off the
 *   analysis row with ON DELETE CASCADE, so replacing a file's result is one DELETE plus INSERTs.
 */
export const sql = String.raw`
CREATE SCHEMA IF NOT EXISTS midi;

CREATE DOMAIN midi.finite_float AS double precision
  CHECK (VALUE > '-Infinity'::double precision AND VALUE < 'Infinity'::double precision);

CREATE DOMAIN midi.sha256 AS bytea CHECK (octet_length(VALUE) = 32);

CREATE TABLE midi.corpora (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  key         text NOT NULL UNIQUE CHECK (key <> ''),
  shard_count integer CHECK (shard_count >= 0),
  settings    jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(settings) = 'object'),
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE midi.files (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  corpus_id   bigint NOT NULL REFERENCES midi.corpora (id) ON DELETE CASCADE,
  -- The path relative to the corpus root exactly as the file system gave it: names need not be UTF-8.
  raw_path    bytea NOT NULL CHECK (octet_length(raw_path) > 0),
  -- The same path for people: valid UTF-8 kept, every other byte written as \xNN. Not unique; raw_path is.
  path        text NOT NULL,
  size_bytes  bigint NOT NULL CHECK (size_bytes >= 0),
  shard       integer NOT NULL CHECK (shard >= 0),
  status      text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'ok', 'failed', 'skipped')),
  reason      text,
  warnings    text[] NOT NULL DEFAULT '{}' CHECK (array_position(warnings, NULL) IS NULL),
  sha256      midi.sha256,
  -- How many times a result was written for this file (a rerun that rewrites it counts again).
  attempts    integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  scanned_at  timestamptz NOT NULL DEFAULT now(),
  analysed_at timestamptz,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT files_corpus_raw_path_key UNIQUE (corpus_id, raw_path),
  CONSTRAINT files_reason_iff_not_ok CHECK ((status IN ('failed', 'skipped')) = (reason IS NOT NULL)),
  CONSTRAINT files_ok_has_hash CHECK (status <> 'ok' OR sha256 IS NOT NULL),
  CONSTRAINT files_analysed_unless_pending CHECK ((status = 'pending') = (analysed_at IS NULL))
);
-- run-shard lists its shard; counts and failure lists group by status.
CREATE INDEX files_corpus_shard_idx ON midi.files (corpus_id, shard);
CREATE INDEX files_corpus_status_idx ON midi.files (corpus_id, status);

CREATE TABLE midi.file_analysis (
  file_id               bigint PRIMARY KEY REFERENCES midi.files (id) ON DELETE CASCADE,
  format                smallint NOT NULL CHECK (format IN (0, 1, 2)),
  division_kind         text NOT NULL CHECK (division_kind IN ('ppq', 'smpte')),
  ticks_per_quarter     integer CHECK (ticks_per_quarter > 0),
  smpte_fps             smallint CHECK (smpte_fps IN (24, 25, 29, 30)),
  ticks_per_frame       integer CHECK (ticks_per_frame > 0),
  track_count           integer NOT NULL CHECK (track_count >= 0),
  channel_count         smallint NOT NULL CHECK (channel_count BETWEEN 0 AND 16),
  duration_seconds      midi.finite_float NOT NULL CHECK (duration_seconds >= 0),
  duration_ticks        bigint NOT NULL CHECK (duration_ticks >= 0),
  main_bpm              midi.finite_float NOT NULL CHECK (main_bpm > 0),
  -- Lists whose length varies from file to file: [{tick, seconds, bpm}], [{tick, seconds, numerator, denominator}],
  -- [{tick, seconds, sharpsFlats, mode, key}]. JSON has no NaN; the checks refuse nulls, which is what a NaN becomes.
  tempo_map             jsonb NOT NULL CHECK (jsonb_typeof(tempo_map) = 'array' AND NOT jsonb_path_exists(tempo_map, '$[*].* ? (@ == null)')),
  time_signatures       jsonb NOT NULL CHECK (jsonb_typeof(time_signatures) = 'array' AND NOT jsonb_path_exists(time_signatures, '$[*].* ? (@ == null)')),
  key_signatures        jsonb NOT NULL CHECK (jsonb_typeof(key_signatures) = 'array' AND NOT jsonb_path_exists(key_signatures, '$[*].* ? (@ == null)')),
  key_tonic             text CHECK (key_tonic IN ('C', 'C#', 'D', 'D#', 'E', 'F', 'F#', 'G', 'G#', 'A', 'A#', 'B')),
  key_mode              text CHECK (key_mode IN ('major', 'minor')),
  key_correlation       midi.finite_float CHECK (key_correlation BETWEEN -1 AND 1),
  key_confidence        midi.finite_float CHECK (key_confidence BETWEEN 0 AND 1),
  note_count            bigint NOT NULL CHECK (note_count >= 0),
  pitch_min             smallint CHECK (pitch_min BETWEEN 0 AND 127),
  pitch_max             smallint CHECK (pitch_max BETWEEN 0 AND 127),
  distinct_pitches      smallint NOT NULL CHECK (distinct_pitches BETWEEN 0 AND 128),
  velocity_min          smallint CHECK (velocity_min BETWEEN 0 AND 127),
  velocity_mean         midi.finite_float CHECK (velocity_mean BETWEEN 0 AND 127),
  velocity_max          smallint CHECK (velocity_max BETWEEN 0 AND 127),
  note_density          midi.finite_float NOT NULL CHECK (note_density >= 0),
  max_polyphony         integer NOT NULL CHECK (max_polyphony >= 0),
  mean_polyphony        midi.finite_float NOT NULL CHECK (mean_polyphony >= 0),
  -- Twelve shares of pitched note time, C first. ALL() over a NULL element is NULL, which a CHECK lets through,
  -- hence the explicit array_position test; NaN sorts above 1 and -Infinity below 0, so the bounds refuse both.
  pitch_class_histogram double precision[] NOT NULL CHECK (
    array_ndims(pitch_class_histogram) = 1 AND cardinality(pitch_class_histogram) = 12
    AND array_position(pitch_class_histogram, NULL) IS NULL
    AND 0 <= ALL (pitch_class_histogram) AND 1 >= ALL (pitch_class_histogram)),
  has_drums             boolean NOT NULL,
  control_change_count  bigint NOT NULL CHECK (control_change_count >= 0),
  pitch_bend_count      bigint NOT NULL CHECK (pitch_bend_count >= 0),
  CONSTRAINT file_analysis_division_shape CHECK (
    (division_kind = 'ppq' AND ticks_per_quarter IS NOT NULL AND smpte_fps IS NULL AND ticks_per_frame IS NULL)
    OR (division_kind = 'smpte' AND ticks_per_quarter IS NULL AND smpte_fps IS NOT NULL AND ticks_per_frame IS NOT NULL)),
  CONSTRAINT file_analysis_key_all_or_none CHECK (
    num_nulls(key_tonic, key_mode, key_correlation, key_confidence) IN (0, 4)),
  CONSTRAINT file_analysis_pitch_range CHECK (
    (pitch_min IS NULL) = (pitch_max IS NULL) AND (pitch_min IS NULL OR pitch_min <= pitch_max)),
  CONSTRAINT file_analysis_velocity_range CHECK (
    num_nulls(velocity_min, velocity_mean, velocity_max) IN (0, 3)
    AND (velocity_min IS NULL OR (velocity_min <= velocity_mean AND velocity_mean <= velocity_max)))
);

CREATE TABLE midi.tracks (
  file_id          bigint NOT NULL REFERENCES midi.file_analysis (file_id) ON DELETE CASCADE,
  track_index      integer NOT NULL CHECK (track_index >= 0),
  name             text,
  channels         smallint[] NOT NULL CHECK (
    array_ndims(channels) IS NULL OR (array_ndims(channels) = 1 AND array_position(channels, NULL) IS NULL
      AND 0 <= ALL (channels) AND 15 >= ALL (channels))),
  note_count       bigint NOT NULL CHECK (note_count >= 0),
  pitch_min        smallint CHECK (pitch_min BETWEEN 0 AND 127),
  pitch_max        smallint CHECK (pitch_max BETWEEN 0 AND 127),
  duration_seconds midi.finite_float NOT NULL CHECK (duration_seconds >= 0),
  program          smallint CHECK (program BETWEEN 0 AND 127),
  is_drum          boolean NOT NULL,
  PRIMARY KEY (file_id, track_index),
  CONSTRAINT tracks_pitch_range CHECK (
    (pitch_min IS NULL) = (pitch_max IS NULL) AND (pitch_min IS NULL OR pitch_min <= pitch_max))
);

CREATE TABLE midi.channel_instruments (
  file_id      bigint NOT NULL REFERENCES midi.file_analysis (file_id) ON DELETE CASCADE,
  channel      smallint NOT NULL CHECK (channel BETWEEN 0 AND 15),
  program      smallint NOT NULL CHECK (program BETWEEN 0 AND 127),
  program_name text NOT NULL,
  family       text NOT NULL,
  is_drum      boolean NOT NULL,
  note_count   bigint NOT NULL CHECK (note_count >= 0),
  PRIMARY KEY (file_id, channel)
);
-- "Which files use a violin?" without a sequential scan.
CREATE INDEX channel_instruments_program_idx ON midi.channel_instruments (program);

CREATE TABLE midi.split_tracks (
  file_id     bigint NOT NULL REFERENCES midi.file_analysis (file_id) ON DELETE CASCADE,
  track_index integer NOT NULL CHECK (track_index >= 0),
  output_path text NOT NULL CHECK (output_path <> ''),
  size_bytes  bigint NOT NULL CHECK (size_bytes >= 0),
  sha256      midi.sha256 NOT NULL,
  PRIMARY KEY (file_id, track_index)
);
`;
