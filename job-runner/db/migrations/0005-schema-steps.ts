/**
 * Where migrations from this one on are recorded, with what an older release needs to know about a migration it does
 * not carry: whether it is an expand step (older code keeps working) or a contract step, and then the oldest code that
 * works once it is in (`compatible_from`, named by the newest migration that code knows). See migrations.ts.
 *
 * A table of its own rather than columns and rows in midi.schema_migrations: the releases up to migration 4 refuse a
 * database whose schema_migrations holds a version they do not know, whatever it is, so a row there would stop every
 * one of their runners still at work during an upgrade. schema_migrations keeps versions 1 to 4, and gains a row from
 * here on only to fence those releases out (a contract step they cannot run past). Expand-only: a new table.
 */
export const sql = String.raw`
CREATE TABLE midi.schema_steps (
  version         integer PRIMARY KEY CHECK (version > 4),
  name            text NOT NULL,
  checksum        text NOT NULL CHECK (checksum ~ '^[0-9a-f]{64}$'),
  kind            text NOT NULL CHECK (kind IN ('expand', 'contract')),
  compatible_from integer CHECK (compatible_from BETWEEN 1 AND version),
  applied_at      timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT schema_steps_contract_has_floor CHECK ((kind = 'contract') = (compatible_from IS NOT NULL))
);
COMMENT ON TABLE midi.schema_steps IS
  'Migrations from 5 on. expand: code that does not know the step keeps working; contract: only code knowing migration compatible_from or later does.';
`;
