import assert from "node:assert/strict";
import { silentLogger } from "../logging/logger.ts";
import { seededRandom, SimStorage } from "../persistence/sim_storage.ts";
import { openPersistence } from "../persistence/test_support.ts";
import { WritePipeline } from "../server/write_pipeline.ts";
import type { ReplicationCommand } from "../transport/messages.ts";
import { PushReceiver } from "./push_receiver.ts";
import { FOREIGN_REPLID, ReplicaApplier } from "./replica_applier.ts";

/** A replica on a simulated disk that holds a history of its own (3 commands), and a
 * receiver of pushes for it. Its clock jumps 10 s at every reading, so a push that waits
 * for missing ones gives up at once. */
async function replicaOnSimDisk() {
  const storage = new SimStorage({ random: seededRandom(4) });
  const opened = await openPersistence(storage);
  const { persistence, staging } = opened;
  const pipeline = new WritePipeline(staging, persistence.log, silentLogger());
  const applier = new ReplicaApplier(staging, persistence.replid);
  for (const key of ["a", "b", "c"]) {
    const verdict = applier.offer(persistence.replid, staging.lastSeq + 1, {
      kind: "set",
      key,
      value: "own",
      expiresAtMs: null,
    });
    assert.equal(verdict.kind, "applied");
    if (verdict.kind === "applied") await pipeline.commit(verdict.staged);
  }
  let nowMs = 1_764_000_000_000;
  const receiver = new PushReceiver({
    nodeId: "replica",
    applier,
    pipeline,
    persistence,
    mayFollowForeignMaster: () => true,
    onDatasetReplaced: () => {},
    logger: silentLogger(),
    clock: () => (nowMs += 10_000),
  });
  pipeline.onCommit(() => receiver.notify());
  return { storage, persistence, staging, applier, receiver };
}

/** A push from a master that names no history (the C++ store). */
function foreignPush(id: number, key: string): ReplicationCommand {
  return { type: "SET", key, value: `v${id}`, seconds: 0, sequence_id: String(id) };
}

Deno.test("a foreign master is adopted afresh when the files could not record the first adoption", async () => {
  const { storage, persistence, staging, applier, receiver } = await replicaOnSimDisk();
  storage.failSyncs = true;
  await assert.rejects(receiver.receive(foreignPush(0, "x")), /Cannot replace the data files/);
  assert.notEqual(applier.replid, FOREIGN_REPLID, "the replica does not claim a history its files lack");
  storage.failSyncs = false;

  const answer = await receiver.receive(foreignPush(1, "y"));
  assert.equal(answer.success, true, answer.detail ?? "");
  assert.equal(answer.last_applied_sequence, "1");
  assert.equal(applier.replid, FOREIGN_REPLID);
  assert.equal(persistence.replid, FOREIGN_REPLID, "the files follow the foreign master too");
  assert.equal(persistence.log.lastSeq, staging.committedSeq, "the log holds what was applied");
  assert.deepEqual([...staging.store.entries()].map(([key]) => key), ["y"]);
});

Deno.test("a skip over missing foreign ids happens only once the files can record it", async () => {
  const { storage, persistence, staging, applier, receiver } = await replicaOnSimDisk();
  assert.equal((await receiver.receive(foreignPush(0, "x"))).success, true);
  storage.failSyncs = true;
  await assert.rejects(receiver.receive(foreignPush(3, "z")), /Cannot replace the data files/);
  assert.equal(staging.committedSeq, 1, "nothing was skipped");
  assert.equal(persistence.log.lastSeq, 1);
  storage.failSyncs = false;

  const answer = await receiver.receive(foreignPush(3, "z"));
  assert.equal(answer.success, true, answer.detail ?? "");
  assert.equal(answer.last_applied_sequence, "3");
  assert.equal(applier.replid, FOREIGN_REPLID);
  assert.equal(persistence.log.lastSeq, staging.committedSeq, "the log holds what was applied");
  assert.deepEqual([...staging.store.entries()].map(([key]) => key).sort(), ["x", "z"]);
});

Deno.test("pushes that skip missing foreign ids at once leave the files and the staging at one seq", async () => {
  const { persistence, staging, receiver } = await replicaOnSimDisk();
  assert.equal((await receiver.receive(foreignPush(0, "x"))).success, true);
  // Both wait for the ids before theirs, give up together and skip: a far one, then a
  // near one whose skip (to seq 100) must not undo the far one's (to 4102444800000).
  const answers = await Promise.allSettled([
    receiver.receive(foreignPush(4_102_444_800_000, "far")),
    receiver.receive(foreignPush(100, "near")),
  ]);
  for (const answer of answers) {
    assert.equal(answer.status, "fulfilled", String((answer as PromiseRejectedResult).reason));
  }
  assert.equal(persistence.log.lastSeq, staging.committedSeq, "the log holds what was applied");
  assert.equal(staging.lastSeq, staging.committedSeq);
  const next = await receiver.receive(foreignPush(4_102_444_800_001, "next"));
  assert.equal(next.success, true, next.detail ?? "");
  assert.equal(persistence.log.lastSeq, staging.committedSeq, "and takes the next push");
});
