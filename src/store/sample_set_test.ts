import assert from "node:assert/strict";
import { SampleSet } from "./sample_set.ts";

Deno.test("a sample set keeps members unique and removes from anywhere", () => {
  const set = new SampleSet();
  for (const member of ["a", "b", "c", "a"]) set.add(member);
  assert.equal(set.size, 3);
  assert.equal(set.delete("a"), true);
  assert.equal(set.delete("a"), false);
  assert.equal(set.has("b") && set.has("c"), true);
  assert.equal(set.size, 2);
});

Deno.test("pick reaches every member and never a removed one", () => {
  const set = new SampleSet();
  for (let i = 0; i < 10; i++) set.add(`m${i}`);
  set.delete("m3");
  set.delete("m9");
  const seen = new Set<string>();
  for (let i = 0; i < 8; i++) seen.add(set.pick(() => i / 8)!);
  assert.equal(seen.size, 8);
  assert.equal(seen.has("m3") || seen.has("m9"), false);
  set.clear();
  assert.equal(set.pick(Math.random), undefined);
});

Deno.test("members stay reachable, each once, as the set shrinks from a large peak", () => {
  const set = new SampleSet();
  for (let i = 0; i < 10_000; i++) set.add(`m${i}`);
  // Removals from anywhere, down past a quarter of the peak (the array is made anew).
  for (let i = 0; i < 10_000; i++) if (i % 10 !== 0) set.delete(`m${i}`);
  assert.equal(set.size, 1000);
  const seen = new Set<string>();
  for (let i = 0; i < 1000; i++) seen.add(set.pick(() => i / 1000)!);
  assert.equal(seen.size, 1000);
  for (const member of seen) assert.ok(set.has(member) && Number(member.slice(1)) % 10 === 0, member);
  for (const member of seen) assert.equal(set.delete(member), true);
  assert.equal(set.size, 0);
  set.add("again");
  assert.equal(set.pick(() => 0), "again");
});
