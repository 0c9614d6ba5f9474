/**
 * Splitting a line typed in `kvstore shell` into arguments, with quoting as redis-cli
 * does it, so values with spaces and special characters can be typed:
 *
 * | typed | arguments |
 * | --- | --- |
 * | `set greeting "hello world"` | `set`, `greeting`, `hello world` |
 * | `set k 'it''s'` | refused: a closing quote must end the argument |
 * | `set k 'don\'t'` | `set`, `k`, `don't` |
 * | `set k "tab\there\x21"` | `set`, `k`, "tab<TAB>here!" |
 * | `set k a\ b` | `set`, `k`, `a b` |
 * | `set k ""` | `set`, `k`, (empty) |
 *
 * In double quotes, `\n \r \t \b \a \\ \"` and `\xHH` (a byte; runs of them are UTF-8) are
 * escapes; in single quotes only `\'`. Outside quotes a backslash takes the next
 * character as it is. A closing quote must be followed by a space or the end of the line.
 *
 * Pure.
 *
 * @module
 */

/** A line that cannot be split, with the column (1-based) where the problem is. */
export class ShellSyntaxError extends Error {
  readonly column: number;

  constructor(message: string, column: number) {
    super(`${message} at column ${column}`);
    this.name = "ShellSyntaxError";
    this.column = column;
  }
}

const DOUBLE_QUOTE_ESCAPES: Record<string, string> = {
  n: "\n",
  r: "\r",
  t: "\t",
  b: "\b",
  a: "\x07",
  "\\": "\\",
  '"': '"',
};

const UTF8 = new TextDecoder("utf-8", { fatal: false });

/** Splits `line` into arguments; throws {@linkcode ShellSyntaxError}. */
export function splitWords(line: string): string[] {
  const words: string[] = [];
  let i = 0;
  const at = (index: number) => line[index];
  while (i < line.length) {
    while (i < line.length && /\s/.test(at(i))) i++;
    if (i >= line.length) break;
    let word = "";
    let inWord = true;
    while (inWord && i < line.length) {
      const char = at(i);
      if (/\s/.test(char)) {
        inWord = false;
      } else if (char === '"' || char === "'") {
        const start = i;
        i++;
        let closed = false;
        while (i < line.length) {
          const inner = at(i);
          if (inner === char) {
            closed = true;
            i++;
            break;
          }
          if (inner === "\\" && i + 1 < line.length) {
            const next = at(i + 1);
            if (char === "'") {
              if (next === "'") {
                word += "'";
                i += 2;
                continue;
              }
            } else if (next === "x" && /^[0-9a-fA-F]{2}$/.test(line.slice(i + 2, i + 4))) {
              // `\xHH` is a byte, as in redis-cli; a run of them is decoded as UTF-8, the
              // store's encoding, so "\xc3\xa9" is "é" (a byte that is not valid UTF-8
              // becomes U+FFFD).
              const bytes: number[] = [];
              while (line[i] === "\\" && line[i + 1] === "x" && /^[0-9a-fA-F]{2}$/.test(line.slice(i + 2, i + 4))) {
                bytes.push(parseInt(line.slice(i + 2, i + 4), 16));
                i += 4;
              }
              word += UTF8.decode(new Uint8Array(bytes));
              continue;
            } else if (DOUBLE_QUOTE_ESCAPES[next] !== undefined) {
              word += DOUBLE_QUOTE_ESCAPES[next];
              i += 2;
              continue;
            }
          }
          word += inner;
          i++;
        }
        if (!closed) throw new ShellSyntaxError(`Unterminated ${char === '"' ? "double" : "single"} quote`, start + 1);
        if (i < line.length && !/\s/.test(at(i))) {
          throw new ShellSyntaxError("A closing quote must be followed by a space", i + 1);
        }
      } else if (char === "\\" && i + 1 < line.length) {
        word += at(i + 1);
        i += 2;
      } else {
        word += char;
        i++;
      }
    }
    words.push(word);
  }
  return words;
}

/** Quotes `word` so that {@linkcode splitWords} gives it back (for help text and
 * history). Words without special characters are left as they are. */
export function quoteWord(word: string): string {
  if (word !== "" && /^[^\s"'\\]+$/.test(word)) return word;
  let quoted = '"';
  for (const char of word) {
    const escape = Object.entries(DOUBLE_QUOTE_ESCAPES).find(([, value]) => value === char)?.[0];
    if (escape !== undefined) quoted += `\\${escape}`;
    else if (char < " " || char === "\x7f") quoted += `\\x${char.charCodeAt(0).toString(16).padStart(2, "0")}`;
    else quoted += char;
  }
  return quoted + '"';
}
