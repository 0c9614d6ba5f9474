import assert from "node:assert/strict";
import { ByteReader, ByteWriter } from "./bytes.ts";

Deno.test("strings read back equal what was written: ASCII and not, short and long, empty", () => {
  const strings = [
    "",
    "a",
    "key:1",
    "x".repeat(12),
    "y".repeat(13),
    "z".repeat(32),
    "w".repeat(33),
    "é",
    "ключ",
    "💾 disk",
  ];
  strings.push("ascii then ü".padStart(31, "a"), "a".repeat(5000), "ü".repeat(3000));
  const writer = new ByteWriter(8);
  for (const text of strings) writer.string32(text);
  const reader = new ByteReader(writer.view().slice());
  assert.deepEqual(strings.map(() => reader.string32()), strings);
  assert.equal(reader.remaining, 0);
});

Deno.test("short strings read back are built flat, not as a chain of one-character pieces", () => {
  // Keys of 13 to 32 characters are the common case ("user:1234:profile"). Built by
  // appending one character at a time, each became a rope of up to 32 pieces taking
  // ~680 heap bytes instead of ~56, for every key loaded at start-up, until something
  // flattened it (the first snapshot's walk, promoting the copies into the old heap).
  const count = 400_000;
  const writer = new ByteWriter(1024 * 1024);
  for (let i = 0; i < count; i++) writer.string32(`k${i}`.padEnd(32, "x"));
  const bytes = writer.view().slice();
  const held: string[] = new Array(count);
  const before = Deno.memoryUsage().heapUsed;
  const reader = new ByteReader(bytes);
  for (let i = 0; i < count; i++) held[i] = reader.string32();
  const perString = (Deno.memoryUsage().heapUsed - before) / count;
  // Flat: ~56 bytes each, plus young garbage not collected yet (at most a young
  // generation, under 100 bytes a string here). A rope: ~680, less what garbage made
  // before the loop was collected during it (measured: ~400).
  assert.ok(perString < 200, `${Math.round(perString)} heap bytes per 32-character string`);
  assert.equal(held[count - 1], `k${count - 1}`.padEnd(32, "x"));
});
