import assert from "node:assert/strict";
import { twoColumns, wrapText } from "./usage_text.ts";

Deno.test("help text wraps at spaces, keeping its line breaks and its indented example lines", () => {
  assert.deepEqual(wrapText("one two three four", 9), ["one two", "three", "four"]);
  assert.deepEqual(wrapText("a longwordthatdoesnotfit b", 5), ["a", "longwordthatdoesnotfit", "b"]);
  assert.deepEqual(wrapText("first line\n  an example that is long\nlast", 10), [
    "first line",
    "  an example that is long",
    "last",
  ]);
});

Deno.test("a table's descriptions wrap under their own column", () => {
  const lines = twoColumns([["--a", "short"], ["--long-flag N", "words ".repeat(12).trim()]], "  ", 60);
  assert.deepEqual(lines, [
    "  --a            short",
    "  --long-flag N  words words words words words words words",
    "                 words words words words words",
  ]);
  // A description is never squeezed below 40 columns: a long label pushes it past the width.
  const [wide] = twoColumns([["x".repeat(50), "a b"]], "", 60);
  assert.equal(wide, `${"x".repeat(50)}  a b`);
});
