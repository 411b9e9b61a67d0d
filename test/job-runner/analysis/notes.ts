/** Note lists from the analysis reader and from @tonejs/midi, in one shape and order, for comparing the two. */
import type { Midi } from '@tonejs/midi';
import { readSmf } from '../../../job-runner/analysis/smf-reader.js';
import { buildTempoMap } from '../../../job-runner/analysis/tempo-map.js';

export interface NoteRow {
  ticks: number;
  durationTicks: number;
  midi: number;
  channel: number;
  time: number;
  duration: number;
}

function sorted(rows: NoteRow[]): NoteRow[] {
  return rows.sort((a, b) => a.ticks - b.ticks || a.channel - b.channel || a.midi - b.midi || a.durationTicks - b.durationTicks);
}

export function analyzerNotes(bytes: Uint8Array): NoteRow[] {
  const content = readSmf(bytes);
  const tempo = buildTempoMap(content.division, content.tempos);
  const { notes } = content;
  const rows: NoteRow[] = [];
  for (let i = 0; i < notes.count; i++) {
    const start = tempo.toSeconds(notes.startTick[i]!);
    rows.push({
      ticks: notes.startTick[i]!,
      durationTicks: notes.endTick[i]! - notes.startTick[i]!,
      midi: notes.pitch[i]!,
      channel: notes.channel[i]!,
      time: start,
      duration: tempo.toSeconds(notes.endTick[i]!) - start,
    });
  }
  return sorted(rows);
}

export function tonejsNotes(midi: Midi): NoteRow[] {
  return sorted(midi.tracks.flatMap((track) => track.notes.map((n) => ({
    ticks: n.ticks,
    durationTicks: n.durationTicks,
    midi: n.midi,
    channel: track.channel,
    time: n.time,
    duration: n.duration,
  }))));
}
