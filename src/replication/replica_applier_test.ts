import assert from "node:assert/strict";
import type { WriteCommand } from "../store/command.ts";
import { WriteStaging } from "../store/staging.ts";
import { Store } from "../store/store.ts";
import { FOREIGN_REPLID, foreignIdToSeq, ReplicaApplier, seqToForeignId } from "./replica_applier.ts";

const A = "a".repeat(40);
const B = "b".repeat(40);

function set(key: string, value: string): WriteCommand {
  return { kind: "set", key, value, expiresAtMs: null };
}

/** Commits everything staged, as the write pipeline does once the log holds it. */
function commitAll(staging: WriteStaging): void {
  staging.commit(staging.takeBatch());
}

function applierAt(seq: number, replid = A) {
  const staging = new WriteStaging(new Store(), seq);
  return { applier: new ReplicaApplier(staging, replid), staging };
}

Deno.test("commands are applied in seq order, each once", () => {
  const { applier, staging } = applierAt(0);
  assert.equal(applier.offer(A, 1, set("k", "1")).kind, "applied");
  assert.equal(applier.offer(A, 2, set("k", "2")).kind, "applied");
  assert.equal(applier.offer(A, 2, set("k", "2")).kind, "duplicate", "a duplicate staged but not yet committed");
  commitAll(staging);
  assert.equal(applier.offer(A, 1, set("k", "1")).kind, "duplicate", "a duplicate already committed");
  assert.equal(staging.store.peek("k")?.value, "2");
  assert.equal(staging.committedSeq, 2);
});

Deno.test("a gap is refused with the last seq held, and nothing is staged", () => {
  const { applier, staging } = applierAt(5);
  assert.deepEqual(applier.offer(A, 7, set("k", "7")), { kind: "gap", lastSeq: 5 });
  assert.equal(staging.pendingCount, 0);
  assert.equal(applier.offer(A, 6, set("k", "6")).kind, "applied");
  assert.equal(applier.offer(A, 7, set("k", "7")).kind, "applied");
});

Deno.test("a command of another history is refused", () => {
  const { applier } = applierAt(5);
  assert.deepEqual(applier.offer(B, 6, set("k", "v")), { kind: "otherHistory", replid: A });
});

Deno.test("a fullSync loads beside the live data and switches to it at the snapshot's seq", () => {
  const { applier, staging } = applierAt(0);
  applier.offer(A, 1, set("old", "v"));
  commitAll(staging);
  const loading = applier.beginFullSync(B, 500);
  loading.apply(set("new", "v"));
  assert.equal(staging.store.peek("old")?.value, "v", "reads see the old data while loading");
  assert.equal(applier.offer(A, 2, set("x", "v")).kind, "loading", "commands wait for the fullSync");
  assert.deepEqual(applier.finishFullSync(), { replid: B, seq: 500 });
  assert.equal(staging.store.peek("old"), undefined);
  assert.equal(staging.store.peek("new")?.value, "v");
  assert.equal(applier.replid, B);
  assert.equal(staging.committedSeq, 500);
  assert.equal(applier.offer(B, 500, set("x", "v")).kind, "duplicate");
  assert.equal(applier.offer(B, 501, set("x", "v")).kind, "applied");
});

Deno.test("an abandoned fullSync leaves the replica as it was", () => {
  const { applier, staging } = applierAt(3);
  applier.beginFullSync(B, 500).apply(set("new", "v"));
  applier.abortFullSync();
  assert.equal(applier.replid, A);
  assert.equal(staging.lastSeq, 3);
  assert.equal(applier.offer(A, 4, set("k", "v")).kind, "applied");
});

Deno.test("a fullSync cannot switch while commands are pending on the staging", () => {
  const { applier } = applierAt(0);
  applier.offer(A, 1, set("k", "v"));
  applier.beginFullSync(B, 10);
  assert.throws(() => applier.finishFullSync(), /Cannot reset seq/);
});

Deno.test("a renamed history continues with the same seqs", () => {
  const { applier } = applierAt(8);
  applier.renameHistory(B);
  assert.equal(applier.offer(B, 9, set("k", "v")).kind, "applied");
  assert.equal(applier.offer(A, 10, set("k", "v")).kind, "otherHistory");
});

Deno.test("a foreign master's ids from 0 map to our seqs from 1, and adopting its history empties the data", () => {
  const { applier, staging } = applierAt(4);
  applier.offer(A, 5, set("mine", "v"));
  commitAll(staging);
  assert.equal(foreignIdToSeq(0), 1);
  assert.equal(seqToForeignId(1), 0);
  assert.equal(seqToForeignId(0), -1, "nothing applied yet");
  assert.equal(applier.adoptForeignHistory(0), 1, "one key dropped");
  assert.equal(applier.replid, FOREIGN_REPLID);
  assert.equal(staging.store.size, 0);
  assert.equal(applier.offer(FOREIGN_REPLID, foreignIdToSeq(0), set("k", "0")).kind, "applied");
  assert.equal(applier.offer(FOREIGN_REPLID, foreignIdToSeq(1), set("k", "1")).kind, "applied");
  assert.equal(seqToForeignId(applier.lastSeq), 1);
});

Deno.test("a foreign history can be joined mid-stream and a gap in it skipped", () => {
  const { applier, staging } = applierAt(0);
  applier.adoptForeignHistory(41);
  assert.equal(applier.offer(FOREIGN_REPLID, foreignIdToSeq(41), set("k", "41")).kind, "applied");
  commitAll(staging);
  assert.equal(applier.offer(FOREIGN_REPLID, foreignIdToSeq(45), set("k", "45")).kind, "gap");
  assert.equal(applier.skipTo(foreignIdToSeq(45)), 3, "ids 42, 43 and 44 are skipped");
  assert.equal(applier.offer(FOREIGN_REPLID, foreignIdToSeq(45), set("k", "45")).kind, "applied");
});

Deno.test("a suspended applier refuses commands until resumed", () => {
  const { applier } = applierAt(0);
  applier.suspend();
  assert.equal(applier.offer(A, 1, set("k", "v")).kind, "loading");
  applier.resume();
  assert.equal(applier.offer(A, 1, set("k", "v")).kind, "applied");
});
