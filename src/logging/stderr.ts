/**
 * The process's log sink: one line per event on standard error.
 *
 * @module
 */

const encoder = new TextEncoder();

/** Writes a finished log line to stderr. Synchronous so that a line logged just before
 * the process exits (a fatal start-up error, a crash point) is never lost.
 *
 * A line that cannot be written is dropped: when whatever read stderr went away (a
 * `| head` that exited, a log shipper or journald restarting) the write fails with a
 * broken pipe, and a node must not stop serving, or die in the middle of its graceful
 * shutdown, because nobody reads its log any more. As Redis does, it goes on without. */
export function stderrSink(line: string): void {
  writeLine(line, (bytes) => Deno.stderr.writeSync(bytes));
}

/** Writes `line` and a newline with `write` (which may write part of what it is given),
 * dropping the rest of the line if a write throws. Exported for tests. */
export function writeLine(line: string, write: (bytes: Uint8Array) => number): boolean {
  const bytes = encoder.encode(line + "\n");
  let written = 0;
  try {
    while (written < bytes.length) written += write(bytes.subarray(written));
    return true;
  } catch {
    return false;
  }
}
