import assert from "node:assert/strict";
import { parseServerArgs, type ServerConfig } from "../config/server_flags.ts";
import { silentLogger } from "../logging/logger.ts";
import { seededRandom, SimStorage } from "../persistence/sim_storage.ts";
import { openPersistence, set, writeBatch } from "../persistence/test_support.ts";
import { DurabilityTimers, logOutgrewSnapshot } from "./durability.ts";

function config(args: string[]): ServerConfig {
  return (parseServerArgs(args) as { config: ServerConfig }).config;
}

/** Polls `condition` every 50 ms for up to `timeoutMs`. */
async function eventually(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadlineMs = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadlineMs) assert.fail(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

Deno.test("under everysec the timer fsyncs the log each second and retries a failed fsync", async () => {
  const storage = new SimStorage({ random: seededRandom(1) });
  const opened = await openPersistence(storage, { fsync: "everysec", clock: Date.now });
  const timers = new DurabilityTimers(opened.persistence, opened.staging, silentLogger());
  timers.start(config(["--appendfsync", "everysec", "--snapshot-interval-seconds", "0"]));
  try {
    await writeBatch(opened, [set("a", "1")]);
    const syncs = storage.syncs;
    await eventually(() => storage.syncs > syncs, "the everysec timer fsyncs the log");

    // A failed fsync refuses writes until the timer's retry succeeds.
    storage.failSyncs = true;
    await writeBatch(opened, [set("b", "2")]);
    await eventually(() => opened.persistence.status().logError.startsWith("fsync failed"), "the fsync fails");
    await assert.rejects(writeBatch(opened, [set("c", "3")]), /the last fsync of the log failed/);
    storage.failSyncs = false;
    await eventually(
      () => writeBatch(opened, [set("c", "3")]).then(() => true, () => false),
      "writes succeed again once the timer's fsync does",
    );
  } finally {
    timers.stop();
  }
});

Deno.test("the snapshot timer snapshots the data when it changed, and only then", async () => {
  const storage = new SimStorage({ random: seededRandom(1) });
  const opened = await openPersistence(storage, { fsync: "no", clock: Date.now });
  const timers = new DurabilityTimers(opened.persistence, opened.staging, silentLogger());
  timers.start(config(["--appendfsync", "no", "--snapshot-interval-seconds", "1"]));
  try {
    await writeBatch(opened, [set("a", "1")]);
    await eventually(() => opened.persistence.status().lastSnapshotSeq === 1, "the interval snapshots the change");
    assert.equal(timers.changedSinceSnapshot(), false);
    const snapshotAtMs = opened.persistence.status().lastSnapshotAtMs;
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(opened.persistence.status().lastSnapshotAtMs, snapshotAtMs, "nothing changed: no new snapshot");
  } finally {
    timers.stop();
  }
});

Deno.test("a snapshot interval longer than a timer can wait (24.8 days) does not snapshot at once", async () => {
  const storage = new SimStorage({ random: seededRandom(1) });
  const opened = await openPersistence(storage, { fsync: "no", clock: Date.now });
  const timers = new DurabilityTimers(opened.persistence, opened.staging, silentLogger());
  // 30 days: a timer given that many ms fires after 1 ms, again and again.
  timers.start(config(["--appendfsync", "no", "--snapshot-interval-seconds", String(30 * 24 * 3600)]));
  try {
    await writeBatch(opened, [set("a", "1")]);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(opened.persistence.status().lastSnapshotStatus, "none", "no snapshot within 200 ms");
  } finally {
    timers.stop();
  }
});

Deno.test("the log asks for a snapshot once it passes the minimum and the last snapshot's size", () => {
  const mib = 1024 * 1024;
  assert.equal(logOutgrewSnapshot(63 * mib, 0, 64 * mib), false, "under the minimum, with no snapshot yet");
  assert.equal(logOutgrewSnapshot(64 * mib, 0, 64 * mib), true);
  assert.equal(logOutgrewSnapshot(64 * mib, 100 * mib, 64 * mib), false, "smaller than the snapshot");
  assert.equal(logOutgrewSnapshot(100 * mib, 100 * mib, 64 * mib), true, "as large as the snapshot");
  assert.equal(logOutgrewSnapshot(100 * mib, 0, 0), false, "0 turns it off");
});

Deno.test("with timed snapshots off, a log that outgrows the last snapshot is cut by one", async () => {
  const storage = new SimStorage({ random: seededRandom(1) });
  const opened = await openPersistence(storage, { fsync: "no", clock: Date.now });
  const timers = new DurabilityTimers(opened.persistence, opened.staging, silentLogger());
  timers.start(config(["--appendfsync", "no", "--snapshot-interval-seconds", "0", "--log-rewrite-min-bytes", "4kb"]));
  try {
    // One key rewritten: the log grows with every write, the dataset (and so a snapshot) does not.
    for (let i = 0; i < 100; i++) await writeBatch(opened, [set("k", "v".repeat(100) + i)]);
    assert.ok(opened.persistence.status().logBytes > 10_000);
    await eventually(() => opened.persistence.status().lastSnapshotSeq === 100, "a snapshot is taken");
    await eventually(() => opened.persistence.status().logBytes < 4096, "the log is cut");
  } finally {
    timers.stop();
  }
});
