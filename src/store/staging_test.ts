import assert from "node:assert/strict";
import { Store } from "./store.ts";
import { stagedCommandBytes, WriteStaging } from "./staging.ts";

function commitAll(staging: WriteStaging): void {
  staging.commit(staging.takeBatch());
}

Deno.test("staged writes are invisible to the store until committed", () => {
  const staging = new WriteStaging(new Store());
  const staged = staging.set("k", "v", null);
  assert.equal(staged.seq, 1);
  assert.equal(staging.store.get("k", 0), undefined);
  assert.equal(staging.view("k", 0)?.value, "v");
  commitAll(staging);
  assert.equal(staging.store.get("k", 0)?.value, "v");
  assert.equal(staging.committedSeq, 1);
});

Deno.test("decisions see earlier staged writes: SET then EXPIRE in one batch finds the key", () => {
  const staging = new WriteStaging(new Store());
  staging.set("k", "v", null);
  const expire = staging.expire("k", 10, 1000);
  assert.equal(expire.applied, true);
  assert.deepEqual(expire.staged?.command, { kind: "expireAt", key: "k", expiresAtMs: 11_000 });
  commitAll(staging);
  assert.equal(staging.store.peek("k")?.expiresAtMs, 11_000);
});

Deno.test("EXPIRE follows Redis: missing key fails, seconds <= 0 deletes", () => {
  const staging = new WriteStaging(new Store());
  assert.deepEqual(staging.expire("missing", 10, 0), { applied: false, staged: null });
  staging.set("k", "v", null);
  const zero = staging.expire("k", 0, 0);
  assert.equal(zero.applied, true);
  assert.deepEqual(zero.staged?.command, { kind: "delete", key: "k" });
  staging.set("n", "v", null);
  assert.deepEqual(staging.expire("n", -5, 0).staged?.command, { kind: "delete", key: "n" });
  commitAll(staging);
  assert.equal(staging.store.size, 0);
});

Deno.test("DEL of a missing key stages nothing and consumes no seq", () => {
  const staging = new WriteStaging(new Store());
  assert.deepEqual(staging.delete("missing", 0), { applied: false, staged: null });
  assert.equal(staging.lastSeq, 0);
});

Deno.test("a key past its deadline counts as missing but its removal is staged", () => {
  const store = new Store();
  store.apply({ kind: "set", key: "k", value: "v", expiresAtMs: 100 });
  const staging = new WriteStaging(store, 7);
  const decision = staging.delete("k", 200);
  assert.equal(decision.applied, false);
  assert.deepEqual(decision.staged, { seq: 8, command: { kind: "delete", key: "k" } });
  assert.equal(staging.expire("k", 10, 200).staged, null, "the removal is already pending");
});

Deno.test("expireDue leaves a key alone while a write to it is pending", () => {
  const store = new Store();
  store.apply({ kind: "set", key: "k", value: "old", expiresAtMs: 100 });
  const staging = new WriteStaging(store);
  staging.set("k", "new", null);
  assert.equal(staging.expireDue("k", 200), null);
  commitAll(staging);
  assert.equal(staging.store.get("k", 200)?.value, "new");
  assert.equal(staging.expireDue("k", 200), null, "the new value has no deadline");
});

Deno.test("seqs are consecutive across batches", () => {
  const staging = new WriteStaging(new Store(), 41);
  const first = staging.takeBatch.call(staging);
  assert.deepEqual(first, []);
  staging.commit(first);
  staging.set("a", "1", null);
  staging.set("b", "2", null);
  const batch = staging.takeBatch();
  staging.set("c", "3", null);
  assert.deepEqual(batch.map((staged) => staged.seq), [42, 43]);
  staging.commit(batch);
  assert.equal(staging.committedSeq, 43);
  assert.equal(staging.lastSeq, 44);
  commitAll(staging);
  assert.equal(staging.committedSeq, 44);
});

Deno.test("abort drops taken and queued commands and rewinds seq", () => {
  const staging = new WriteStaging(new Store());
  staging.set("kept", "1", null);
  commitAll(staging);
  staging.set("a", "2", null);
  staging.takeBatch();
  staging.set("b", "3", null);
  const dropped = staging.abort();
  assert.deepEqual(dropped.map((staged) => staged.seq), [2, 3]);
  assert.equal(staging.lastSeq, 1);
  assert.equal(staging.pendingCount, 0);
  assert.equal(staging.view("a", 0), undefined, "the overlay forgets dropped writes");
  assert.equal(staging.set("c", "4", null).seq, 2);
});

Deno.test("only one batch may be in flight, and only the taken batch commits", () => {
  const staging = new WriteStaging(new Store());
  staging.set("a", "1", null);
  const batch = staging.takeBatch();
  assert.throws(() => staging.takeBatch(), /in flight/);
  assert.throws(() => staging.commit([...batch]), /not taken/);
  staging.commit(batch);
});

Deno.test("stageWithSeq accepts only the next seq", () => {
  const staging = new WriteStaging(new Store(), 10);
  assert.throws(() => staging.stageWithSeq(12, { kind: "delete", key: "k" }), /next seq is 11/);
  assert.equal(staging.stageWithSeq(11, { kind: "delete", key: "k" }).seq, 11);
});

Deno.test("isQueued knows a queued command from one taken, committed, or dropped and its seq reused", () => {
  const staging = new WriteStaging(new Store());
  const first = staging.set("a", "1", null);
  const second = staging.set("b", "2", null);
  assert.equal(staging.isQueued(first), true);
  assert.equal(staging.isQueued(second), true);
  const batch = staging.takeBatch();
  const third = staging.set("c", "3", null);
  assert.equal(staging.isQueued(first), false, "taken");
  assert.equal(staging.isQueued(third), true);
  staging.commit(batch);
  assert.equal(staging.isQueued(second), false, "committed");
  staging.abort();
  const reused = staging.set("d", "4", null);
  assert.equal(reused.seq, third.seq);
  assert.equal(staging.isQueued(third), false, "dropped, though another command now has its seq");
  assert.equal(staging.isQueued(reused), true);
});

Deno.test("pendingBytes counts what waits for the log, through commit and abort", () => {
  const staging = new WriteStaging(new Store());
  assert.equal(staging.pendingBytes, 0);
  staging.set("k", "x".repeat(100), null);
  staging.delete("k", 0);
  const bytes = staging.pendingBytes;
  assert.equal(
    bytes,
    stagedCommandBytes({ kind: "set", key: "k", value: "x".repeat(100), expiresAtMs: null }) +
      stagedCommandBytes({ kind: "delete", key: "k" }),
  );
  assert.ok(bytes > 100);
  const batch = staging.takeBatch();
  staging.set("j", "y", null);
  assert.ok(staging.pendingBytes > bytes, "a taken batch still counts, with what queues behind it");
  staging.commit(batch);
  assert.equal(staging.pendingBytes, stagedCommandBytes({ kind: "set", key: "j", value: "y", expiresAtMs: null }));
  staging.takeBatch();
  staging.abort();
  assert.equal(staging.pendingBytes, 0);
});
