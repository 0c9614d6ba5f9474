import assert from "node:assert/strict";
import { isExpired, Store } from "./store.ts";

Deno.test("set stores a value without a deadline", () => {
  const store = new Store();
  assert.equal(store.apply({ kind: "set", key: "k", value: "v", expiresAtMs: null }), true);
  assert.deepEqual(store.get("k", 0), { value: "v", expiresAtMs: null });
  assert.equal(store.size, 1);
  assert.equal(store.expiringCount, 0);
});

Deno.test("a key is hidden from get once its deadline passes, but still held until removed", () => {
  const store = new Store();
  store.apply({ kind: "set", key: "k", value: "v", expiresAtMs: 1000 });
  assert.equal(store.get("k", 999)?.value, "v");
  assert.equal(store.get("k", 1000), undefined, "a deadline equal to now has passed");
  assert.equal(store.peek("k")?.value, "v");
  assert.equal(store.size, 1);
});

Deno.test("set clears a deadline and removes the key from the expiring set", () => {
  const store = new Store();
  store.apply({ kind: "set", key: "k", value: "v", expiresAtMs: 1000 });
  assert.equal(store.expiringCount, 1);
  store.apply({ kind: "set", key: "k", value: "w", expiresAtMs: null });
  assert.equal(store.expiringCount, 0);
  assert.deepEqual(store.get("k", 5000), { value: "w", expiresAtMs: null });
});

Deno.test("expireAt applies only to a present key", () => {
  const store = new Store();
  assert.equal(store.apply({ kind: "expireAt", key: "missing", expiresAtMs: 10 }), false);
  assert.equal(store.size, 0);
  store.apply({ kind: "set", key: "k", value: "v", expiresAtMs: null });
  assert.equal(store.apply({ kind: "expireAt", key: "k", expiresAtMs: 10 }), true);
  assert.equal(store.peek("k")?.expiresAtMs, 10);
  assert.equal(store.expiringCount, 1);
});

Deno.test("delete reports whether the key was present and forgets its deadline", () => {
  const store = new Store();
  store.apply({ kind: "set", key: "k", value: "v", expiresAtMs: 10 });
  assert.equal(store.apply({ kind: "delete", key: "k" }), true);
  assert.equal(store.apply({ kind: "delete", key: "k" }), false);
  assert.equal(store.size, 0);
  assert.equal(store.expiringCount, 0);
  assert.equal(store.datasetBytes, 0);
});

Deno.test("applying the same commands twice gives the same dataset (idempotence)", () => {
  const commands = [
    { kind: "set", key: "a", value: "1", expiresAtMs: null },
    { kind: "set", key: "b", value: "2", expiresAtMs: null },
    { kind: "expireAt", key: "a", expiresAtMs: 500 },
    { kind: "delete", key: "b" },
    { kind: "set", key: "c", value: "3", expiresAtMs: 900 },
  ] as const;
  const once = new Store();
  const twice = new Store();
  for (const command of commands) once.apply(command);
  for (const command of [...commands, ...commands]) twice.apply(command);
  assert.deepEqual([...twice.entries()], [...once.entries()]);
});

Deno.test("dataset bytes track keys and values as they change", () => {
  const store = new Store();
  store.apply({ kind: "set", key: "key", value: "x".repeat(100), expiresAtMs: null });
  const withLongValue = store.datasetBytes;
  store.apply({ kind: "set", key: "key", value: "x", expiresAtMs: null });
  assert.equal(withLongValue - store.datasetBytes, 99);
  store.apply({ kind: "delete", key: "key" });
  assert.equal(store.datasetBytes, 0);
});

Deno.test("sampleExpiring draws only keys that carry a deadline", () => {
  const store = new Store();
  store.apply({ kind: "set", key: "plain", value: "v", expiresAtMs: null });
  store.apply({ kind: "set", key: "ttl", value: "v", expiresAtMs: 5 });
  assert.deepEqual(store.sampleExpiring(3, () => 0.99), ["ttl", "ttl", "ttl"]);
  store.apply({ kind: "delete", key: "ttl" });
  assert.deepEqual(store.sampleExpiring(3, Math.random), []);
});

Deno.test("isExpired treats a null deadline as never", () => {
  assert.equal(isExpired({ value: "", expiresAtMs: null }, Number.MAX_SAFE_INTEGER), false);
  assert.equal(isExpired({ value: "", expiresAtMs: 5 }, 4), false);
  assert.equal(isExpired({ value: "", expiresAtMs: 5 }, 5), true);
});

Deno.test("replaceContents takes over another store's entries and leaves it empty", () => {
  const live = new Store();
  live.apply({ kind: "set", key: "old", value: "v", expiresAtMs: null });
  const loaded = new Store();
  loaded.apply({ kind: "set", key: "new", value: "v", expiresAtMs: 50 });
  const bytes = loaded.datasetBytes;
  live.replaceContents(loaded);
  assert.equal(live.peek("old"), undefined);
  assert.deepEqual(live.peek("new"), { value: "v", expiresAtMs: 50 });
  assert.equal(live.expiringCount, 1);
  assert.equal(live.datasetBytes, bytes);
  assert.equal(loaded.size, 0);
  assert.equal(loaded.datasetBytes, 0);
  loaded.apply({ kind: "set", key: "later", value: "v", expiresAtMs: null });
  assert.equal(live.peek("later"), undefined, "the two stores no longer share entries");
});
