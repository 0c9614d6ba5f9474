/**
 * The history of `kvstore shell`: the lines typed, oldest first, bounded, kept in a file
 * between sessions (`~/.kvstore_history`, or `$KVSTORE_HISTFILE`), as redis-cli keeps
 * `~/.rediscli_history`.
 *
 * File format: UTF-8 text, one entry per line, oldest first, each line ending in "\n".
 * An entry never contains a newline (the shell reads one line at a time). Reading keeps
 * the last SHELL_HISTORY_LINES_MAX non-empty lines, so a file grown by an older version
 * or by hand is trimmed rather than refused.
 *
 * Pure: the shell reads and writes the file.
 *
 * @module
 */

export class ShellHistory {
  readonly linesMax: number;
  #entries: string[];

  constructor(entries: readonly string[], linesMax: number) {
    this.linesMax = linesMax;
    this.#entries = entries.filter((entry) => entry.trim() !== "").slice(-linesMax);
  }

  /** Reads the file format. */
  static parse(text: string, linesMax: number): ShellHistory {
    return new ShellHistory(text.split(/\r?\n/), linesMax);
  }

  /** Entries, oldest first. */
  get entries(): readonly string[] {
    return this.#entries;
  }

  /** Adds a typed line: blank lines and a repeat of the last entry are not kept; the
   * oldest entry goes when the history is full. Returns whether the line was added. */
  add(line: string): boolean {
    const entry = line.replace(/[\r\n]+/g, " ").trimEnd();
    if (entry.trim() === "" || entry === this.#entries.at(-1)) return false;
    this.#entries.push(entry);
    if (this.#entries.length > this.linesMax) this.#entries.splice(0, this.#entries.length - this.linesMax);
    return true;
  }

  /** The file format. */
  toText(): string {
    return this.#entries.map((entry) => entry + "\n").join("");
  }
}
