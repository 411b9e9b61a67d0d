import { describe, expect, it } from 'vitest';
import {
  filterSql,
  FilterError,
  parseExportFilter,
  parseInstrument,
  parseKey,
  parseMeter,
  type ExportFilterInput,
} from '../../../job-runner/results/filters.js';

describe('export filters', () => {
  describe('parseKey', () => {
    it.each([
      ['A minor', { tonic: 'A', mode: 'minor' }],
      ['a min', { tonic: 'A', mode: 'minor' }],
      ['Am', { tonic: 'A', mode: 'minor' }],
      ['AM', { tonic: 'A', mode: 'major' }],
      ['Bb major', { tonic: 'A#', mode: 'major' }],
      ['E♭ Major', { tonic: 'D#', mode: 'major' }],
      ['F#m', { tonic: 'F#', mode: 'minor' }],
      ['Cb maj', { tonic: 'B', mode: 'major' }],
      ['E# minor', { tonic: 'F', mode: 'minor' }],
      ['  G  ', { tonic: 'G' }],
    ])('%j is %j', (text, key) => {
      expect(parseKey(text)).toEqual(key);
    });

    it.each(['H minor', 'A dorian', '', 'C##', 'minor'])('refuses %j, naming --key', (text) => {
      expect(() => parseKey(text)).toThrow(FilterError);
      expect(() => parseKey(text)).toThrow(/^--key: .*e\.g\. "A minor"/);
    });
  });

  describe('parseMeter', () => {
    it.each([
      ['4/4', { numerator: 4, denominator: 4 }],
      [' 6 / 8 ', { numerator: 6, denominator: 8 }],
      ['7/16', { numerator: 7, denominator: 16 }],
    ])('%j is %j', (text, meter) => expect(parseMeter(text)).toEqual(meter));

    it.each(['4/3', '0/4', '4', 'four/four', '4/0', '256/4'])('refuses %j, naming --meter', (text) => {
      expect(() => parseMeter(text)).toThrow(/^--meter: .*e\.g\. 4\/4/);
    });
  });

  describe('parseInstrument', () => {
    it.each([
      ['0', { kind: 'program', program: 0 }],
      ['127', { kind: 'program', program: 127 }],
      ['Strings', { kind: 'family', family: 'strings' }],
      ['drums', { kind: 'family', family: 'drums' }],
      ['synth lead', { kind: 'family', family: 'synth lead' }],
      ['Violin', { kind: 'name', name: 'violin' }],
      ['acoustic grand piano', { kind: 'name', name: 'acoustic grand piano' }],
    ])('%j is %j', (text, match) => expect(parseInstrument(text)).toEqual(match));

    it.each(['128', '-1', 'kazoo', ''])('refuses %j, naming --instrument and what would do', (text) => {
      expect(() => parseInstrument(text)).toThrow(/^--instrument: .*0-127.*strings/);
    });
  });

  describe('parseExportFilter', () => {
    it('reads statuses as a list, comma-separated or repeated, and "all" as no status filter', () => {
      expect(parseExportFilter({ status: ['ok,failed', 'Skipped', 'ok'] }).statuses).toEqual([
        'ok',
        'failed',
        'skipped',
      ]);
      expect(parseExportFilter({ status: ['all'] }).statuses).toBeUndefined();
      expect(parseExportFilter({}).statuses).toBeUndefined();
      // A status a later release adds (a rerun's 'missing') is a word like the others, not an error.
      expect(parseExportFilter({ status: ['missing'] }).statuses).toEqual(['missing']);
    });

    it.each<[string, ExportFilterInput, RegExp]>([
      ['a status that is no word', { status: ['ok;drop'] }, /^--status: "ok;drop" is not a status: use ok, failed/],
      ['a tempo that is not a number (yargs gives NaN)', { tempoMin: NaN }, /^--tempo-min: must be a number of BPM/],
      ['a tempo of zero', { tempoMax: 0 }, /^--tempo-max: must be a number of BPM above 0/],
      ['a minimum above the maximum', { tempoMin: 140, tempoMax: 90 }, /^--tempo-min: 140 is above --tempo-max 90/],
      ['an empty corpus key', { corpus: '' }, /^--corpus: must not be empty/],
    ])('refuses %s', (_, input, message) => {
      expect(() => parseExportFilter(input)).toThrow(message);
    });
  });

  describe('filterSql', () => {
    const everything: ExportFilterInput = {
      corpus: "x'; DROP TABLE midi.files; --",
      status: ['ok'],
      key: 'A minor',
      tempoMin: 90,
      tempoMax: 130,
      meter: '3/4',
      drums: false,
      instrument: ['40', 'strings', 'violin'],
    };

    it('puts every value in a parameter: the text depends on which filters are given, never on their values', () => {
      const a = filterSql(parseExportFilter(everything));
      const b = filterSql(
        parseExportFilter({
          ...everything,
          corpus: 'other',
          key: 'C major',
          tempoMin: 1,
          tempoMax: 2,
          meter: '6/8',
          drums: true,
          instrument: ['0', 'brass', 'cello'],
        }),
      );
      expect(a.where).toBe(b.where);
      expect(a.where).not.toContain('DROP');
      expect(a.params).toEqual([
        everything.corpus,
        ['ok'],
        'A',
        'minor',
        90,
        130,
        '3/4',
        false,
        40,
        'strings',
        'violin',
      ]);
      expect(a.where.match(/\$\d+/g)).toEqual(a.params.map((_, i) => `$${i + 1}`));
    });

    it('is empty without filters, and a key without a mode leaves the mode free', () => {
      expect(filterSql({})).toEqual({ where: '', params: [] });
      const { where, params } = filterSql(parseExportFilter({ key: 'F#' }));
      expect(where).toBe('WHERE v.key_tonic = $1');
      expect(params).toEqual(['F#']);
    });
  });
});
