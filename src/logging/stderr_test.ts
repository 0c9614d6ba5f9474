import assert from "node:assert/strict";
import { writeLine } from "./stderr.ts";

Deno.test("a log line is written whole, even through partial writes", () => {
  const chunks: string[] = [];
  const written = writeLine("hello", (bytes) => {
    const part = bytes.subarray(0, 2);
    chunks.push(new TextDecoder().decode(part));
    return part.length;
  });
  assert.equal(written, true);
  assert.equal(chunks.join(""), "hello\n");
});

Deno.test("a log line that cannot be written (a broken pipe) is dropped, not thrown", () => {
  const written = writeLine("lost", () => {
    throw new Deno.errors.BrokenPipe("Broken pipe (os error 32)");
  });
  assert.equal(written, false);
});
