import assert from "node:assert/strict";
import { utf8ByteLength, utf8LongerThan } from "./utf8.ts";

Deno.test("utf8ByteLength agrees with TextEncoder on every width of character", () => {
  const samples = ["", "abc", "é", "€", "😀", "a€😀é", "\ud800", "x\udc00y", "😀".repeat(1000)];
  for (const sample of samples) {
    assert.equal(utf8ByteLength(sample), new TextEncoder().encode(sample).length, JSON.stringify(sample));
  }
});

Deno.test("utf8LongerThan decides at the exact byte limit", () => {
  assert.equal(utf8LongerThan("€€", 6), false);
  assert.equal(utf8LongerThan("€€", 5), true);
  assert.equal(utf8LongerThan("a".repeat(10), 10), false);
  assert.equal(utf8LongerThan("a".repeat(11), 10), true);
});
