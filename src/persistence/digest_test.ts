import assert from "node:assert/strict";
import { Store } from "../store/store.ts";
import { datasetDigest } from "./digest.ts";

function storeOf(entries: [string, string, number | null][]): Store {
  const store = new Store();
  for (const [key, value, expiresAtMs] of entries) store.apply({ kind: "set", key, value, expiresAtMs });
  return store;
}

Deno.test("the digest does not depend on the order entries were written in", () => {
  const a = storeOf([["a", "1", null], ["b", "2", 5000], ["c", "3", null]]);
  const b = storeOf([["c", "3", null], ["a", "1", null], ["b", "2", 5000]]);
  assert.deepEqual(datasetDigest(a, 0), datasetDigest(b, 0));
  assert.match(datasetDigest(a, 0).digest, /^[0-9a-f]{16}$/);
  assert.equal(datasetDigest(a, 0).keys, 3);
});

Deno.test("the digest changes with any key, value or deadline", () => {
  const base = datasetDigest(storeOf([["a", "1", null], ["b", "2", 5000]]), 0).digest;
  const variants: [string, string, number | null][][] = [
    [["a", "1", null], ["b", "2", 5001]],
    [["a", "1", null], ["b", "2", null]],
    [["a", "1", null], ["b", "3", 5000]],
    [["a", "1", null], ["c", "2", 5000]],
    [["a", "1", null]],
    [["a", "1", null], ["b", "2", 5000], ["b2", "", null]],
    // The same bytes split differently between key and value.
    [["a1", "", null], ["b", "2", 5000]],
  ];
  for (const variant of variants) {
    assert.notEqual(datasetDigest(storeOf(variant), 0).digest, base, JSON.stringify(variant));
  }
});

Deno.test("the digest leaves out keys past their deadline", () => {
  const withExpired = storeOf([["a", "1", null], ["gone", "x", 100]]);
  const without = storeOf([["a", "1", null]]);
  assert.deepEqual(datasetDigest(withExpired, 100), datasetDigest(without, 100));
  assert.notDeepEqual(datasetDigest(withExpired, 99), datasetDigest(without, 99));
});

Deno.test("the digest of an empty dataset is zeros", () => {
  assert.deepEqual(datasetDigest(new Store(), 0), { digest: "0000000000000000", keys: 0 });
});
