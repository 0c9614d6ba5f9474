import assert from "node:assert/strict";
import { setImmediate } from "node:timers";
import { Store } from "../store/store.ts";
import { NO_CRASH } from "./crashpoints.ts";
import { SimStorage } from "./sim_storage.ts";
import { writeSnapshotFile } from "./snapshot_format.ts";

Deno.test("a snapshot lets the event loop run between chunks, even when its writes never wait", async () => {
  const store = new Store();
  for (let i = 0; i < 20_000; i++) {
    store.apply({ kind: "set", key: `k${i}`, value: "v".repeat(100), expiresAtMs: null });
  }
  // SimStorage completes every write at once, as a synchronous write to the page cache
  // does: only the writer's own yields let other work in.
  const storage = new SimStorage({ random: Math.random });
  let turns = 0;
  let running = true;
  const tick = () => {
    if (!running) return;
    turns++;
    setImmediate(tick);
  };
  setImmediate(tick);
  const written = await writeSnapshotFile(
    storage,
    { store, committedSeq: 0 },
    { logId: "log", replid: "r", seq: 0, createdAtMs: 0 },
    { chunkBytes: 16 * 1024, fsyncIntervalBytes: 1024 * 1024, crash: NO_CRASH },
  );
  running = false;
  const chunks = Math.floor(written.bytes / (16 * 1024));
  assert.equal(written.keys, 20_000);
  assert.ok(chunks > 100, `${chunks} chunks`);
  assert.ok(turns >= chunks / 2, `the event loop ran ${turns} times during ${chunks} chunks`);
});
