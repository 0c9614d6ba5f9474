import assert from "node:assert/strict";
import { decodeClusterCursor, encodeClusterCursor } from "./scan_cursor.ts";

Deno.test("a cluster cursor round-trips, with a shard cursor that holds dots or is empty", () => {
  for (const cursor of [{ epoch: 7, index: 2, shardCursor: "3f9a1c2e.41" }, { epoch: 1, index: 0, shardCursor: "" }]) {
    assert.deepEqual(decodeClusterCursor(encodeClusterCursor(cursor)), cursor);
  }
  assert.equal(encodeClusterCursor({ epoch: 7, index: 2, shardCursor: "ab.1" }), "c1.7.2.ab.1");
});

Deno.test("text that is not a cluster cursor is refused with INVALID_ARGUMENT", () => {
  for (const text of ["3f9a1c2e.41", "c1.x.0.", "c2.1.0.a", "c1.1"]) {
    assert.throws(() => decodeClusterCursor(text), (error: Error & { code?: string }) => {
      assert.equal(error.code, "INVALID_ARGUMENT");
      assert.match(error.message, /is not a cluster scan cursor; start again/);
      return true;
    });
  }
});
