/**
 * Text on its way into Postgres. `text` and `jsonb` refuse U+0000, and jsonb refuses lone UTF-16 surrogates, yet both
 * occur in MIDI files' track names and in messages quoting them. One bad name must not fail a whole batch, so
 * strings are cleaned here: NUL dropped, lone surrogates replaced by U+FFFD.
 */
export function pgText(s: string): string {
  return s
    .replaceAll('\u0000', '')
    .replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
}

/** JSON for a jsonb parameter, every string in it cleaned with pgText. */
export function pgJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'string' ? pgText(v) : v));
}
