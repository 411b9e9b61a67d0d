/**
 * Text for HTML and SVG, element content and quoted attributes alike. Everything the report shows from the database
 * (paths, reasons, corpus keys, instrument names) passes through here: a MIDI file named `<script>….mid` or a track
 * name quoted in a failure reason must show as text, never run or break the page.
 */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
