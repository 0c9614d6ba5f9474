import assert from "node:assert/strict";
import { type MasterPosition, planSync } from "./sync_plan.ts";

const A = "a".repeat(40);
const B = "b".repeat(40);
const C = "c".repeat(40);

const master: MasterPosition = {
  replid: A,
  seq: 100,
  previousReplid: null,
  previousLastSeq: 0,
  backlogFirstSeq: 51,
};

Deno.test("a replica of the same history inside the backlog gets a partialSync from its seq", () => {
  assert.deepEqual(planSync(master, { replid: A, seq: 70 }), { kind: "partialSync", afterSeq: 70 });
  assert.deepEqual(planSync(master, { replid: A, seq: 50 }), { kind: "partialSync", afterSeq: 50 });
  assert.deepEqual(planSync(master, { replid: A, seq: 100 }), { kind: "partialSync", afterSeq: 100 });
});

Deno.test("a replica whose next command left the backlog needs a fullSync", () => {
  const plan = planSync(master, { replid: A, seq: 49 });
  assert.equal(plan.kind, "fullSync");
  assert.match(plan.kind === "fullSync" ? plan.reason : "", /backlog starts at seq 51/);
});

Deno.test("a replica of another history needs a fullSync", () => {
  const plan = planSync(master, { replid: B, seq: 100 });
  assert.deepEqual(plan, {
    kind: "fullSync",
    reason: "the replica holds history bbbbbbbbbbbb, which this master does not continue",
    dropped: 0,
  });
  assert.equal(planSync(master, { replid: "", seq: 0 }).kind, "fullSync");
});

Deno.test("a replica ahead of its master's history needs a fullSync that drops what it has beyond it", () => {
  assert.deepEqual(planSync(master, { replid: A, seq: 103 }), {
    kind: "fullSync",
    reason: "the replica is ahead of the master's history at seq 100 (it holds seq 103)",
    dropped: 3,
  });
});

Deno.test("a replica of the history a promoted master continued from resyncs partially up to where it ended", () => {
  const promoted: MasterPosition = { ...master, replid: C, previousReplid: A, previousLastSeq: 90, seq: 100 };
  assert.deepEqual(planSync(promoted, { replid: A, seq: 90 }), { kind: "partialSync", afterSeq: 90 });
  assert.deepEqual(planSync(promoted, { replid: A, seq: 60 }), { kind: "partialSync", afterSeq: 60 });
  assert.deepEqual(planSync(promoted, { replid: C, seq: 95 }), { kind: "partialSync", afterSeq: 95 });
  const ahead = planSync(promoted, { replid: A, seq: 95 });
  assert.equal(ahead.kind, "fullSync");
  assert.equal(ahead.kind === "fullSync" ? ahead.dropped : -1, 5, "seqs 91-95 of the old master were never promoted");
});

Deno.test("a former master whose history continued one this master holds resyncs from where they parted", () => {
  // It was the master of history A, restarted (or was promoted) at seq 90 as history B,
  // and is now made a replica of a master that holds A up to 100.
  const formerMaster = { replid: B, previousReplid: A, previousLastSeq: 90 };
  assert.deepEqual(planSync(master, { ...formerMaster, seq: 90 }), { kind: "partialSync", afterSeq: 90 });
  assert.deepEqual(planSync(master, { ...formerMaster, seq: 94 }), {
    kind: "fullSync",
    reason: "the replica's history bbbbbbbbbbbb left the master's at seq 90, and it holds seq 94",
    dropped: 4,
  });
  // It continued A from seq 120, past what this master holds of A (100): 20 + 5 dropped.
  const ahead = planSync(master, { replid: B, previousReplid: A, previousLastSeq: 120, seq: 125 });
  assert.equal(ahead.kind === "fullSync" ? ahead.dropped : -1, 25);
  // A history this master neither holds nor continued tells nothing.
  assert.equal(planSync(master, { replid: B, previousReplid: C, previousLastSeq: 90, seq: 90 }).kind, "fullSync");
  // Two nodes promoted from the same history A at seq 90: the one made a replica wrote 3.
  const promoted: MasterPosition = { ...master, replid: C, previousReplid: A, previousLastSeq: 90, seq: 100 };
  const other = planSync(promoted, { replid: B, previousReplid: A, previousLastSeq: 90, seq: 93 });
  assert.equal(other.kind === "fullSync" ? other.dropped : -1, 3);
});
