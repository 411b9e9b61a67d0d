/**
 * General MIDI level 1 program names (0-127) and the 16 instrument families of eight programs each, plus the names
 * of the GS drum kits selected by a program change on channel 10 (index 9), where programs choose kits, not instruments.
 */

export const GM_PROGRAM_NAMES: readonly string[] = [
  'acoustic grand piano', 'bright acoustic piano', 'electric grand piano', 'honky-tonk piano',
  'electric piano 1', 'electric piano 2', 'harpsichord', 'clavinet',
  'celesta', 'glockenspiel', 'music box', 'vibraphone', 'marimba', 'xylophone', 'tubular bells', 'dulcimer',
  'drawbar organ', 'percussive organ', 'rock organ', 'church organ', 'reed organ', 'accordion', 'harmonica',
  'tango accordion',
  'acoustic guitar (nylon)', 'acoustic guitar (steel)', 'electric guitar (jazz)', 'electric guitar (clean)',
  'electric guitar (muted)', 'overdriven guitar', 'distortion guitar', 'guitar harmonics',
  'acoustic bass', 'electric bass (finger)', 'electric bass (pick)', 'fretless bass', 'slap bass 1', 'slap bass 2',
  'synth bass 1', 'synth bass 2',
  'violin', 'viola', 'cello', 'contrabass', 'tremolo strings', 'pizzicato strings', 'orchestral harp', 'timpani',
  'string ensemble 1', 'string ensemble 2', 'synth strings 1', 'synth strings 2', 'choir aahs', 'voice oohs',
  'synth voice', 'orchestra hit',
  'trumpet', 'trombone', 'tuba', 'muted trumpet', 'french horn', 'brass section', 'synth brass 1', 'synth brass 2',
  'soprano sax', 'alto sax', 'tenor sax', 'baritone sax', 'oboe', 'english horn', 'bassoon', 'clarinet',
  'piccolo', 'flute', 'recorder', 'pan flute', 'blown bottle', 'shakuhachi', 'whistle', 'ocarina',
  'lead 1 (square)', 'lead 2 (sawtooth)', 'lead 3 (calliope)', 'lead 4 (chiff)', 'lead 5 (charang)',
  'lead 6 (voice)', 'lead 7 (fifths)', 'lead 8 (bass + lead)',
  'pad 1 (new age)', 'pad 2 (warm)', 'pad 3 (polysynth)', 'pad 4 (choir)', 'pad 5 (bowed)', 'pad 6 (metallic)',
  'pad 7 (halo)', 'pad 8 (sweep)',
  'fx 1 (rain)', 'fx 2 (soundtrack)', 'fx 3 (crystal)', 'fx 4 (atmosphere)', 'fx 5 (brightness)', 'fx 6 (goblins)',
  'fx 7 (echoes)', 'fx 8 (sci-fi)',
  'sitar', 'banjo', 'shamisen', 'koto', 'kalimba', 'bagpipe', 'fiddle', 'shanai',
  'tinkle bell', 'agogo', 'steel drums', 'woodblock', 'taiko drum', 'melodic tom', 'synth drum', 'reverse cymbal',
  'guitar fret noise', 'breath noise', 'seashore', 'bird tweet', 'telephone ring', 'helicopter', 'applause',
  'gunshot',
];

export const GM_FAMILIES: readonly string[] = [
  'piano', 'chromatic percussion', 'organ', 'guitar', 'bass', 'strings', 'ensemble', 'brass',
  'reed', 'pipe', 'synth lead', 'synth pad', 'synth effects', 'ethnic', 'percussive', 'sound effects',
];

/** The family of every note on the drum channel, whatever its program. */
export const DRUM_FAMILY = 'drums';

/** GS drum-kit programs; other programs on the drum channel are reported by number. */
const DRUM_KITS: ReadonlyMap<number, string> = new Map([
  [0, 'standard kit'], [8, 'room kit'], [16, 'power kit'], [24, 'electronic kit'], [25, 'tr-808 kit'],
  [32, 'jazz kit'], [40, 'brush kit'], [48, 'orchestra kit'], [56, 'sound fx kit'],
]);

/** The General MIDI drum channel: MIDI channel 10, index 9. */
export const DRUM_CHANNEL = 9;

export function programName(program: number, isDrum: boolean): string {
  if (isDrum) return DRUM_KITS.get(program) ?? `drum kit ${program}`;
  return GM_PROGRAM_NAMES[program] ?? `program ${program}`;
}

export function programFamily(program: number, isDrum: boolean): string {
  if (isDrum) return DRUM_FAMILY;
  return GM_FAMILIES[Math.floor(program / 8)] ?? 'unknown';
}
