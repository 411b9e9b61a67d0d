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

function sorted<T extends NoteRow>(rows: T[]): T[] {
  return rows.sort(
    (a, b) => a.ticks - b.ticks || a.channel - b.channel || a.midi - b.midi || a.durationTicks - b.durationTicks,
  );
}

/** The analysis reader's notes, with the index of the track chunk each comes from. */
export function analyzerNotes(bytes: Uint8Array): (NoteRow & { track: number })[] {
  const content = readSmf(bytes);
  const tempo = buildTempoMap(content.division, content.tempos);
  const { notes } = content;
  const rows: (NoteRow & { track: number })[] = [];
  for (let i = 0; i < notes.count; i++) {
    const start = tempo.toSeconds(notes.startTick[i]!);
    rows.push({
      ticks: notes.startTick[i]!,
      durationTicks: notes.endTick[i]! - notes.startTick[i]!,
      midi: notes.pitch[i]!,
      channel: notes.channel[i]!,
      time: start,
      duration: tempo.toSeconds(notes.endTick[i]!) - start,
      track: notes.track[i]!,
    });
  }
  return sorted(rows);
}

export function tonejsNotes(midi: Midi): NoteRow[] {
  return sorted(
    midi.tracks.flatMap((track) =>
      track.notes.map((n) => ({
        ticks: n.ticks,
        durationTicks: n.durationTicks,
        midi: n.midi,
        channel: track.channel,
        time: n.time,
        duration: n.duration,
      })),
    ),
  );
}
