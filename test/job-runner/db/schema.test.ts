import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../../../job-runner/db/migrations.js';
import { ensureCorpus, writeBatch } from '../../../job-runner/db/store.js';
import { startTestPostgres, type TestPostgres } from '../../support/postgres.js';
import { okResult } from './analysis-fixture.js';

/**
 * The schema's constraints, tried directly with SQL: whatever a future writer does, the database itself must refuse
 * NaN, ±Infinity and malformed rows.
 */
describe('schema constraints', () => {
  let db: TestPostgres;
  let client: pg.Client;
  beforeAll(async () => {
    db = await startTestPostgres();
    client = new pg.Client({ connectionString: await db.createDatabase() });
    await client.connect();
    await migrate(client);
    const corpus = await ensureCorpus(client, 'constraints');
    await writeBatch(client, corpus, [okResult('one.mid')]);
  });
  afterAll(async () => {
    await client?.end();
    await db?.destroy();
  });

  async function refused(sql: string): Promise<string> {
    const err = await client.query(sql).then(
      () => null,
      (e: unknown) => e as { code?: string },
    );
    expect(err, sql).not.toBeNull();
    return err!.code!;
  }

  const analysisFloats = [
    'duration_seconds',
    'main_bpm',
    'key_correlation',
    'key_confidence',
    'velocity_mean',
    'note_density',
    'mean_polyphony',
  ];
  for (const column of analysisFloats) {
    for (const bad of ['NaN', 'Infinity', '-Infinity']) {
      it(`file_analysis.${column} refuses ${bad}`, async () => {
        expect(await refused(`UPDATE midi.file_analysis SET ${column} = '${bad}'`)).toBe('23514');
      });
    }
  }

  for (const bad of ['NaN', 'Infinity', '-Infinity']) {
    it(`tracks.duration_seconds refuses ${bad}`, async () => {
      expect(await refused(`UPDATE midi.tracks SET duration_seconds = '${bad}'`)).toBe('23514');
    });
    it(`the pitch-class histogram refuses ${bad} in any bin`, async () => {
      expect(await refused(`UPDATE midi.file_analysis SET pitch_class_histogram[7] = '${bad}'`)).toBe('23514');
    });
  }

  const malformed: Array<{ name: string; sql: string }> = [
    { name: 'a histogram with a NULL bin', sql: 'UPDATE midi.file_analysis SET pitch_class_histogram[3] = NULL' },
    {
      name: 'a histogram of 11 bins',
      sql: 'UPDATE midi.file_analysis SET pitch_class_histogram = pitch_class_histogram[1:11]',
    },
    { name: 'a histogram with a negative share', sql: 'UPDATE midi.file_analysis SET pitch_class_histogram[1] = -0.5' },
    {
      name: 'a tempo map entry with a null (what JSON makes of NaN)',
      sql: `UPDATE midi.file_analysis SET tempo_map = '[{"tick":0,"seconds":0,"bpm":null}]'`,
    },
    { name: 'a tempo map that is not a list', sql: `UPDATE midi.file_analysis SET tempo_map = '{"bpm":120}'` },
    { name: 'a pitch above 127', sql: 'UPDATE midi.file_analysis SET pitch_max = 128' },
    { name: 'a pitch range upside down', sql: 'UPDATE midi.file_analysis SET pitch_min = 80, pitch_max = 60' },
    { name: 'half an estimated key', sql: 'UPDATE midi.file_analysis SET key_tonic = NULL' },
    { name: 'an SMPTE division with a PPQ', sql: `UPDATE midi.file_analysis SET division_kind = 'smpte'` },
    { name: 'channel 16', sql: 'UPDATE midi.channel_instruments SET channel = 16' },
    { name: 'a track on channel 16', sql: `UPDATE midi.tracks SET channels = '{16}'` },
    { name: 'a hash of 31 bytes', sql: `UPDATE midi.files SET sha256 = substring(sha256 from 2)` },
    { name: 'an unknown status', sql: `UPDATE midi.files SET status = 'done'` },
    { name: 'a failure without a reason', sql: `UPDATE midi.files SET status = 'failed'` },
    { name: 'an ok file with a reason', sql: `UPDATE midi.files SET reason = 'because'` },
    { name: 'a NULL warning', sql: `UPDATE midi.files SET warnings = '{a,NULL}'` },
  ];
  for (const row of malformed) {
    it(`refuses ${row.name}`, async () => {
      expect(await refused(row.sql)).toMatch(/^23/);
    });
  }

  it('still holds the valid row it started with', async () => {
    const { rows } = await client.query(
      'SELECT main_bpm, cardinality(pitch_class_histogram) AS bins FROM midi.file_analysis',
    );
    expect(rows).toEqual([{ main_bpm: 120, bins: 12 }]);
  });
});
