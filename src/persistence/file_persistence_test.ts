import assert from "node:assert/strict";
import { KvError } from "../errors.ts";
import { nextTurn } from "../event_loop.ts";
import { Store } from "../store/store.ts";
import { CRASH_POINTS, type CrashPoint } from "./crashpoints.ts";
import { LOG_FILE, LOG_TMP_FILE } from "./log_format.ts";
import { seededRandom, SimStorage } from "./sim_storage.ts";
import { SNAPSHOT_FILE, SNAPSHOT_TMP_FILE } from "./snapshot_format.ts";
import type { FileWriter, Storage } from "./storage.ts";
import { contents, del, expireAt, openPersistence, set, SMALL_SIZES, writeBatch } from "./test_support.ts";

class Crash extends Error {}

/** A crash hook that kills the simulated process at `wanted`: the disk refuses every
 * later call, so no cleanup code of the dead process runs. */
const crashAt = (storage: SimStorage, wanted: CrashPoint) => (point: CrashPoint) => {
  if (point !== wanted) return;
  storage.halt();
  throw new Crash(point);
};

function disk(seed = 1): SimStorage {
  return new SimStorage({ random: seededRandom(seed) });
}

Deno.test("a fresh directory starts a new history at seq 0, and a restart continues it", async () => {
  const storage = disk();
  const first = await openPersistence(storage);
  assert.equal(first.staging.committedSeq, 0);
  const replid = first.persistence.replid;
  assert.ok(replid.length > 0);
  assert.deepEqual(storage.names(), [LOG_FILE]);
  await writeBatch(first, [set("a", "1")]);
  const second = await openPersistence(storage.afterProcessCrash(seededRandom(2)));
  assert.equal(second.persistence.replid, replid);
  assert.equal(second.staging.committedSeq, 1);
});

Deno.test("every acknowledged batch survives a restart, applied in order", async () => {
  const storage = disk();
  const first = await openPersistence(storage, { fsync: "no" });
  await writeBatch(first, [set("a", "1"), set("b", "2", 2_000_000_000_000)]);
  await writeBatch(first, [del("a"), set("c", "3"), expireAt("c", 1_900_000_000_000)]);
  await writeBatch(first, [set("a", "again"), del("missing")]);
  const second = await openPersistence(storage.afterProcessCrash(seededRandom(2)));
  assert.deepEqual(contents(second.store), contents(first.store));
  assert.deepEqual(contents(second.store), {
    a: "again",
    b: "2@2000000000000",
    c: "3@1900000000000",
  });
  assert.equal(second.staging.committedSeq, 7);
});

Deno.test("a snapshot cuts the log to the records after it, and a restart loads both", async () => {
  const storage = disk();
  const first = await openPersistence(storage);
  for (let i = 0; i < 20; i++) await writeBatch(first, [set(`k${i}`, `value ${i}`)]);
  const logBefore = storage.bytes(LOG_FILE)!.length;
  const summary = await first.persistence.snapshot(first.staging);
  assert.equal(summary.keys, 20);
  assert.equal(summary.seq, 20);
  assert.equal(summary.logBytesBefore, logBefore);
  assert.ok(summary.logBytesAfter! < 100, `the cut log holds only its header (${summary.logBytesAfter} bytes)`);
  assert.equal(storage.bytes(LOG_FILE)!.length, summary.logBytesAfter);
  await writeBatch(first, [del("k0"), set("k1", "changed")]);
  assert.deepEqual(storage.names(), [LOG_FILE, SNAPSHOT_FILE]);

  const second = await openPersistence(storage.afterProcessCrash(seededRandom(2)));
  assert.deepEqual(contents(second.store), contents(first.store));
  assert.equal(second.store.peek("k0"), undefined, "a deleted key stays deleted");
  assert.equal(second.staging.committedSeq, 22);
  assert.equal(second.persistence.status().lastSnapshotKeys, 20);
});

Deno.test("a snapshot taken while writes go on recovers to the exact final state", async () => {
  for (let seed = 1; seed <= 30; seed++) {
    const storage = disk(seed);
    const random = seededRandom(seed * 7);
    const opened = await openPersistence(storage, { fsync: "everysec" });
    for (let i = 0; i < 30; i++) await writeBatch(opened, [set(`k${i}`, `v${i}`)]);
    const snapshot = opened.persistence.snapshot(opened.staging);
    // Writes interleave with the snapshot's chunks: overwrite, delete, re-add, expire.
    for (let i = 0; i < 40; i++) {
      const key = `k${Math.floor(random() * 35)}`;
      const roll = random();
      const command = roll < 0.4
        ? set(key, `w${i}`)
        : roll < 0.7
        ? del(key)
        : roll < 0.85
        ? expireAt(key, 1_800_000_000_000 + i)
        : set(key, `x${i}`, 1_900_000_000_000);
      await writeBatch(opened, [command]);
    }
    await snapshot;
    await writeBatch(opened, [set("after", "snapshot")]);
    const recovered = await openPersistence(storage.afterProcessCrash(seededRandom(seed)));
    assert.deepEqual(contents(recovered.store), contents(opened.store), `seed ${seed}`);
    assert.equal(recovered.staging.committedSeq, opened.staging.committedSeq, `seed ${seed}`);
  }
});

Deno.test("a key deleted, set again and given a deadline during a snapshot, and one removed as expired, recover exactly", async () => {
  // The snapshot may catch each key before, between or after these writes ("first" is
  // early in the walk, "last" late; a key set again moves to the end of the walk and may
  // be written twice); the log after the snapshot's seq must make every case exact.
  let seedsWithWritesDuringTheWalk = 0;
  for (let seed = 1; seed <= 20; seed++) {
    const storage = disk(seed);
    const opened = await openPersistence(storage, { fsync: "everysec" });
    await writeBatch(opened, [
      set("first", "v0"),
      ...Array.from({ length: 40 }, (_, i) => set(`k${i}`, "x".repeat(20))),
      set("last", "v0", 1_000),
      set("doomed", "d", 5_000),
    ]);
    const snapshot = opened.persistence.snapshot(opened.staging);
    // Once the walk has passed the first keys (a few 64-byte chunks are written), those
    // keys change in place: only the log's replay can bring their new state back.
    for (let turns = 0; (storage.bytes(SNAPSHOT_TMP_FILE)?.length ?? 0) < 400; turns++) {
      assert.ok(turns < 1000, `seed ${seed}: the snapshot never got going`);
      await nextTurn();
    }
    await writeBatch(opened, [set("k0", "changed in place"), expireAt("k1", 7_000_000_000_000)]);
    await writeBatch(opened, [del("first")]);
    await writeBatch(opened, [set("first", "v1")]);
    await writeBatch(opened, [expireAt("first", 9_000_000_000_000)]);
    await writeBatch(opened, [del("last"), set("last", "v1"), expireAt("last", 8_000_000_000_000)]);
    // "doomed" passed its deadline: the master removes it through the log, as expiry does.
    await writeBatch(opened, [del("doomed")]);
    const summary = await snapshot;
    if (summary.seqEnd > summary.seq) seedsWithWritesDuringTheWalk++;
    const recovered = await openPersistence(storage.afterProcessCrash(seededRandom(seed)));
    assert.deepEqual(contents(recovered.store), contents(opened.store), `seed ${seed}`);
    assert.equal(recovered.store.peek("first")?.expiresAtMs, 9_000_000_000_000, `seed ${seed}`);
    assert.equal(recovered.store.peek("k0")?.value, "changed in place", `seed ${seed}`);
    assert.equal(recovered.store.peek("doomed"), undefined, `seed ${seed}`);
  }
  assert.ok(seedsWithWritesDuringTheWalk >= 10, `only ${seedsWithWritesDuringTheWalk} seeds wrote during the walk`);
});

Deno.test("a TTL keeps its absolute deadline across snapshot and restart", async () => {
  const storage = disk();
  const first = await openPersistence(storage);
  await writeBatch(first, [set("session", "abc", 1_764_000_123_456), set("plain", "p")]);
  await first.persistence.snapshot(first.staging);
  await writeBatch(first, [expireAt("plain", 1_764_000_999_000)]);
  const second = await openPersistence(storage.afterProcessCrash(seededRandom(2)));
  assert.equal(second.store.peek("session")?.expiresAtMs, 1_764_000_123_456);
  assert.equal(second.store.peek("plain")?.expiresAtMs, 1_764_000_999_000);
});

Deno.test("keys past their deadline are loaded; removing them is the master's call", async () => {
  const storage = disk();
  const first = await openPersistence(storage);
  await writeBatch(first, [set("gone", "v", 1000)]);
  const second = await openPersistence(storage.afterProcessCrash(seededRandom(2)));
  assert.equal(second.store.peek("gone")?.expiresAtMs, 1000);
  assert.equal(second.store.get("gone", 2000), undefined, "hidden from readers");
});

Deno.test("a new history survives a restart: same replid, seq going on", async () => {
  const storage = disk();
  const first = await openPersistence(storage, { fsync: "no" });
  await writeBatch(first, [set("a", "1"), set("b", "2")]);
  await first.persistence.startHistory({ replid: "promoted", seq: 2 });
  assert.equal(first.persistence.replid, "promoted");
  await writeBatch(first, [set("c", "3")]);
  await assert.rejects(first.persistence.startHistory({ replid: "x", seq: 1 }), /the log ends at seq 3/);

  const second = await openPersistence(storage.afterProcessCrash(seededRandom(2)));
  assert.equal(second.persistence.replid, "promoted");
  assert.equal(second.staging.committedSeq, 3);
  await second.persistence.snapshot(second.staging);
  const third = await openPersistence(storage.afterProcessCrash(seededRandom(3)));
  assert.equal(third.persistence.replid, "promoted", "the snapshot and cut log carry it on");
  assert.deepEqual(contents(third.store), { a: "1", b: "2", c: "3" });
});

Deno.test("replaceWith makes the files hold exactly the given dataset and history", async () => {
  const storage = disk();
  const opened = await openPersistence(storage);
  await writeBatch(opened, [set("old", "1"), set("older", "2")]);
  await opened.persistence.snapshot(opened.staging);
  await writeBatch(opened, [set("old", "3")]);

  const replacement = new Store();
  replacement.apply(set("fresh", "from master", 1_900_000_000_000));
  replacement.apply(set("other", "x"));
  await opened.persistence.replaceWith(replacement, { replid: "master-history", seq: 500 });
  assert.equal(opened.persistence.replid, "master-history");
  assert.equal(opened.persistence.log.lastSeq, 500);
  opened.staging.store.clear();
  for (const [key, entry] of replacement.entries()) {
    opened.staging.store.apply(set(key, entry.value, entry.expiresAtMs));
  }
  opened.staging.resetSeq(500);
  await writeBatch(opened, [set("after", "resync")]);

  const recovered = await openPersistence(storage.afterProcessCrash(seededRandom(2)));
  assert.equal(recovered.persistence.replid, "master-history");
  assert.equal(recovered.staging.committedSeq, 501);
  assert.deepEqual(contents(recovered.store), {
    after: "resync",
    fresh: "from master@1900000000000",
    other: "x",
  });
});

Deno.test("a replaceWith interrupted between its two renames is finished by recovery", async () => {
  const storage = disk();
  const opened = await openPersistence(storage, { crash: crashAt(storage, "mid-replace") });
  await writeBatch(opened, [set("old", "1")]);
  const replacement = new Store();
  replacement.apply(set("new", "2"));
  await assert.rejects(opened.persistence.replaceWith(replacement, { replid: "r2", seq: 40 }));
  assert.ok(storage.halted, "the process died at mid-replace");
  assert.ok(storage.names().includes(LOG_TMP_FILE), "the new log waits under its temporary name");

  const restarted = storage.afterProcessCrash(seededRandom(2));
  const recovered = await openPersistence(restarted);
  assert.deepEqual(contents(recovered.store), { new: "2" });
  assert.equal(recovered.persistence.replid, "r2");
  assert.equal(recovered.staging.committedSeq, 40);
  assert.ok(recovered.lines.some((line) => line.includes("Finished a replacement")));
  assert.deepEqual(restarted.names(), [LOG_FILE, SNAPSHOT_FILE]);
});

Deno.test("a crash at any crash point loses nothing and recovers the same state", async () => {
  for (const point of CRASH_POINTS) {
    const storage = disk(3);
    const opened = await openPersistence(storage, { fsync: "everysec", crash: crashAt(storage, point) });
    const expected = new Store();
    const unlessCrashed = (error: unknown) => {
      if (!storage.halted) throw error;
    };
    for (let i = 0; i < 12 && !storage.halted; i++) {
      const commands = [set(`k${i}`, `v${i}`), set(`n${i % 3}`, `${i}`)];
      await writeBatch(opened, commands).catch(unlessCrashed);
      // A batch in the log when the process dies is recovered even if never answered.
      for (const command of commands) expected.apply(command);
    }
    if (!storage.halted) await opened.persistence.snapshot(opened.staging).catch(unlessCrashed);
    if (!storage.halted) {
      await opened.persistence.replaceWith(expected, { replid: "r", seq: opened.staging.committedSeq })
        .catch(unlessCrashed);
    }
    assert.ok(storage.halted, `${point} was reached`);
    const restarted = storage.afterProcessCrash(seededRandom(4));
    const recovered = await openPersistence(restarted);
    assert.deepEqual(contents(recovered.store), contents(expected), point);
    const names = restarted.names();
    assert.ok(!names.includes(SNAPSHOT_TMP_FILE) && !names.includes(LOG_TMP_FILE), `${point}: ${names}`);
  }
});

/** What a file written through {@linkcode SyncCountingStorage} saw: its fsyncs, and the
 * most bytes appended to it at any moment since its last fsync. */
interface SyncCount {
  syncs: number;
  unsyncedBytesMax: number;
}

/** Storage that counts, per name a writer was opened under, the fsyncs of the file and
 * how many appended bytes waited for one at most. */
class SyncCountingStorage implements Storage {
  readonly counts = new Map<string, SyncCount>();
  readonly location: string;
  #inner: Storage;

  constructor(inner: Storage) {
    this.#inner = inner;
    this.location = inner.location;
  }

  pathOf = (name: string) => this.#inner.pathOf(name);
  size = (name: string) => this.#inner.size(name);
  openReader = (name: string) => this.#inner.openReader(name);
  rename = (from: string, to: string) => this.#inner.rename(from, to);
  remove = (name: string) => this.#inner.remove(name);
  syncDir = () => this.#inner.syncDir();

  async openWriter(name: string, mode: "create" | "existing"): Promise<FileWriter> {
    const inner = await this.#inner.openWriter(name, mode);
    const count: SyncCount = { syncs: 0, unsyncedBytesMax: 0 };
    this.counts.set(name, count);
    let unsynced = 0;
    return {
      get size() {
        return inner.size;
      },
      append: async (bytes) => {
        await inner.append(bytes);
        unsynced += bytes.length;
        count.unsyncedBytesMax = Math.max(count.unsyncedBytesMax, unsynced);
      },
      truncate: (size) => inner.truncate(size),
      sync: async () => {
        await inner.sync();
        count.syncs++;
        unsynced = 0;
      },
      close: () => inner.close(),
    };
  }
}

Deno.test("a snapshot, and the log cut after it, fsync their file as they go, not all at the end", async () => {
  const sim = disk();
  const storage = new SyncCountingStorage(sim);
  const sizes = { ...SMALL_SIZES, snapshotChunkBytes: 256, readChunkBytes: 256, fsyncIntervalBytes: 2048 };
  const opened = await openPersistence(storage, { sizes, fsync: "no" });
  for (let i = 0; i < 100; i++) await writeBatch(opened, [set(`k${i}`, "v".repeat(100))]);
  // The snapshot holds about 12 KiB; the writes made while it runs land in the log after
  // its seq, about as many bytes, which the cut copies into the new log.
  const snapshot = opened.persistence.snapshot(opened.staging);
  for (let i = 0; i < 100; i++) await writeBatch(opened, [set(`late${i}`, "v".repeat(100))]);
  const summary = await snapshot;
  assert.ok(summary.bytes > 10_000, `${summary.bytes} bytes`);

  const rdb = storage.counts.get(SNAPSHOT_TMP_FILE)!;
  assert.ok(rdb.syncs >= Math.floor(summary.bytes / 2048), `${rdb.syncs} fsyncs of ${summary.bytes} bytes`);
  // At most one interval plus the chunk that crossed it waits for an fsync.
  assert.ok(rdb.unsyncedBytesMax <= 2048 + 256 + 200, `${rdb.unsyncedBytesMax} bytes waited for an fsync`);
  const cutLog = storage.counts.get(LOG_TMP_FILE)!;
  assert.ok(summary.logBytesBefore > 8_000 && summary.logBytesAfter! > 6_000, JSON.stringify(summary));
  assert.ok(cutLog.unsyncedBytesMax <= 2048 + 256, `${cutLog.unsyncedBytesMax} bytes of the cut log waited`);

  const recovered = await openPersistence(sim.afterProcessCrash(seededRandom(2)));
  assert.deepEqual(contents(recovered.store), contents(opened.store));
  assert.equal(recovered.persistence.status().lastSnapshotKeys, summary.keys);
});

Deno.test("snapshot requests made while one runs share the one queued after it", async () => {
  const storage = disk();
  const opened = await openPersistence(storage);
  for (let i = 0; i < 50; i++) await writeBatch(opened, [set(`k${i}`, "v".repeat(20))]);
  const running = opened.persistence.snapshot(opened.staging);
  await writeBatch(opened, [set("late", "write")]);
  const queued = [1, 2, 3].map(() => opened.persistence.snapshot(opened.staging));
  assert.equal(new Set(queued).size, 1, "one queued snapshot serves every later request");
  const [first, second] = [await running, await queued[0]];
  assert.equal(first.seq, 50);
  assert.equal(second.seq, 51, "the queued one holds the write made before it was asked for");
});

Deno.test("a snapshot gives up when the dataset is replaced under it, leaving the old files", async () => {
  const storage = disk();
  const opened = await openPersistence(storage);
  for (let i = 0; i < 50; i++) await writeBatch(opened, [set(`k${i}`, "v".repeat(20))]);
  const snapshot = opened.persistence.snapshot(opened.staging);
  await Promise.resolve();
  opened.store.clear();
  await assert.rejects(snapshot, /the dataset was replaced while it was written/);
  assert.match(opened.persistence.status().lastSnapshotStatus, /^abandoned at 2025-11-24T16:00:00\.000Z: /);
  assert.deepEqual(storage.names(), [LOG_FILE]);
});

Deno.test("a failed snapshot leaves the last good one's figures, and says when and why it failed", async () => {
  const storage = disk();
  const clock = { nowMs: 1_764_000_000_000 };
  const opened = await openPersistence(storage, { clock: () => clock.nowMs });
  for (let i = 0; i < 20; i++) await writeBatch(opened, [set(`k${i}`, "v".repeat(20))]);
  const good = await opened.persistence.snapshot(opened.staging);
  const before = opened.persistence.status();
  assert.equal(before.lastSnapshotStatus, "ok");
  for (let i = 20; i < 30; i++) await writeBatch(opened, [set(`k${i}`, "v".repeat(20))]);
  clock.nowMs += 60_000;
  storage.capacityBytes = storage.usedBytes() + 20;
  await assert.rejects(opened.persistence.snapshot(opened.staging), /No space left/);
  const after = opened.persistence.status();
  assert.match(after.lastSnapshotStatus, /^failed at 2025-11-24T16:01:00\.000Z: .*No space left on device/);
  for (const field of ["lastSnapshotAtMs", "lastSnapshotKeys", "lastSnapshotBytes", "lastSnapshotSeq"] as const) {
    assert.equal(after[field], before[field], `${field} still describes the good snapshot, which kvstore.rdb holds`);
  }
  assert.equal(after.lastSnapshotSeq, good.seq);
  storage.capacityBytes = Infinity;
  await opened.persistence.snapshot(opened.staging);
  assert.equal(opened.persistence.status().lastSnapshotStatus, "ok");
  assert.equal(opened.persistence.status().lastSnapshotKeys, 30);
});

Deno.test("an append that fails on a full disk leaves the log as if never offered", async () => {
  const storage = disk();
  const opened = await openPersistence(storage, { fsync: "always" });
  await writeBatch(opened, [set("before", "full")]);
  const logBytes = storage.bytes(LOG_FILE)!.length;
  storage.capacityBytes = storage.usedBytes() + 20;
  const error = await writeBatch(opened, [set("big", "x".repeat(100))]).catch((error) => error);
  assert.ok(error instanceof KvError, String(error));
  assert.equal(error.code, "UNAVAILABLE");
  assert.match(error.message, /^log: Cannot append 1 write to \/sim\/kvstore\.aof: No space left on device/);
  assert.equal(storage.bytes(LOG_FILE)!.length, logBytes, "the partial write was cut off");
  assert.match(opened.persistence.status().logError, /No space left/);

  storage.capacityBytes = Infinity;
  await writeBatch(opened, [set("after", "room")]);
  assert.equal(opened.persistence.status().logError, "");
  const recovered = await openPersistence(storage.afterPowerCut(seededRandom(9)));
  assert.deepEqual(contents(recovered.store), { after: "room", before: "full" });
});

Deno.test("with fsync always, a failed fsync fails the batch and cuts it off", async () => {
  const storage = disk();
  const opened = await openPersistence(storage, { fsync: "always" });
  await writeBatch(opened, [set("a", "1")]);
  storage.failSyncs = true;
  await assert.rejects(writeBatch(opened, [set("b", "2")]), /Input\/output error/);
  storage.failSyncs = false;
  await writeBatch(opened, [set("c", "3")]);
  const recovered = await openPersistence(storage.afterPowerCut(seededRandom(9)));
  assert.deepEqual(contents(recovered.store), { a: "1", c: "3" });
});

Deno.test("a failed append's cut-back is fsynced: a power cut never brings the failed batch back", async () => {
  for (let seed = 1; seed <= 20; seed++) {
    const storage = disk(seed);
    const opened = await openPersistence(storage, { fsync: "always" });
    await writeBatch(opened, [set("a", "1")]);
    // The batch reaches the file whole and its fsync fails: its writers hear that nothing
    // was applied. The OS may still write its bytes back on its own, so unless the cut
    // is made durable too, a power cut can bring the batch back.
    storage.failNextSyncs = 1;
    await assert.rejects(writeBatch(opened, [set("b", "failed")]), /Input\/output error.*Nothing was applied/);
    const recovered = await openPersistence(storage.afterPowerCut(seededRandom(seed + 100)));
    assert.deepEqual(contents(recovered.store), { a: "1" }, `seed ${seed}`);
  }
});

Deno.test("while a failed append's cut-back cannot be fsynced, every append is refused", async () => {
  for (const fsync of ["always", "everysec", "no"] as const) {
    const storage = disk();
    const opened = await openPersistence(storage, { fsync });
    await writeBatch(opened, [set("a", "1")]);
    await opened.persistence.log.sync();
    const replid = opened.persistence.replid;
    // What fails whole is a batch under always, and a new history (always fsynced) under
    // the other policies.
    storage.failSyncs = true;
    await assert.rejects(
      fsync === "always" ? writeBatch(opened, [set("b", "failed")]) : opened.persistence.startHistory({
        replid: "r2",
        seq: opened.staging.committedSeq,
      }),
      /Input\/output error/,
    );
    const error = await writeBatch(opened, [set("c", "refused")]).catch((error) => error);
    assert.ok(error instanceof KvError, `${fsync}: ${error}`);
    assert.equal(error.code, "UNAVAILABLE");
    assert.match(
      error.message,
      /^log: Cannot append 1 write to \/sim\/kvstore\.aof: an earlier failed append was cut off, but the cut cannot be made durable \(fsync: Input\/output error \(os error 5\)\)\. Nothing was applied/,
      fsync,
    );
    assert.match(opened.persistence.status().logError, /cut-back not durable: Input\/output error/, fsync);
    storage.failSyncs = false;
    await writeBatch(opened, [set("d", "4")]);
    await opened.persistence.log.sync();
    for (let seed = 1; seed <= 10; seed++) {
      const recovered = await openPersistence(storage.afterPowerCut(seededRandom(seed)));
      assert.deepEqual(contents(recovered.store), { a: "1", d: "4" }, `${fsync}, seed ${seed}`);
      assert.equal(recovered.persistence.replid, replid, `${fsync}, seed ${seed}`);
    }
  }
});

Deno.test("with fsync everysec, writes are refused after a failed fsync until one succeeds", async () => {
  const storage = disk();
  const opened = await openPersistence(storage, { fsync: "everysec" });
  await writeBatch(opened, [set("a", "1")]);
  storage.failSyncs = true;
  await assert.rejects(opened.persistence.log.sync(), /log: Cannot fsync \/sim\/kvstore\.aof: Input\/output error/);
  // What the log would take now could not be made durable: a power cut would lose more
  // than the second everysec promises, so it is refused, as Redis refuses writes then.
  const error = await writeBatch(opened, [set("b", "2")]).catch((error) => error);
  assert.ok(error instanceof KvError, String(error));
  assert.equal(error.code, "UNAVAILABLE");
  assert.match(error.message, /^log: Cannot append 1 write to \/sim\/kvstore\.aof: the last fsync of the log failed/);
  assert.match(opened.persistence.status().logError, /fsync failed: Input\/output error/);
  await assert.rejects(opened.persistence.log.sync());
  storage.failSyncs = false;
  await opened.persistence.log.sync();
  await writeBatch(opened, [set("c", "3")]);
  await opened.persistence.log.sync();
  const recovered = await openPersistence(storage.afterPowerCut(seededRandom(9)));
  assert.deepEqual(contents(recovered.store), { a: "1", c: "3" });
  // A replacement syncs everything it installs: the next tick finds nothing to sync, and
  // that ends the refusal too.
  storage.failSyncs = true;
  await writeBatch(opened, [set("d", "4")]);
  await assert.rejects(opened.persistence.log.sync());
  storage.failSyncs = false;
  await opened.persistence.replaceWith(opened.store, { replid: "r2", seq: opened.staging.committedSeq });
  await opened.persistence.log.sync();
  await writeBatch(opened, [set("e", "5")]);
});

Deno.test("a failed append that cannot even be cut back blocks appends until a cut log replaces it", async () => {
  const storage = disk();
  const opened = await openPersistence(storage, { fsync: "no" });
  for (let i = 0; i < 5; i++) await writeBatch(opened, [set(`k${i}`, `v${i}`)]);
  storage.capacityBytes = storage.usedBytes() + 10;
  storage.failTruncates = true;
  await assert.rejects(writeBatch(opened, [set("big", "x".repeat(100))]), /No space left/);
  storage.capacityBytes = Infinity;
  await assert.rejects(
    writeBatch(opened, [set("next", "1")]),
    /the end of an earlier failed append cannot be cut off .*Nothing was applied/,
  );
  // The snapshot's cut writes a new log holding exactly the complete batches, so the
  // partial bytes stay behind with the old file and appends go on.
  await opened.persistence.snapshot(opened.staging);
  storage.failTruncates = false;
  await writeBatch(opened, [set("after", "cut")]);
  const recovered = await openPersistence(storage.afterProcessCrash(seededRandom(9)));
  assert.deepEqual(contents(recovered.store), contents(opened.store));
  assert.equal(recovered.store.peek("big"), undefined);
  assert.equal(recovered.store.peek("after")?.value, "cut");
});

Deno.test("a replaceWith that fails on a full disk leaves the files as they were", async () => {
  const storage = disk();
  const opened = await openPersistence(storage);
  await writeBatch(opened, [set("old", "1")]);
  storage.capacityBytes = storage.usedBytes() + 50;
  const replacement = new Store();
  replacement.apply(set("new", "x".repeat(200)));
  const error = await opened.persistence.replaceWith(replacement, { replid: "r2", seq: 9 }).catch((error) => error);
  assert.ok(error instanceof KvError, String(error));
  assert.match(error.message, /^persistence: Cannot replace the data files in \/sim: No space left on device/);
  storage.capacityBytes = Infinity;
  assert.deepEqual(storage.names(), [LOG_FILE]);
  await writeBatch(opened, [set("still", "writable")]);
  const recovered = await openPersistence(storage.afterProcessCrash(seededRandom(2)));
  assert.deepEqual(contents(recovered.store), { old: "1", still: "writable" });
  assert.equal(recovered.persistence.replid, opened.persistence.replid);
});

Deno.test("no snapshot is taken between a clear of the store and the replaceWith that ends the resync", async () => {
  const storage = disk();
  const opened = await openPersistence(storage);
  await writeBatch(opened, [set("old", "1")]);
  await opened.persistence.snapshot(opened.staging);
  const snapshotBefore = storage.bytes(SNAPSHOT_FILE)!.slice();
  opened.store.clear();
  opened.store.apply(set("half", "of the master's data"));
  await assert.rejects(opened.persistence.snapshot(opened.staging), /the dataset is being replaced \(a full resync\)/);
  assert.deepEqual(storage.bytes(SNAPSHOT_FILE), snapshotBefore, "the files still hold the old history");

  opened.store.apply(set("rest", "of it"));
  await opened.persistence.replaceWith(opened.store, { replid: "master", seq: 70 });
  opened.staging.resetSeq(70);
  const summary = await opened.persistence.snapshot(opened.staging);
  assert.equal(summary.keys, 2);
  assert.equal(summary.seq, 70);
});

/** A hook that makes the directory's fsync fail from crash point `at` on: the rename that
 * follows it succeeds, the fsync after the rename does not. */
const failDirSyncsFrom = (storage: SimStorage, at: CrashPoint) => (point: CrashPoint) => {
  if (point === at) storage.failDirSyncs = true;
};

Deno.test("a log cut whose directory fsync fails goes on appending to the log the directory names", async () => {
  const storage = disk();
  const opened = await openPersistence(storage, { fsync: "always", crash: failDirSyncsFrom(storage, "mid-log-cut") });
  for (let i = 0; i < 5; i++) await writeBatch(opened, [set(`k${i}`, `v${i}`)]);
  await opened.persistence.snapshot(opened.staging);
  assert.match(opened.persistence.status().logError, /Input\/output error/);
  // Under always, a write is acknowledged only once the new log's name is durable too.
  await assert.rejects(writeBatch(opened, [set("refused", "x")]), /Input\/output error/);
  storage.failDirSyncs = false;
  await writeBatch(opened, [set("after", "cut")]);

  const crashed = await openPersistence(storage.afterProcessCrash(seededRandom(2)));
  assert.deepEqual(contents(crashed.store), contents(opened.store));
  assert.equal(crashed.store.peek("after")?.value, "cut", "the write after the cut is in kvstore.aof");
  const powerCut = await openPersistence(storage.afterPowerCut(seededRandom(3)));
  assert.deepEqual(contents(powerCut.store), contents(opened.store));
});

Deno.test("a replaceWith whose directory fsync fails after the new log is in place still switches to it", async () => {
  const storage = disk();
  const opened = await openPersistence(storage, { fsync: "everysec", crash: failDirSyncsFrom(storage, "mid-replace") });
  await writeBatch(opened, [set("old", "1")]);
  const replacement = new Store();
  replacement.apply(set("new", "2"));
  await opened.persistence.replaceWith(replacement, { replid: "r2", seq: 40 });
  opened.store.clear();
  opened.store.apply(set("new", "2"));
  opened.staging.resetSeq(40);
  await writeBatch(opened, [set("after", "resync")]);
  storage.failDirSyncs = false;
  await opened.persistence.log.sync();

  const crashed = await openPersistence(storage.afterProcessCrash(seededRandom(2)));
  assert.deepEqual(contents(crashed.store), { after: "resync", new: "2" });
  assert.equal(crashed.staging.committedSeq, 41);
  assert.equal(crashed.persistence.replid, "r2");
  const powerCut = await openPersistence(storage.afterPowerCut(seededRandom(3)));
  assert.deepEqual(contents(powerCut.store), { after: "resync", new: "2" });
});

/** A hook that makes the step after crash point `at` fail in the given way. */
const failFrom = (storage: SimStorage, at: CrashPoint, what: "failDirSyncs" | "failRenames") => (point: CrashPoint) => {
  if (point === at) storage[what] = true;
};

for (
  const [what, at, failure] of [
    ["the directory fsync after the new snapshot's rename", "after-snapshot-rename", "failDirSyncs"],
    ["the new log's rename", "mid-replace", "failRenames"],
  ] as const
) {
  Deno.test(`a replaceWith that fails at ${what} leaves files that load`, async () => {
    const storage = disk();
    const opened = await openPersistence(storage, { fsync: "always", crash: failFrom(storage, at, failure) });
    await writeBatch(opened, [set("old", "1")]);
    const replacement = new Store();
    replacement.apply(set("new", "2"));
    await opened.persistence.replaceWith(replacement, { replid: "r2", seq: 40 }).catch(() => {});
    storage[failure] = false;

    // Whatever the outcome, the files hold one whole dataset: the old one, or the new one.
    const crashed = await openPersistence(storage.afterProcessCrash(seededRandom(2)));
    const loaded = contents(crashed.store);
    assert.ok(
      JSON.stringify(loaded) === JSON.stringify({ old: "1" }) ||
        JSON.stringify(loaded) === JSON.stringify({ new: "2" }),
      `loaded ${JSON.stringify(loaded)}`,
    );
  });
}
