import assert from "node:assert/strict";
import { DamagedFileError } from "./damage.ts";
import { LOG_FILE } from "./log_format.ts";
import { repairDataDir } from "./repair.ts";
import { seededRandom, SimStorage } from "./sim_storage.ts";
import { SNAPSHOT_FILE } from "./snapshot_format.ts";
import { contents, openPersistence, set, writeBatch } from "./test_support.ts";

const clock = () => Date.UTC(2026, 10, 25, 16, 4, 5);

async function repair(storage: SimStorage, check = false) {
  const lines: string[] = [];
  const result = await repairDataDir({ storage, dataDir: "/data", clock, check, report: (line) => lines.push(line) });
  return { ...result, lines };
}

function restart(storage: SimStorage): SimStorage {
  return storage.afterProcessCrash(seededRandom(7));
}

Deno.test("repair finds nothing to do in a healthy directory and reports its dataset", async () => {
  const storage = new SimStorage({ random: seededRandom(1) });
  const opened = await openPersistence(storage);
  await writeBatch(opened, [set("a", "1"), set("b", "2")]);
  const result = await repair(restart(storage));
  assert.deepEqual(result.problems, []);
  assert.deepEqual(result.fixes, []);
  assert.equal(result.dataset?.keys, 2);
  assert.equal(result.dataset?.seq, 2);
  assert.equal(result.dataset?.replid, opened.persistence.replid);
});

Deno.test("repair cuts a log at a damaged batch, sets the rest aside, and the node then starts", async () => {
  const storage = new SimStorage({ random: seededRandom(1) });
  const opened = await openPersistence(storage);
  await writeBatch(opened, [set("a", "1")]);
  const damageAt = storage.bytes(LOG_FILE)!.length;
  await writeBatch(opened, [set("b", "2")]);
  await writeBatch(opened, [set("c", "3")]);
  const damaged = restart(storage);
  const bytes = damaged.bytes(LOG_FILE)!.slice();
  bytes[damageAt + 20] ^= 1;
  damaged.setBytes(LOG_FILE, bytes);
  await assert.rejects(openPersistence(restart(damaged)), DamagedFileError);

  const checked = await repair(damaged, true);
  assert.equal(checked.problems.length, 1);
  assert.deepEqual(checked.fixes, []);
  assert.deepEqual(damaged.bytes(LOG_FILE), bytes, "check mode changes nothing");

  const repaired = await repair(damaged);
  assert.equal(repaired.fixes.length, 1);
  assert.match(
    repaired.fixes[0],
    new RegExp(`cut /sim/kvstore\\.aof at offset ${damageAt}, keeping the batches before it`),
  );
  assert.equal(repaired.dataset?.keys, 1);
  const aside = damaged.names().find((name) => name.startsWith("kvstore.aof.cut-"));
  assert.equal(aside, "kvstore.aof.cut-2026-11-25T16-04-05Z");
  assert.deepEqual(damaged.bytes(aside!), bytes.subarray(damageAt));
  const started = await openPersistence(restart(damaged));
  assert.deepEqual(contents(started.store), { a: "1" });
  await writeBatch(started, [set("d", "4")]);
});

Deno.test("repair keeps the intact frames of a damaged snapshot and the log after it", async () => {
  const storage = new SimStorage({ random: seededRandom(1) });
  const opened = await openPersistence(storage);
  for (let i = 0; i < 20; i++) await writeBatch(opened, [set(`k${String(i).padStart(2, "0")}`, `value ${i}`)]);
  await opened.persistence.snapshot(opened.staging);
  await writeBatch(opened, [set("k19", "rewritten after the snapshot")]);
  const damaged = restart(storage);
  const bytes = damaged.bytes(SNAPSHOT_FILE)!.slice();
  bytes[bytes.length - 60] ^= 1;
  damaged.setBytes(SNAPSHOT_FILE, bytes);

  const repaired = await repair(damaged);
  assert.equal(repaired.fixes.length, 1);
  assert.match(repaired.fixes[0], /wrote a new one with the \d+ keys before offset \d+/);
  assert.ok(damaged.names().some((name) => name.startsWith("kvstore.rdb.damaged-")));
  const started = await openPersistence(restart(damaged));
  const keys = Object.keys(contents(started.store));
  assert.ok(keys.length > 5 && keys.length < 20, `${keys.length} keys kept`);
  assert.equal(started.store.peek("k00")?.value, "value 0");
  assert.equal(started.store.peek("k19")?.value, "rewritten after the snapshot", "the log after it is replayed");
});

Deno.test("repair stands in an empty snapshot for a missing one the log continues", async () => {
  const storage = new SimStorage({ random: seededRandom(1) });
  const opened = await openPersistence(storage);
  await writeBatch(opened, [set("a", "1")]);
  await opened.persistence.snapshot(opened.staging);
  await writeBatch(opened, [set("b", "2")]);
  const damaged = restart(storage);
  await damaged.remove(SNAPSHOT_FILE);
  const repaired = await repair(damaged);
  assert.match(repaired.fixes[0], /wrote an empty \/sim\/kvstore\.rdb at seq 1/);
  const started = await openPersistence(restart(damaged));
  assert.deepEqual(contents(started.store), { b: "2" });
  assert.equal(started.staging.committedSeq, 2);
});

Deno.test("repair sets aside a log that does not belong to the snapshot", async () => {
  const first = new SimStorage({ random: seededRandom(1) });
  const a = await openPersistence(first);
  await writeBatch(a, [set("a", "1")]);
  await a.persistence.snapshot(a.staging);
  const second = new SimStorage({ random: seededRandom(2) });
  const b = await openPersistence(second);
  await writeBatch(b, [set("b", "1")]);
  const mixed = restart(first);
  mixed.setBytes(LOG_FILE, second.bytes(LOG_FILE)!);
  const repaired = await repair(mixed);
  assert.match(repaired.fixes[0], /moved \/sim\/kvstore\.aof to \/sim\/kvstore\.aof\.unpaired-/);
  const started = await openPersistence(restart(mixed));
  assert.deepEqual(contents(started.store), { a: "1" });
});
