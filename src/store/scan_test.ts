import assert from "node:assert/strict";
import { KvError } from "../errors.ts";
import { ScanCursors, scanEntryBytes, scanPageBytesMax } from "./scan.ts";
import { Store } from "./store.ts";

const LIMITS = { cursorsMax: 4, idleMs: 1000, examinedPerReturnedMax: 10 };

function storeWith(count: number, prefix = "k"): Store {
  const store = new Store();
  for (let i = 0; i < count; i++) store.apply({ kind: "set", key: `${prefix}${i}`, value: `v${i}`, expiresAtMs: null });
  return store;
}

function scanAll(cursors: ScanCursors, store: Store, prefix = "", limit = 7, between?: () => void): string[] {
  const keys: string[] = [];
  let cursor = "";
  for (let pages = 0; pages < 10_000; pages++) {
    const page = cursors.page(store, cursor, prefix, limit, 0);
    keys.push(...page.entries.map(([key]) => key));
    cursor = page.cursor;
    if (cursor === "") return keys;
    between?.();
  }
  throw new Error("the scan did not finish");
}

Deno.test("a scan returns every key once, in pages", () => {
  const store = storeWith(100);
  const keys = scanAll(new ScanCursors(LIMITS, "t"), store);
  assert.equal(keys.length, 100);
  assert.equal(new Set(keys).size, 100);
});

Deno.test("keys present for the whole scan are returned even while others change", () => {
  const store = storeWith(200);
  let added = 0;
  const keys = scanAll(new ScanCursors(LIMITS, "t"), store, "", 7, () => {
    store.apply({ kind: "delete", key: `k${199 - added}` });
    store.apply({ kind: "set", key: `new${added++}`, value: "v", expiresAtMs: null });
  });
  const returned = new Set(keys);
  assert.equal(returned.size, keys.length, "no key twice");
  for (let i = 0; i < 200 - added; i++) assert.ok(returned.has(`k${i}`), `k${i} was present throughout`);
});

Deno.test("a prefix scan skips other keys and bounds the work of one page", () => {
  const store = storeWith(1000, "other:");
  for (let i = 0; i < 5; i++) store.apply({ kind: "set", key: `user:${i}`, value: "v", expiresAtMs: null });
  const cursors = new ScanCursors(LIMITS, "t");
  const first = cursors.page(store, "", "user:", 10, 0);
  assert.equal(first.entries.length, 0, "100 keys examined, none matched");
  assert.notEqual(first.cursor, "");
  assert.deepEqual(scanAll(cursors, store, "user:", 10).sort(), ["user:0", "user:1", "user:2", "user:3", "user:4"]);
});

Deno.test("expired keys are not returned", () => {
  const store = storeWith(3);
  store.apply({ kind: "expireAt", key: "k1", expiresAtMs: 0 });
  assert.deepEqual(scanAll(new ScanCursors(LIMITS, "t"), store), ["k0", "k2"]);
});

Deno.test("unknown, expired and evicted cursors are refused with advice", () => {
  const store = storeWith(100);
  const cursors = new ScanCursors(LIMITS, "t");
  assert.throws(() => cursors.page(store, "bogus", "", 10, 0), (error: unknown) => {
    assert.ok(error instanceof KvError);
    assert.equal(error.code, "INVALID_ARGUMENT");
    assert.match(error.message, /start again with an empty cursor/);
    return true;
  });
  const idle = cursors.page(store, "", "", 10, 0).cursor;
  assert.throws(() => cursors.page(store, idle, "", 10, 1000), /unknown or expired/);

  const opened = Array.from({ length: 5 }, () => cursors.page(store, "", "", 10, 2000).cursor);
  assert.equal(cursors.openCount, 4);
  assert.throws(() => cursors.page(store, opened[0], "", 10, 2000), /unknown or expired/);
  assert.equal(cursors.page(store, opened[4], "", 10, 2000).entries.length, 10);
  assert.throws(() => cursors.page(store, opened[4], "x", 10, 2000), /belongs to a scan of prefix ""/);
});

Deno.test("a scan whose dataset was replaced under it (a replica's full resync) is refused, not continued", () => {
  const store = storeWith(100);
  const cursors = new ScanCursors(LIMITS, "t");
  const first = cursors.page(store, "", "", 10, 0);
  store.replaceContents(storeWith(100, "new"));
  store.apply({ kind: "set", key: "k50", value: "written after the resync", expiresAtMs: null });
  assert.throws(() => cursors.page(store, first.cursor, "", 10, 0), (error: unknown) => {
    assert.ok(error instanceof KvError);
    assert.equal(error.code, "INVALID_ARGUMENT");
    assert.match(error.message, /dataset was replaced .*; start again with an empty cursor/);
    return true;
  });
  assert.equal(cursors.openCount, 0, "the cursor, and the old dataset it held, are let go");
  const keys = scanAll(cursors, store);
  assert.equal(keys.length, 101);
  assert.ok(keys.includes("new0") && keys.includes("k50"));
});

Deno.test("abandoned cursors are pruned without another scan: idle ones, and at once those over a replaced dataset", () => {
  const store = storeWith(100);
  const cursors = new ScanCursors(LIMITS, "t");
  cursors.page(store, "", "", 10, 0);
  cursors.page(store, "", "", 10, 500);
  assert.equal(cursors.prune(store, 999), 0, "neither is idle for 1000 ms yet");
  assert.equal(cursors.prune(store, 1000), 1, "the first is");
  assert.equal(cursors.openCount, 1);

  // Each cursor's iterator holds the whole map it walks: one left over from before a
  // replacement would keep the old dataset in memory while it stays open.
  const fresh = cursors.page(store, "", "", 10, 1000).cursor;
  store.replaceContents(storeWith(100, "new"));
  const afterReplace = cursors.page(store, "", "", 10, 1000).cursor;
  assert.equal(cursors.prune(store, 1000), 2, "both cursors over the old dataset go, however fresh");
  assert.equal(cursors.page(store, afterReplace, "", 10, 1000).entries.length, 10, "the new scan goes on");
  assert.throws(() => cursors.page(store, fresh, "", 10, 1000), /unknown or expired/);

  const beforeClear = cursors.page(store, "", "", 10, 1000).cursor;
  store.clear();
  assert.equal(cursors.prune(store, 1000), 2);
  assert.throws(() => cursors.page(store, beforeClear, "", 10, 1000), /unknown or expired/);
  assert.equal(cursors.openCount, 0);
});

Deno.test("a page stops before its bytes pass the bound, and the next page begins with the entry that did not fit", () => {
  const store = new Store();
  const sizes = [290, 290, 290, 2000, 10, 10, 600, 600];
  sizes.forEach((size, i) => store.apply({ kind: "set", key: `k${i}`, value: "x".repeat(size), expiresAtMs: null }));
  const cursors = new ScanCursors(LIMITS, "t");
  const bounds = { bytesMax: 1000, withValues: true };
  const pages: string[][] = [];
  let cursor = "";
  do {
    const page = cursors.page(store, cursor, "", 100, 0, bounds);
    pages.push(page.entries.map(([key]) => key));
    const bytes = page.entries.reduce((sum, [key, entry]) => sum + scanEntryBytes(key, entry.value, true), 0);
    assert.ok(page.entries.length === 1 || bytes <= 1000, `page of ${bytes} bytes`);
    cursor = page.cursor;
    if (pages.length === 2) store.apply({ kind: "delete", key: "k4" });
  } while (cursor !== "");
  assert.deepEqual(pages, [["k0", "k1", "k2"], ["k3"], ["k5", "k6"], ["k7"]], "k3 is alone; k4 was deleted");

  // Without values, only the keys count: everything fits in one page.
  const keysOnly = cursors.page(store, "", "", 100, 0, { bytesMax: 1000, withValues: false });
  assert.equal(keysOnly.entries.length, 7);
  assert.equal(keysOnly.cursor, "");
});

Deno.test("the page byte bound stays within the message limit a node's key and value limits make", () => {
  assert.equal(scanPageBytesMax({ keyBytesMax: 64 * 1024, valueBytesMax: 16 * 1024 * 1024 }), 4 * 1024 * 1024);
  assert.equal(scanPageBytesMax({ keyBytesMax: 1024, valueBytesMax: 64 * 1024 }), 65 * 1024);
});
