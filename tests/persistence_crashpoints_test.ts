/**
 * Every crash point a node reaches on its own (KVSTORE_CRASHPOINT), with real processes:
 * the node dies abruptly exactly there, and after a restart holds the same data, by
 * digest, as a clean run of the same writes.
 *
 * mid-replace is reached only by a full resync from a master (replication); the unit
 * tests of src/persistence crash there.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { KvClient } from "../src/client/client.ts";
import type { EntryInput } from "../src/client/client.ts";
import { digestOf, inParallel, SNAPSHOT_FILE, startOn, tempDataDir } from "./helpers/durability.ts";
import { waitUntil } from "./helpers/server_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** One write of the workload: an MSet of a few entries, some with absolute deadlines
 * (so a clean run reproduces them exactly), or a delete. */
type Write = { kind: "mset"; entries: EntryInput[] } | { kind: "delete"; key: string };

const DEADLINE_MS = Date.now() + 24 * 3_600_000;

function workload(): Write[] {
  const writes: Write[] = [];
  for (let i = 0; i < 40; i++) {
    writes.push({
      kind: "mset",
      entries: [
        { key: `k${i}`, value: `value ${i} `.repeat(20) },
        { key: `shared${i % 5}`, value: `${i}`, expiresAtMs: i % 2 === 0 ? DEADLINE_MS + i : undefined },
      ],
    });
    if (i % 4 === 3) writes.push({ kind: "delete", key: `k${i - 2}` });
  }
  return writes;
}

async function apply(client: KvClient, write: Write): Promise<void> {
  if (write.kind === "mset") await client.mset(write.entries);
  else await client.delete(write.key);
}

/** Where the workload calls Snapshot: after this many writes (twice, so that a crash
 * in the second snapshot has a first one to keep). */
const SNAPSHOT_AFTER = [15, 35];

interface CrashCase {
  readonly spec: string;
  /** Whether the write in flight when the process died is in the log (recovered). */
  readonly inFlightWriteKept: boolean;
  /** Whether the crash comes in the second snapshot (else in a write). */
  readonly inSnapshot: boolean;
}

const CASES: CrashCase[] = [
  { spec: "after-append-before-sync:25", inFlightWriteKept: true, inSnapshot: false },
  { spec: "after-append-before-ack:25", inFlightWriteKept: true, inSnapshot: false },
  { spec: "mid-snapshot-write:2", inFlightWriteKept: false, inSnapshot: true },
  { spec: "before-snapshot-rename:2", inFlightWriteKept: false, inSnapshot: true },
  { spec: "after-snapshot-rename:2", inFlightWriteKept: false, inSnapshot: true },
  { spec: "before-log-cut:2", inFlightWriteKept: false, inSnapshot: true },
  { spec: "mid-log-cut:2", inFlightWriteKept: false, inSnapshot: true },
  { spec: "after-log-cut:2", inFlightWriteKept: false, inSnapshot: true },
];

/** Runs the workload until the node dies; returns the writes the recovered node must
 * hold, in order. */
async function runUntilCrash(address: string, crash: CrashCase): Promise<Write[]> {
  using client = new KvClient(address);
  const done: Write[] = [];
  const writes = workload();
  for (let i = 0; i < writes.length; i++) {
    if (SNAPSHOT_AFTER.includes(i)) {
      try {
        await client.snapshot();
      } catch {
        assert.ok(crash.inSnapshot && i === SNAPSHOT_AFTER[1], `${crash.spec}: died in the snapshot after write ${i}`);
        return done;
      }
    }
    try {
      await apply(client, writes[i]);
    } catch {
      assert.ok(!crash.inSnapshot, `${crash.spec}: died in write ${i}`);
      return crash.inFlightWriteKept ? [...done, writes[i]] : done;
    }
    done.push(writes[i]);
  }
  throw new Error(`${crash.spec}: the node never crashed`);
}

Deno.test("a crash at each crash point recovers to the digest of a clean run of the same writes", opts, async () => {
  await inParallel(CASES, 3, async (crash) => {
    await using dir = await tempDataDir();
    await using crashing = await startOn(dir.path, { env: { KVSTORE_CRASHPOINT: crash.spec } });
    const kept = await runUntilCrash(crashing.address, crash);
    const status = await crashing.exited;
    assert.equal(status.signal, "SIGKILL", `${crash.spec}: ${JSON.stringify(status)}`);
    assert.match(crashing.stderr, new RegExp(`crash point ${crash.spec.split(":")[0]} reached`));
    if (crash.inSnapshot) {
      // The first snapshot is still there, whatever the second one got to.
      assert.ok((await Deno.stat(join(dir.path, SNAPSHOT_FILE))).size > 0);
    }

    await using recovered = await startOn(dir.path);
    await using cleanDir = await tempDataDir();
    await using clean = await startOn(cleanDir.path);
    {
      using client = new KvClient(clean.address);
      for (const write of kept) await apply(client, write);
    }
    const [got, want] = [await digestOf(recovered.address), await digestOf(clean.address)];
    assert.equal(got.digest, want.digest, `${crash.spec}: ${kept.length} writes kept`);
    assert.equal(got.keys, want.keys);
    assert.equal(got.seq, want.seq, `${crash.spec}: the history goes on at the same seq`);

    // And the recovered node keeps working: a snapshot and a write, then one more restart.
    using client = new KvClient(recovered.address);
    await client.snapshot();
    await client.set("after", "recovery");
    await recovered.kill();
    await using again = await startOn(dir.path);
    await waitUntil(async () => (await digestOf(again.address)).keys === want.keys + 1, "the last write is there");
  });
});
