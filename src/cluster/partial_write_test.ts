import assert from "node:assert/strict";
import { partialWriteNote } from "./partial_write.ts";

const ok: PromiseSettledResult<unknown> = { status: "fulfilled", value: undefined };
const failed: PromiseSettledResult<unknown> = { status: "rejected", reason: new Error("down") };

Deno.test("a write no other shard took needs no note: the shard's error says all", () => {
  assert.equal(partialWriteNote([3, 2], [failed, failed]), null);
  assert.equal(partialWriteNote([4], [failed]), null);
});

Deno.test("a write one other shard took says so, with the entries it holds", () => {
  assert.equal(
    partialWriteNote([3, 2], [failed, ok]),
    "1 other shard took its part, 2 of the 5 entries (an MSet across shards is not atomic: read them back)",
  );
});

Deno.test("a write several shards took counts them and their entries", () => {
  assert.equal(
    partialWriteNote([1, 2, 4], [ok, failed, ok]),
    "2 other shards took theirs, 5 of the 7 entries (an MSet across shards is not atomic: read them back)",
  );
});
