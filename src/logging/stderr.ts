/**
 * The process's log sink: one line per event on standard error.
 *
 * @module
 */

const encoder = new TextEncoder();

/** Writes a finished log line to stderr. Synchronous so that a line logged just before
 * the process exits (a fatal start-up error, a crash point) is never lost. */
export function stderrSink(line: string): void {
  const bytes = encoder.encode(line + "\n");
  let written = 0;
  while (written < bytes.length) written += Deno.stderr.writeSync(bytes.subarray(written));
}
