import assert from "node:assert/strict";
import { plural } from "../errors.ts";
import { crashHookFromSpec } from "./crashpoints.ts";
import { DamagedFileError, MismatchedFilesError } from "./damage.ts";
import { DISK_SECTOR_BYTES, FrameEncoder } from "./frame.ts";
import { encodeBatch, LOG_FILE } from "./log_format.ts";
import { seededRandom, SimStorage } from "./sim_storage.ts";
import { SNAPSHOT_FILE, SNAPSHOT_TMP_FILE } from "./snapshot_format.ts";
import { contents, del, expireAt, type Opened, openPersistence, set, writeBatch } from "./test_support.ts";

function disk(): SimStorage {
  return new SimStorage({ random: seededRandom(1) });
}

/** Restarts on what a crashed process left. */
function restart(storage: SimStorage): SimStorage {
  return storage.afterProcessCrash(seededRandom(5));
}

/** A log with a few batches; returns the storage and the log's size before the last. */
async function logWithLastBatch(last: Parameters<typeof writeBatch>[1]) {
  const storage = disk();
  const opened = await openPersistence(storage, { fsync: "no" });
  await writeBatch(opened, [set("a", "1"), set("b", "2")]);
  await writeBatch(opened, [del("b")]);
  const before = contents(opened.store);
  const sizeBefore = storage.bytes(LOG_FILE)!.length;
  await writeBatch(opened, last);
  return { storage, before, sizeBefore, full: storage.bytes(LOG_FILE)!.slice(), opened };
}

const lastBatches: [string, Parameters<typeof writeBatch>[1]][] = [
  ["a SET with a deadline", [set("ttl", "value", 1_900_000_000_000)]],
  ["a DELETE", [del("a")]],
  ["an EXPIRE-AT", [expireAt("a", 1_900_000_000_000)]],
  ["a batch split over several frames", Array.from({ length: 12 }, (_, i) => set(`m${i}`, `value ${i}`))],
];

for (const [what, last] of lastBatches) {
  Deno.test(`a log torn at any byte of its last batch (${what}) loads the batches before it`, async () => {
    const { storage, before, sizeBefore, full } = await logWithLastBatch(last);
    for (let length = sizeBefore + 1; length < full.length; length++) {
      const torn = restart(storage);
      torn.setBytes(LOG_FILE, full.subarray(0, length));
      const recovered = await openPersistence(torn);
      assert.deepEqual(contents(recovered.store), before, `cut at ${length}`);
      assert.equal(recovered.staging.committedSeq, 3, `cut at ${length}`);
      assert.equal(torn.bytes(LOG_FILE)!.length, sizeBefore, `the tail is cut off at ${length}`);
      const warning = recovered.lines.find((line) => line.includes("Cut a torn tail"));
      assert.ok(warning?.includes(`${plural(length - sizeBefore, "byte")} from offset ${sizeBefore}`), String(warning));

      // Appends go on after the cut, and a later restart finds them.
      await writeBatch(recovered, [set("later", "write")]);
      const again = await openPersistence(restart(torn));
      assert.deepEqual(contents(again.store), { ...before, later: "write" }, `cut at ${length}`);
      assert.ok(!again.lines.some((line) => line.includes("Cut a torn tail")));
    }
  });
}

Deno.test("a log whose unsynced end came back as zeros loads the batches before it, with one warning", async () => {
  const { storage, before, sizeBefore, full } = await logWithLastBatch(
    Array.from({ length: 40 }, (_, i) => set(`m${i}`, `value ${i}`)),
  );
  assert.ok(full.length > sizeBefore + 2 * DISK_SECTOR_BYTES, "the last batch spans sectors");
  // The file system kept the length (and maybe more) but lost the data: from the batch's
  // start, or from any sector boundary within it.
  const boundaries = [sizeBefore];
  for (let at = DISK_SECTOR_BYTES; at < full.length; at += DISK_SECTOR_BYTES) {
    if (at > sizeBefore) boundaries.push(at);
  }
  for (const from of boundaries) {
    for (const extra of [0, 4096]) {
      const zeroed = new Uint8Array(full.length + extra);
      zeroed.set(full.subarray(0, from));
      const lost = restart(storage);
      lost.setBytes(LOG_FILE, zeroed);
      const recovered = await openPersistence(lost);
      assert.deepEqual(contents(recovered.store), before, `zeros from ${from}`);
      assert.equal(lost.bytes(LOG_FILE)!.length, sizeBefore, `cut back at ${from}`);
      const warnings = recovered.lines.filter((line) => line.includes("Cut a torn tail"));
      assert.equal(warnings.length, 1);
      assert.match(
        warnings[0],
        new RegExp(`${plural(zeroed.length - sizeBefore, "byte")} from offset ${sizeBefore} .*zero bytes`),
      );
    }
  }
});

Deno.test("a last batch whose bytes are there but wrong stops recovery: it is damage, not a torn tail", async () => {
  const { storage, sizeBefore, full } = await logWithLastBatch([set("c", "acknowledged and fsynced")]);
  for (const position of [sizeBefore + 3, sizeBefore + 20, full.length - 5, full.length - 1]) {
    const damaged = restart(storage);
    const bytes = full.slice();
    bytes[position] ^= 0x08;
    damaged.setBytes(LOG_FILE, bytes);
    const error = await openPersistence(damaged).catch((error) => error);
    assert.ok(error instanceof DamagedFileError, `byte ${position}: ${error}`);
    assert.equal(error.offset, sizeBefore, `byte ${position}`);
    assert.deepEqual(damaged.bytes(LOG_FILE), bytes, "recovery changed nothing");
  }
});

Deno.test("a damaged record in the middle of the log stops recovery, naming file, offset and repair", async () => {
  const { storage, sizeBefore, full } = await logWithLastBatch([set("c", "3")]);
  const damaged = restart(storage);
  const bytes = full.slice();
  bytes[sizeBefore - 3] ^= 0x10; // inside the DELETE batch, which has a batch after it
  damaged.setBytes(LOG_FILE, bytes);
  const error = await openPersistence(damaged).catch((error) => error);
  assert.ok(error instanceof DamagedFileError, String(error));
  assert.equal(error.file, "log");
  assert.ok(error.offset < sizeBefore && error.offset > 8);
  assert.match(
    error.message,
    /^recovery: Cannot load "\/sim\/kvstore\.aof" at offset \d+: the frame's payload fails its checksum\. Nothing was loaded\..* kvstore repair --data-dir \/data$/,
  );
  assert.deepEqual(damaged.bytes(LOG_FILE), bytes, "recovery changed nothing");
});

Deno.test("a damaged snapshot stops recovery, naming the file and offset", async () => {
  const storage = disk();
  const opened = await openPersistence(storage);
  for (let i = 0; i < 20; i++) await writeBatch(opened, [set(`k${i}`, `value ${i}`)]);
  await opened.persistence.snapshot(opened.staging);
  const snapshot = storage.bytes(SNAPSHOT_FILE)!;
  for (const position of [3, 20, 60, Math.floor(snapshot.length / 2), snapshot.length - 2]) {
    const damaged = restart(storage);
    const bytes = snapshot.slice();
    bytes[position] ^= 0x04;
    damaged.setBytes(SNAPSHOT_FILE, bytes);
    const error = await openPersistence(damaged).catch((error) => error);
    assert.ok(error instanceof DamagedFileError, `byte ${position}: ${error}`);
    assert.equal(error.file, "snapshot");
    assert.match(error.message, /^recovery: Cannot load "\/sim\/kvstore\.rdb" at offset \d+: /);
  }
  const truncated = restart(storage);
  truncated.setBytes(SNAPSHOT_FILE, snapshot.subarray(0, snapshot.length - 30));
  await assert.rejects(openPersistence(truncated), DamagedFileError);
});

Deno.test("the log refuses a batch that does not continue its last seq", async () => {
  const storage = disk();
  const opened = await openPersistence(storage);
  await writeBatch(opened, [set("a", "1")]);
  opened.staging.stage(set("b", "2"));
  opened.staging.stage(set("c", "3"));
  const [, third] = opened.staging.takeBatch();
  await assert.rejects(opened.persistence.log.append([third]), /Cannot append seq 3: the log ends at seq 1/);
});

Deno.test("a gap in the log's seqs is damage", async () => {
  const storage = disk();
  const opened = await openPersistence(storage);
  await writeBatch(opened, [set("a", "1")]);
  const forged = encodeBatch(new FrameEncoder(), [{ seq: 3, command: set("c", "3") }], 1024);
  const log = storage.bytes(LOG_FILE)!;
  const gapped = restart(storage);
  const bytes = new Uint8Array(log.length + forged.length);
  bytes.set(log);
  bytes.set(forged, log.length);
  gapped.setBytes(LOG_FILE, bytes);
  await assert.rejects(openPersistence(gapped), /at offset \d+: seq 3 follows seq 1: the log has a gap/);
});

Deno.test("a log that continues a missing snapshot is refused", async () => {
  const storage = disk();
  const opened = await openPersistence(storage);
  await writeBatch(opened, [set("a", "1")]);
  await opened.persistence.snapshot(opened.staging);
  const missing = restart(storage);
  await missing.remove(SNAPSHOT_FILE);
  const error = await openPersistence(missing).catch((error) => error);
  assert.ok(error instanceof MismatchedFilesError, String(error));
  assert.equal(error.problem, "snapshot-missing");
  assert.match(error.message, /continues a snapshot at seq 1, and \/sim\/kvstore\.rdb is missing/);
});

Deno.test("a log and a snapshot from different lineages are refused", async () => {
  const first = disk();
  const a = await openPersistence(first);
  await writeBatch(a, [set("a", "1")]);
  await a.persistence.snapshot(a.staging);
  const second = disk();
  const b = await openPersistence(second);
  await writeBatch(b, [set("b", "1")]);
  const mixed = restart(first);
  mixed.setBytes(LOG_FILE, second.bytes(LOG_FILE)!);
  const error = await openPersistence(mixed).catch((error) => error);
  assert.ok(error instanceof MismatchedFilesError, String(error));
  assert.equal(error.problem, "log-not-of-snapshot");
});

Deno.test("an older snapshot than the log continues is refused: the writes in between are nowhere", async () => {
  // Two snapshots taken against the same log: the first one's cut never happened.
  const storage = disk();
  const crash = crashHookFromSpec("before-log-cut:1", () => {
    storage.halt();
    throw new Error("crash");
  });
  const opened = await openPersistence(storage, { crash });
  await writeBatch(opened, [set("a", "1")]);
  await assert.rejects(opened.persistence.snapshot(opened.staging));
  const older = storage.bytes(SNAPSHOT_FILE)!.slice();
  const restarted = restart(storage);
  const second = await openPersistence(restarted);
  await writeBatch(second, [set("b", "2")]);
  await second.persistence.snapshot(second.staging);

  const restored = restart(restarted);
  restored.setBytes(SNAPSHOT_FILE, older);
  const error = await openPersistence(restored).catch((error) => error);
  assert.ok(error instanceof MismatchedFilesError, String(error));
  assert.match(error.message, /starts after seq 2, but \/sim\/kvstore\.rdb covers only up to seq 1/);
});

Deno.test("a missing log with a snapshot starts from the snapshot alone, with a warning", async () => {
  const storage = disk();
  const opened: Opened = await openPersistence(storage);
  await writeBatch(opened, [set("a", "1"), set("b", "2")]);
  await opened.persistence.snapshot(opened.staging);
  const restored = restart(storage);
  await restored.remove(LOG_FILE);
  const recovered = await openPersistence(restored);
  assert.deepEqual(contents(recovered.store), { a: "1", b: "2" });
  assert.equal(recovered.staging.committedSeq, 2);
  assert.ok(recovered.lines.some((line) => line.includes("kvstore.aof is missing")));
  await writeBatch(recovered, [set("c", "3")]);
  const again = await openPersistence(restart(restored));
  assert.deepEqual(contents(again.store), { a: "1", b: "2", c: "3" });
});

Deno.test("a leftover temporary snapshot is removed and never loaded", async () => {
  const storage = disk();
  const opened = await openPersistence(storage);
  await writeBatch(opened, [set("a", "1")]);
  const restarted = restart(storage);
  restarted.setBytes(SNAPSHOT_TMP_FILE, new Uint8Array(100).fill(7));
  const recovered = await openPersistence(restarted);
  assert.deepEqual(contents(recovered.store), { a: "1" });
  assert.deepEqual(restarted.names(), [LOG_FILE]);
});

Deno.test("a file that is not a kvstore log, or of another format version, is refused", async () => {
  const storage = disk();
  await openPersistence(storage);
  const other = restart(storage);
  other.setBytes(LOG_FILE, new TextEncoder().encode("*2\r\n$3\r\nSET\r\n"));
  await assert.rejects(openPersistence(other), /does not start with the kvstore log magic/);
  const newer = restart(storage);
  const bytes = storage.bytes(LOG_FILE)!.slice();
  bytes[6] = 2;
  newer.setBytes(LOG_FILE, bytes);
  await assert.rejects(openPersistence(newer), /it is format version 2; this kvstore reads version 1/);
});

Deno.test("a long load logs its progress", async () => {
  const storage = disk();
  const opened = await openPersistence(storage);
  for (let i = 0; i < 30; i++) await writeBatch(opened, [set(`k${i}`, "v")]);
  let nowMs = 0;
  const recovered = await openPersistence(restart(storage), { clock: () => (nowMs += 500) });
  const progress = recovered.lines.filter((line) => line.includes("Loading the dataset"));
  assert.ok(progress.length >= 2, recovered.lines.join("\n"));
  assert.match(progress.at(-1)!, /keysLoaded=0 recordsReplayed=\d+ seconds=\d/);
  assert.match(recovered.lines.at(-1)!, /Loaded the dataset keys=30 .*recordsReplayed=30 seq=30/);
});

Deno.test("a missing log after a snapshot taken under writes: the snapshot as loaded becomes the new start", async () => {
  for (let seed = 1; seed <= 10; seed++) {
    const storage = new SimStorage({ random: seededRandom(seed) });
    const opened = await openPersistence(storage);
    for (let i = 0; i < 30; i++) await writeBatch(opened, [set(`k${i}`, `v${i}`)]);
    const snapshot = opened.persistence.snapshot(opened.staging);
    for (let i = 0; i < 30; i++) await writeBatch(opened, [set(`k${i}`, `w${i}`)]);
    const summary = await snapshot;
    const restored = restart(storage);
    await restored.remove(LOG_FILE);
    const first = await openPersistence(restored);
    assert.equal(first.staging.committedSeq, summary.seqEnd, `seed ${seed}`);
    await writeBatch(first, [set("after", "restore")]);
    const again = await openPersistence(restart(restored));
    assert.deepEqual(contents(again.store), contents(first.store), `seed ${seed}`);
  }
});
