/**
 * Reading text line by line from a stream (a file, or standard input when it is a pipe)
 * with a bound on the length of a line, for `kvstore import` and `kvstore shell`.
 *
 * Lines end with "\n" (a "\r" before it is dropped); the last line may lack one. A line
 * longer than the bound is refused with its number rather than held whole in memory.
 *
 * @module
 */

/** A line longer than the bound. */
export class LineTooLongError extends Error {
  readonly lineNumber: number;

  constructor(lineNumber: number, charsMax: number) {
    super(`line ${lineNumber} is longer than ${charsMax} characters`);
    this.name = "LineTooLongError";
    this.lineNumber = lineNumber;
  }
}

/** Cuts decoded text chunks into lines. Pure. */
export class LineSplitter {
  readonly charsMax: number;
  #partial = "";
  #lineNumber = 0;

  constructor(charsMax: number) {
    this.charsMax = charsMax;
  }

  /** The complete lines in `chunk` (with what was left from earlier chunks). */
  push(chunk: string): string[] {
    const lines: string[] = [];
    let start = 0;
    for (let newline = chunk.indexOf("\n"); newline >= 0; newline = chunk.indexOf("\n", start)) {
      const line = this.#partial + chunk.slice(start, newline);
      this.#partial = "";
      this.#lineNumber++;
      if (line.length > this.charsMax + 1) throw new LineTooLongError(this.#lineNumber, this.charsMax);
      lines.push(line.endsWith("\r") ? line.slice(0, -1) : line);
      start = newline + 1;
    }
    this.#partial += chunk.slice(start);
    if (this.#partial.length > this.charsMax + 1) throw new LineTooLongError(this.#lineNumber + 1, this.charsMax);
    return lines;
  }

  /** The last line when the text did not end with a newline, else undefined. */
  end(): string | undefined {
    if (this.#partial === "") return undefined;
    const line = this.#partial;
    this.#partial = "";
    this.#lineNumber++;
    if (line.length > this.charsMax) throw new LineTooLongError(this.#lineNumber, this.charsMax);
    return line.endsWith("\r") ? line.slice(0, -1) : line;
  }
}

/** The lines of a byte stream, decoded as UTF-8. */
export async function* readLines(stream: ReadableStream<Uint8Array>, charsMax: number): AsyncGenerator<string> {
  const splitter = new LineSplitter(charsMax);
  const decoder = new TextDecoder("utf-8", { fatal: false });
  for await (const chunk of stream) {
    yield* splitter.push(decoder.decode(chunk, { stream: true }));
  }
  const tail = splitter.push(decoder.decode());
  yield* tail;
  const last = splitter.end();
  if (last !== undefined) yield last;
}
