import { DRUM_FAMILY, GM_FAMILIES, GM_PROGRAM_NAMES } from '../analysis/gm.js';

/**
 * Which files an export takes: the filters of `midi-corpus export`, parsed from what a person types into values
 * (parseExportFilter), then turned into a WHERE clause over midi.v_files (filterSql). Pure, so every spelling and
 * every refusal is tested as a table without a database.
 *
 * The SQL text depends only on WHICH filters are given, never on their values: every value travels as a bind
 * parameter, so nothing a user types is ever part of a statement.
 */

export const TONICS = ['C', 'C#', 'D', 'D#', 'E', 'F', 'F#', 'G', 'G#', 'A', 'A#', 'B'] as const;
export type Tonic = (typeof TONICS)[number];
export type Mode = 'major' | 'minor';

/** Statuses this release writes; --status accepts any lower-case word, so a status a later release adds works too. */
export const KNOWN_STATUSES = ['ok', 'failed', 'skipped', 'pending', 'missing'] as const;

export type InstrumentMatch =
  { kind: 'program'; program: number } | { kind: 'family'; family: string } | { kind: 'name'; name: string };

export interface ExportFilter {
  corpus?: string;
  /** Files with one of these statuses; undefined: every status. */
  statuses?: string[];
  key?: { tonic: Tonic; mode?: Mode };
  /** Main tempo at least this (BPM). */
  tempoMin?: number;
  /** Main tempo at most this (BPM). */
  tempoMax?: number;
  meter?: { numerator: number; denominator: number };
  /** true: only files with notes on the drum channel; false: only files without. */
  drums?: boolean;
  /** Files that play every one of these. */
  instruments?: InstrumentMatch[];
}

/** A filter value a person typed that means nothing: names the option and says what would do. */
export class FilterError extends Error {
  override readonly name = 'FilterError';
  constructor(
    readonly option: string,
    message: string,
  ) {
    super(`--${option}: ${message}`);
  }
}

export interface ExportFilterInput {
  corpus?: string;
  status?: string[];
  key?: string;
  tempoMin?: number;
  tempoMax?: number;
  meter?: string;
  drums?: boolean;
  instrument?: string[];
}

/** Parses the options as typed; throws FilterError naming the first option that is wrong. */
export function parseExportFilter(input: ExportFilterInput): ExportFilter {
  const filter: ExportFilter = {};
  if (input.corpus !== undefined) {
    if (input.corpus === '') throw new FilterError('corpus', 'must not be empty');
    filter.corpus = input.corpus;
  }
  const statuses = (input.status ?? []).flatMap((s) => s.split(',')).map((s) => s.trim().toLowerCase());
  if (statuses.length > 0 && !statuses.includes('all')) {
    for (const s of statuses) {
      if (!/^[a-z_]+$/.test(s))
        throw new FilterError('status', `"${s}" is not a status: use ${KNOWN_STATUSES.join(', ')} or all`);
    }
    filter.statuses = [...new Set(statuses)];
  }
  if (input.key !== undefined) filter.key = parseKey(input.key);
  for (const [option, value] of [
    ['tempo-min', input.tempoMin],
    ['tempo-max', input.tempoMax],
  ] as const) {
    if (value !== undefined && !(Number.isFinite(value) && value > 0))
      throw new FilterError(option, `must be a number of BPM above 0, not ${String(value)}`);
  }
  if (input.tempoMin !== undefined && input.tempoMax !== undefined && input.tempoMin > input.tempoMax)
    throw new FilterError('tempo-min', `${input.tempoMin} is above --tempo-max ${input.tempoMax}`);
  if (input.tempoMin !== undefined) filter.tempoMin = input.tempoMin;
  if (input.tempoMax !== undefined) filter.tempoMax = input.tempoMax;
  if (input.meter !== undefined) filter.meter = parseMeter(input.meter);
  if (input.drums !== undefined) filter.drums = input.drums;
  if (input.instrument !== undefined && input.instrument.length > 0)
    filter.instruments = input.instrument.map(parseInstrument);
  return filter;
}

const FLATS: Record<string, Tonic> = { DB: 'C#', EB: 'D#', FB: 'E', GB: 'F#', AB: 'G#', BB: 'A#', CB: 'B' };
const SHARPS: Record<string, Tonic> = { 'E#': 'F', 'B#': 'C' };

/** "A minor", "a min", "Bb major", "F#m", "C" (either mode): the estimated key's tonic and, when given, its mode. */
export function parseKey(text: string): { tonic: Tonic; mode?: Mode } {
  const m = /^\s*([A-Ga-g])\s*([#♯b♭]?)\s*(major|maj|minor|min|m)?\s*$/i.exec(text);
  if (!m)
    throw new FilterError('key', `"${text}" is not a key: write a tonic and a mode, e.g. "A minor" or "Eb major"`);
  const accidental = m[2] === '♯' ? '#' : m[2] === '♭' ? 'b' : m[2]!;
  const spelled = m[1]!.toUpperCase() + accidental.toUpperCase();
  const tonic = FLATS[spelled] ?? SHARPS[spelled] ?? (TONICS as readonly string[]).find((t) => t === spelled);
  if (!tonic) throw new FilterError('key', `"${text}" is not a key: write a tonic and a mode, e.g. "A minor"`);
  const word = m[3];
  const mode: Mode | undefined =
    word === undefined ? undefined : word === 'M' || word.toLowerCase().startsWith('maj') ? 'major' : 'minor';
  return mode ? { tonic: tonic as Tonic, mode } : { tonic: tonic as Tonic };
}

/** "4/4", "6/8": a numerator of 1 to 255 over a power of two, as a MIDI time signature can say. */
export function parseMeter(text: string): { numerator: number; denominator: number } {
  const m = /^\s*(\d{1,3})\s*\/\s*(\d{1,3})\s*$/.exec(text);
  const numerator = m ? Number(m[1]) : NaN;
  const denominator = m ? Number(m[2]) : NaN;
  if (!m || numerator < 1 || numerator > 255 || denominator < 1 || (denominator & (denominator - 1)) !== 0)
    throw new FilterError('meter', `"${text}" is not a meter: write numerator/denominator, e.g. 4/4 or 6/8`);
  return { numerator, denominator };
}

/** A General MIDI program number (0-127), a family ("strings", "drums") or a program's name ("violin"). */
export function parseInstrument(text: string): InstrumentMatch {
  const t = text.trim().toLowerCase();
  if (/^\d{1,3}$/.test(t) && Number(t) <= 127) return { kind: 'program', program: Number(t) };
  if (t === DRUM_FAMILY || GM_FAMILIES.includes(t)) return { kind: 'family', family: t };
  if (GM_PROGRAM_NAMES.includes(t)) return { kind: 'name', name: t };
  throw new FilterError(
    'instrument',
    `"${text}" is neither a General MIDI program (0-127), a family (${[...GM_FAMILIES, DRUM_FAMILY].join(', ')}) ` +
      'nor a program name such as "violin"',
  );
}

export interface FilterSql {
  /** `WHERE …` over midi.v_files aliased `v`, or '' without filters; placeholders start at $1. */
  where: string;
  params: unknown[];
}

/** The WHERE clause for `filter`: fixed SQL text with a placeholder for every value. */
export function filterSql(filter: ExportFilter): FilterSql {
  const conditions: string[] = [];
  const params: unknown[] = [];
  const param = (value: unknown) => {
    params.push(value);
    return `$${params.length}`;
  };
  if (filter.corpus !== undefined) conditions.push(`v.corpus = ${param(filter.corpus)}`);
  if (filter.statuses) conditions.push(`v.status = ANY(${param(filter.statuses)}::text[])`);
  if (filter.key) {
    conditions.push(`v.key_tonic = ${param(filter.key.tonic)}`);
    if (filter.key.mode) conditions.push(`v.key_mode = ${param(filter.key.mode)}`);
  }
  if (filter.tempoMin !== undefined) conditions.push(`v.bpm >= ${param(filter.tempoMin)}`);
  if (filter.tempoMax !== undefined) conditions.push(`v.bpm <= ${param(filter.tempoMax)}`);
  if (filter.meter) conditions.push(`v.meter = ${param(`${filter.meter.numerator}/${filter.meter.denominator}`)}`);
  if (filter.drums !== undefined) conditions.push(`v.has_drums = ${param(filter.drums)}`);
  for (const instrument of filter.instruments ?? []) {
    const match =
      instrument.kind === 'program'
        ? `ci.program = ${param(instrument.program)} AND NOT ci.is_drum`
        : instrument.kind === 'family'
          ? `ci.family = ${param(instrument.family)}`
          : `ci.program_name = ${param(instrument.name)} AND NOT ci.is_drum`;
    conditions.push(`EXISTS (SELECT 1 FROM midi.channel_instruments ci WHERE ci.file_id = v.file_id AND ${match})`);
  }
  return { where: conditions.length ? `WHERE ${conditions.join(' AND ')}` : '', params };
}
