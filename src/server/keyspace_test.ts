import assert from "node:assert/strict";
import { KvError } from "../errors.ts";
import { silentLogger } from "../logging/logger.ts";
import type { CommitLog } from "../persistence/commit_log.ts";
import { VolatileLog } from "../persistence/commit_log.ts";
import type { SequencedCommand } from "../store/command.ts";
import { Store } from "../store/store.ts";
import { WriteStaging } from "../store/staging.ts";
import { Keyspace } from "./keyspace.ts";
import { WritePipeline } from "./write_pipeline.ts";

const LIMITS = { keyBytesMax: 64, valueBytesMax: 64, ttlSecondsMax: 1000 };

function keyspaceWith(
  log: CommitLog,
  role: "master" | "replica" = "master",
  clock = { nowMs: 1_000_000 },
) {
  const pipeline = new WritePipeline(new WriteStaging(new Store()), log, silentLogger());
  const keyspace = new Keyspace(pipeline, {
    role,
    masterAddress: role === "replica" ? "master.example:50051" : null,
    limits: LIMITS,
    sweepLimits: { sampleKeys: 20, repeatRatio: 0.25, keysMax: 1000 },
    clock: () => clock.nowMs,
    random: Math.random,
  });
  return { keyspace, pipeline, clock };
}

/** A log that records batches and fsyncs, and can be told to fail or to hold appends. */
class RecordingLog implements CommitLog {
  batches: SequencedCommand[][] = [];
  failWith: KvError | null = null;
  /** While set, appends wait for it. */
  hold: Promise<void> | null = null;
  /** The number of batches appended when each sync was asked for. */
  syncs: number[] = [];
  async append(batch: readonly SequencedCommand[]): Promise<void> {
    if (this.hold !== null) await this.hold;
    if (this.failWith !== null) throw this.failWith;
    this.batches.push([...batch]);
  }
  sync(): Promise<void> {
    this.syncs.push(this.batches.length);
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

Deno.test("writes are answered after the log holds them, and reads see them", async () => {
  const log = new RecordingLog();
  const { keyspace } = keyspaceWith(log);
  await keyspace.set("k", "v");
  assert.equal(log.batches.flat().length, 1);
  assert.equal(keyspace.get("k")?.value, "v");
  assert.equal(await keyspace.expire("k", 10), true);
  assert.equal(keyspace.ttlSeconds("k"), 10);
  assert.equal(await keyspace.delete("k"), true);
  assert.equal(keyspace.contains("k"), false);
  assert.equal(keyspace.ttlSeconds("k"), -2);
});

Deno.test("writes made in the same turn share one log append (group commit)", async () => {
  const log = new RecordingLog();
  const { keyspace } = keyspaceWith(log);
  await Promise.all(Array.from({ length: 50 }, (_, i) => keyspace.set(`k${i}`, "v")));
  assert.equal(log.batches.length, 1);
  assert.deepEqual(log.batches[0].map((staged) => staged.seq), Array.from({ length: 50 }, (_, i) => i + 1));
});

Deno.test("when the log fails, the write fails and memory does not run ahead of the log", async () => {
  const log = new RecordingLog();
  const { keyspace, pipeline } = keyspaceWith(log);
  await keyspace.set("kept", "1");
  log.failWith = new KvError("RESOURCE_EXHAUSTED", "log: Cannot append: no space left on device");
  await assert.rejects(keyspace.set("lost", "2"), /no space left/);
  assert.equal(keyspace.get("lost"), undefined);
  assert.equal(pipeline.staging.lastSeq, 1);
  log.failWith = null;
  await keyspace.set("after", "3");
  assert.deepEqual(log.batches.flat().map((staged) => [staged.seq, staged.command.key]), [[1, "kept"], [2, "after"]]);
});

Deno.test("TTL rounds to the nearest second like Redis; -1 for no deadline", async () => {
  const { keyspace, clock } = keyspaceWith(new VolatileLog());
  await keyspace.set("k", "v");
  assert.equal(keyspace.ttlSeconds("k"), -1);
  await keyspace.expire("k", 10);
  clock.nowMs += 9_400;
  assert.equal(keyspace.ttlSeconds("k"), 1);
  clock.nowMs += 200;
  assert.equal(keyspace.ttlSeconds("k"), 0);
  clock.nowMs += 400;
  assert.equal(keyspace.ttlSeconds("k"), -2);
});

Deno.test("a master removes a key it finds expired on read, through the log", async () => {
  const log = new RecordingLog();
  const { keyspace, pipeline, clock } = keyspaceWith(log);
  await keyspace.set("k", "v");
  await keyspace.expire("k", 1);
  clock.nowMs += 1_000;
  assert.equal(keyspace.get("k"), undefined);
  await pipeline.drain();
  assert.equal(pipeline.staging.store.size, 0);
  assert.deepEqual(log.batches.flat().at(-1)?.command, { kind: "delete", key: "k" });
  assert.equal(keyspace.expiredKeys, 1);
});

Deno.test("the sweep reclaims expired keys nobody reads", async () => {
  const { keyspace, pipeline, clock } = keyspaceWith(new VolatileLog());
  for (let i = 0; i < 100; i++) {
    await keyspace.set(`k${i}`, "v");
    await keyspace.expire(`k${i}`, 1);
  }
  await keyspace.set("forever", "v");
  clock.nowMs += 2_000;
  for (let tick = 0; tick < 100 && pipeline.staging.store.size > 1; tick++) {
    keyspace.sweepExpired();
    await pipeline.drain();
  }
  assert.equal(pipeline.staging.store.size, 1);
  assert.equal(keyspace.expiredKeys, 100);
});

Deno.test("expired_keys counts a key once, when its deletion is in the log, however often a failing log refused it", async () => {
  const log = new RecordingLog();
  const { keyspace, pipeline, clock } = keyspaceWith(log);
  for (let i = 0; i < 10; i++) {
    await keyspace.set(`k${i}`, "v");
    await keyspace.expire(`k${i}`, 1);
  }
  clock.nowMs += 2_000;
  log.failWith = new KvError("UNAVAILABLE", "log: Cannot append: no space left on device");
  // The sweep, reads and DELs each find the keys again while the log refuses their deletion.
  for (let round = 0; round < 5; round++) {
    keyspace.sweepExpired();
    assert.equal(keyspace.get("k0"), undefined);
    assert.equal(await keyspace.delete("k1"), false);
    await pipeline.drain();
  }
  assert.equal(pipeline.staging.store.size, 10, "nothing was deleted: the log took nothing");
  assert.equal(keyspace.expiredKeys, 0);
  log.failWith = null;
  for (let tick = 0; tick < 100 && pipeline.staging.store.size > 0; tick++) {
    keyspace.sweepExpired();
    await pipeline.drain();
  }
  assert.equal(pipeline.staging.store.size, 0);
  assert.equal(keyspace.expiredKeys, 10);
});

Deno.test("DEL and EXPIRE of a key past its deadline answer false at once, though the log refuses its removal", async () => {
  const log = new RecordingLog();
  const { keyspace, pipeline, clock } = keyspaceWith(log);
  await keyspace.set("k", "v");
  await keyspace.expire("k", 1);
  clock.nowMs += 2_000;
  log.failWith = new KvError("UNAVAILABLE", "log: Cannot append: no space left on device");
  assert.equal(await keyspace.delete("k"), false);
  await pipeline.drain();
  assert.equal(await keyspace.expire("k", 10), false);
  await pipeline.drain();
  assert.equal(pipeline.staging.store.size, 1, "the log took no removal");
  log.failWith = null;
  assert.equal(await keyspace.delete("k"), false);
  await pipeline.drain();
  assert.equal(pipeline.staging.store.size, 0, "the removal is made once the log takes it");
  assert.equal(keyspace.expiredKeys, 1);
});

Deno.test("a replica refuses writes naming its master, hides expired keys but keeps them", async () => {
  const { keyspace, pipeline, clock } = keyspaceWith(new VolatileLog(), "replica");
  await assert.rejects(keyspace.set("k", "v"), (error: unknown) => {
    assert.ok(error instanceof KvError);
    assert.equal(error.code, "FAILED_PRECONDITION");
    assert.match(error.message, /read-only replica.*master\.example:50051/);
    return true;
  });
  pipeline.staging.store.apply({ kind: "set", key: "k", value: "v", expiresAtMs: clock.nowMs + 10 });
  clock.nowMs += 10;
  assert.equal(keyspace.get("k"), undefined);
  assert.equal(keyspace.sweepExpired(), 0);
  await pipeline.drain();
  assert.equal(pipeline.staging.store.size, 1, "expiry belongs to the master");
});

Deno.test("bad input is refused before anything is staged", async () => {
  const { keyspace, pipeline } = keyspaceWith(new VolatileLog());
  await assert.rejects(keyspace.set("", "v"), /key is empty/);
  await assert.rejects(keyspace.set("k", "x".repeat(65)), /--max-value-bytes/);
  await assert.rejects(keyspace.expire("k", 1001), /--max-ttl-seconds/);
  assert.throws(() => keyspace.get("x".repeat(65)), /--max-key-bytes/);
  assert.equal(pipeline.staging.lastSeq, 0);
});

Deno.test("cluster: MSet with onlyIfAbsent skips keys that exist, counting only the entries written", async () => {
  const { keyspace, clock } = keyspaceWith(new VolatileLog());
  await keyspace.set("kept", "newer");
  await keyspace.setMany([{ key: "stale", value: "old", expiresAtMs: clock.nowMs + 10 }]);
  clock.nowMs += 20;
  const written = await keyspace.setMany([
    { key: "kept", value: "copied" },
    { key: "fresh", value: "copied", expiresAtMs: clock.nowMs + 5000 },
    { key: "fresh", value: "second copy" },
    { key: "stale", value: "copied" },
  ], { onlyIfAbsent: true });
  assert.equal(written, 2, "an existing key and a repeated key are skipped; an expired key counts as absent");
  assert.equal(keyspace.get("kept")?.value, "newer");
  assert.deepEqual(keyspace.get("fresh"), { value: "copied", expiresAtMs: clock.nowMs + 5000 });
  assert.equal(keyspace.get("stale")?.value, "copied");
});

Deno.test("MSet's entries travel in one batch: the log takes them all, or none is applied", async () => {
  const log = new RecordingLog();
  const { keyspace, pipeline, clock } = keyspaceWith(log);
  await keyspace.set("old", "v");
  assert.equal(
    await keyspace.setMany([
      { key: "a", value: "1" },
      { key: "old", value: "past", expiresAtMs: clock.nowMs - 1 },
      { key: "b", value: "2", ttlMs: 5000 },
    ]),
    3,
  );
  assert.deepEqual(log.batches.at(-1)?.map((staged) => staged.command.kind), ["set", "delete", "set"]);
  assert.equal(keyspace.get("old"), undefined, "an entry whose deadline passed deletes its key");
  assert.equal(keyspace.ttlSeconds("b"), 5);
  log.failWith = new KvError("UNAVAILABLE", "log: Cannot append: disk full");
  await assert.rejects(keyspace.setMany([{ key: "c", value: "3" }, { key: "a", value: "changed" }]), /disk full/);
  assert.equal(keyspace.get("c"), undefined);
  assert.equal(keyspace.get("a")?.value, "1");
  assert.equal(pipeline.staging.pendingCount, 0);
});

Deno.test("an MSet asking for fsync is answered after the log syncs past it, whatever entries it skipped", async () => {
  const log = new RecordingLog();
  const { keyspace } = keyspaceWith(log);
  assert.equal(await keyspace.setMany([{ key: "a", value: "1" }]), 1);
  assert.deepEqual(log.syncs, [], "no fsync unless asked");
  assert.equal(await keyspace.setMany([{ key: "b", value: "2" }], { fsync: true }), 1);
  assert.deepEqual(log.syncs, [2], "the fsync comes after the batch holding the entry");
  assert.equal(await keyspace.setMany([{ key: "a", value: "x" }], { onlyIfAbsent: true, fsync: true }), 0);
  assert.deepEqual(log.syncs, [2, 2], "an MSet that wrote nothing still fsyncs what it found");
  assert.equal(keyspace.get("a")?.value, "1");
});

Deno.test("an MSet only_if_absent that skips a key whose write is on its way answers after that write", async () => {
  const log = new RecordingLog();
  const { keyspace } = keyspaceWith(log);
  const held = Promise.withResolvers<void>();
  log.hold = held.promise;
  const first = keyspace.set("k", "first");
  let answered = false;
  const copy = keyspace.setMany([{ key: "k", value: "copy" }], { onlyIfAbsent: true, fsync: true }).then(
    (count) => {
      answered = true;
      return count;
    },
  );
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(answered, false, "the answer waits for the write that made the key present");
  log.hold = null;
  held.resolve();
  await first;
  assert.equal(await copy, 0);
  assert.deepEqual(log.syncs, [1]);

  // When the log refuses the write the key rested on, the skip rested on nothing: the
  // MSet fails too, so the rebalancing retries it rather than delete the key's old copy.
  const refused = Promise.withResolvers<void>();
  log.hold = refused.promise;
  const lost = keyspace.set("j", "lost");
  const skipped = keyspace.setMany([{ key: "j", value: "copy" }], { onlyIfAbsent: true, fsync: true });
  log.failWith = new KvError("UNAVAILABLE", "log: Cannot append: disk full");
  refused.resolve();
  await assert.rejects(lost, /disk full/);
  await assert.rejects(skipped, /UNAVAILABLE|log refused/);
  assert.equal(keyspace.get("j"), undefined);
});

Deno.test("client writes are refused before anything is staged while the log is too far behind", async () => {
  const log: CommitLog = {
    append: () => new Promise(() => {}),
    sync: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
  const pipeline = new WritePipeline(new WriteStaging(new Store()), log, silentLogger(), {
    queueBytesMax: 150,
    callOverheadBytes: 0,
  });
  const keyspace = new Keyspace(pipeline, {
    role: "master",
    masterAddress: null,
    limits: LIMITS,
    sweepLimits: { sampleKeys: 20, repeatRatio: 0.25, keysMax: 1000 },
    clock: () => 1_000_000,
    random: Math.random,
  });
  // The log never answers: these writes wait for ever, and their bytes count.
  void keyspace.set("k1", "v".repeat(60));
  void keyspace.set("k2", "v".repeat(60));
  const waiting = pipeline.staging.lastSeq;
  for (
    const write of [
      () => keyspace.set("k3", "v"),
      () => keyspace.delete("k1"),
      () => keyspace.expire("k1", 10),
      () => keyspace.setMany([{ key: "k4", value: "v" }]),
    ]
  ) {
    // Refused at once; before the limit existed, each of these waited for ever.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tooLate = new Promise<never>((_, reject) => timer = setTimeout(() => reject(new Error("no answer")), 1000));
    await assert.rejects(
      Promise.race([write(), tooLate]).finally(() => clearTimeout(timer)),
      (error) => error instanceof KvError && error.code === "UNAVAILABLE",
    );
  }
  assert.equal(pipeline.staging.lastSeq, waiting, "nothing more was staged");
});

Deno.test("a node shutting down refuses writes, stages no expiry, and still answers reads", async () => {
  const log = new RecordingLog();
  const { keyspace, clock } = keyspaceWith(log);
  await keyspace.set("kept", "v");
  await keyspace.setMany([{ key: "brief", value: "v", ttlMs: 1000 }]);
  const staged = keyspace.set("staged", "v");
  keyspace.stopWrites();
  await staged;
  const refused = (error: unknown) =>
    error instanceof KvError && error.code === "UNAVAILABLE" &&
    /shutting down.*nothing was applied/.test(error.message);
  await assert.rejects(keyspace.set("k", "v"), refused);
  await assert.rejects(keyspace.delete("kept"), refused);
  await assert.rejects(keyspace.expire("kept", 10), refused);
  await assert.rejects(keyspace.setMany([{ key: "k", value: "v" }]), refused);
  clock.nowMs += 2000;
  assert.equal(keyspace.get("brief"), undefined, "a key past its deadline is hidden");
  assert.equal(keyspace.sweepExpired(), 0);
  assert.equal(keyspace.pipeline.staging.pendingCount, 0, "and its deletion is not staged");
  assert.equal(keyspace.get("kept")?.value, "v");
  assert.deepEqual(log.batches.flat().map((command) => command.seq), [1, 2, 3]);
});
