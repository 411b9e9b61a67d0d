/**
 * A file's warnings, bounded. A crafted file can hold millions of malformed events or unknown chunks, each worth a
 * warning: kept one by one they took a runner past its memory limit and put millions of strings in one row. So a
 * file keeps its first MAX_WARNINGS_PER_FILE warnings and a count of the rest, which is what a person reading them
 * needs: the first of each kind says what is wrong, the count says how often.
 */
export const MAX_WARNINGS_PER_FILE = 100;

export class Warnings {
  private readonly kept: string[] = [];
  private dropped = 0;

  constructor(private readonly max: number = MAX_WARNINGS_PER_FILE) {}

  push(message: string): void {
    if (this.kept.length < this.max) this.kept.push(message);
    else this.dropped++;
  }

  /** The warnings kept, then one line counting those that were not. A new array, safe to send to another thread. */
  list(): string[] {
    if (this.dropped === 0) return [...this.kept];
    return [...this.kept, `${this.dropped} more warnings not kept (at most ${this.max} per file)`];
  }
}
