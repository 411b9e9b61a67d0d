/**
 * The key under which a corpus is recorded in Postgres (midi.corpora.key), and which the controller passes to its scan
 * and run pods as `--corpus`: `<namespace>/<name>` of the MidiCorpus. Local mode's default key, the corpus
 * directory's absolute path, starts with `/` and so never equals one of these.
 */
export function corpusKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}
