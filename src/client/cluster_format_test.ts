import assert from "node:assert/strict";
import { plural } from "../errors.ts";
import type { ClusterStatusResponse, MigrationStatus } from "../transport/messages.ts";
import { describeProgress, formatClusterStatus } from "./cluster_format.ts";

Deno.test("counts of one read in the singular: 1 key, 1 shard, 1 vnode", () => {
  assert.equal(plural(1, "key"), "1 key");
  assert.equal(plural(0, "key"), "0 keys");
  assert.equal(plural("2", "entry", "entries"), "2 entries");
  const status = {
    epoch: 1,
    vnodes: 1,
    shards: [{
      name: "a",
      master: "127.0.0.1:7101",
      replicas: [],
      state: "serving",
      reachable: true,
      keys: 1,
      ring_share: 1,
      error: "",
    }],
    migration: null,
  } as unknown as ClusterStatusResponse;
  assert.equal(formatClusterStatus(status)[0], "1 shard, 1 vnode per shard, epoch 1, stable");
  const done = {
    kind: "remove",
    shard: "b",
    state: "done",
    keys_moved: 1,
    keys_to_move: 1,
  } as unknown as MigrationStatus;
  assert.equal(describeProgress(done), 'removing shard "b": done; 1 key moved');
  const moving = {
    kind: "add",
    shard: "b",
    state: "moving",
    keys_moved: 0,
    keys_to_move: 1,
    keys_scanned: 5,
    keys_to_scan: 10,
  } as unknown as MigrationStatus;
  assert.equal(describeProgress(moving), 'adding shard "b": 0 of about 1 key moved (0%), 5 of 10 scanned');
});
