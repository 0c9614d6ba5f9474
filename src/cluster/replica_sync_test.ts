import assert from "node:assert/strict";
import type { InfoResponse } from "../transport/messages.ts";
import { ReplicaSyncCache, syncVerdict } from "./replica_sync.ts";

Deno.test("a replica that has not finished its first sync is syncing; masters and synced replicas are not", () => {
  const info = (fields: Partial<InfoResponse>) => fields as InfoResponse;
  assert.equal(syncVerdict(info({ role: "replica", first_sync_done: false })), "syncing");
  assert.equal(syncVerdict(info({ role: "replica" })), "syncing", "a replica that does not say has not");
  assert.equal(syncVerdict(info({ role: "replica", first_sync_done: true })), "synced");
  assert.equal(syncVerdict(info({ role: "master", first_sync_done: true })), "synced");
});

Deno.test("reads pass over a replica known to be syncing, and ask again once the verdict is old", () => {
  let nowMs = 0;
  const cache = new ReplicaSyncCache({ clock: () => nowMs, checkMs: 1000 });
  const replicas = ["r1", "r2"];
  assert.equal(cache.known("r1"), undefined, "never asked: ask first");
  assert.equal(cache.choose(replicas, 0), "r1");

  cache.record("r1", "syncing");
  cache.record("r2", "synced");
  assert.equal(cache.choose(replicas, 0), "r2", "the next one in turn");
  assert.equal(cache.choose(replicas, 1), "r2");
  cache.record("r2", "syncing");
  assert.equal(cache.choose(replicas, 0), undefined, "every replica syncing: the master answers");

  nowMs = 999;
  assert.equal(cache.known("r1"), "syncing");
  nowMs = 1000;
  assert.equal(cache.known("r1"), undefined, "an old verdict is asked again");
  assert.equal(cache.choose(replicas, 0), "r1");
});
