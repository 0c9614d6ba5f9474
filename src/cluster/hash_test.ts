import assert from "node:assert/strict";
import { hashString, xxHash32 } from "./hash.ts";

const utf8 = (text: string) => new TextEncoder().encode(text);

// Published xxHash32 vectors (the reference implementation's sanity checks, also used by
// the Rust, Swift and Boost ports): short inputs exercise the tail, inputs of 16 bytes or
// more the four-lane stripes.
const VECTORS: [string, number, number][] = [
  ["", 0, 0x02cc5d05],
  ["", 1, 0x0b2cb792],
  ["", 0x7fffffff, 0xc89b854f],
  ["1", 0, 0xb6ecc8b2],
  ["1", 1, 0x642684c5],
  ["test", 0, 0x3e2023cf],
  ["123456789", 0, 0x937bad67],
  ["123456789ABCDEF", 0, 0x576e3cf9],
  ["Hello World!", 0, 0x0bd69788],
  ["The quick brown fox jumps over the lazy dog", 0, 0xe85ea4de],
  ["Nobody inspects the spammish repetition", 0, 0xe2293b2f],
];

Deno.test("xxHash32 matches the published test vectors", () => {
  for (const [text, seed, expected] of VECTORS) {
    assert.equal(xxHash32(utf8(text), seed), expected, `${JSON.stringify(text)} seed ${seed}`);
  }
});

Deno.test("hashString hashes the UTF-8 bytes, including long and non-ASCII text", () => {
  for (const [text, , expected] of VECTORS.filter(([, seed]) => seed === 0)) {
    assert.equal(hashString(text), expected);
  }
  const long = "ключ 🔑 ".repeat(1000);
  assert.equal(hashString(long), xxHash32(utf8(long)));
  assert.equal(hashString("short again"), xxHash32(utf8("short again")));
});

Deno.test("xxHash32 spreads sequential keys evenly over 16 buckets", () => {
  const buckets = new Array(16).fill(0);
  for (let i = 0; i < 160_000; i++) buckets[hashString(`key:${i}`) >>> 28]++;
  for (const count of buckets) assert.ok(Math.abs(count - 10_000) < 400, `bucket holds ${count}`);
});
