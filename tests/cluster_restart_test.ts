/**
 * The router's state survives it: a restarted router routes by the ring it was changed
 * to, and a router killed in the middle of adding a shard finishes the move when it
 * starts again, losing no write it acknowledged before or after the crash.
 */

import assert from "node:assert/strict";
import { KvClient } from "../src/client/client.ts";
import { ClusterClient } from "../src/client/cluster_client.ts";
import type { ClusterStatusResponse } from "../src/transport/messages.ts";
import { keysOn, startCluster, startRouter } from "./helpers/cluster_process.ts";
import { runKvstore, waitUntil } from "./helpers/server_process.ts";
import { type KeyState, verifyCluster, WriteLoad } from "./helpers/write_load.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

async function status(address: string): Promise<ClusterStatusResponse> {
  using admin = new ClusterClient(address);
  return await admin.status();
}

Deno.test("smoke: a restarted router keeps the ring add-shard changed, whatever --shards says", opts, async () => {
  await using cluster = await startCluster(2);
  const original = cluster.shards.map((shard) => shard.address);
  const third = await cluster.addProcess();
  const added = await runKvstore(["cluster", "add-shard", third.address, "--endpoint", cluster.router.address]);
  assert.equal(added.code, 0, added.stderr);
  using client = cluster.client();
  const keys = Array.from({ length: 300 }, (_, i) => `k${i}`);
  await client.mset(keys.map((key) => ({ key, value: `v-${key}` })));
  const onThird = (await keysOn(third.address)).size;
  assert.ok(onThird > 30, `the third shard holds ${onThird} keys`);

  const dataDir = await Deno.makeTempDir({ prefix: "kvstore-router-" });
  try {
    await Deno.copyFile(`${cluster.router.dataDir}/kvstore-cluster.json`, `${dataDir}/kvstore-cluster.json`);
    await cluster.router.stop("SIGTERM");
    // Restarted as it was first started: the state file wins over the stale --shards.
    await using restarted = await startRouter({ shards: original, dataDir });
    assert.match(restarted.stderr, /--shards differs from the ring in the state file, which wins/);
    assert.equal((await status(restarted.address)).shards.length, 3);
    using again = new KvClient(restarted.address);
    assert.deepEqual(await again.mget(keys), keys.map((key) => `v-${key}`));
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("a router killed while adding a shard finishes the move when it starts again", opts, async () => {
  await using cluster = await startCluster(3, ["--migration-batch-keys", "20", "--migration-pause-ms", "20"]);
  using client = cluster.client(20_000);
  const keys = Array.from({ length: 3000 }, (_, i) => `key:${i}`);
  const deadline = Date.now() + 3_600_000;
  for (let start = 0; start < keys.length; start += 1000) {
    await client.mset(
      keys.slice(start, start + 1000).map((key, i) => ({ key, value: `v-${key}`, expiresAtMs: deadline + i })),
    );
  }
  const fourth = await cluster.addProcess();
  const detached = await runKvstore([
    "cluster",
    "add-shard",
    fourth.address,
    "--detach",
    "--endpoint",
    cluster.router.address,
  ]);
  assert.equal(detached.code, 0, detached.stderr);
  assert.match(detached.stdout, /^Started: adding shard/);
  await waitUntil(
    async () => Number((await status(cluster.router.address)).migration?.keys_moved ?? 0) > 40,
    "keys move",
  );
  const dataDir = cluster.router.dataDir;
  const copy = await Deno.makeTempDir({ prefix: "kvstore-router-" });
  try {
    await cluster.router.kill();
    await Deno.copyFile(`${dataDir}/kvstore-cluster.json`, `${copy}/kvstore-cluster.json`);
    const saved = JSON.parse(await Deno.readTextFile(`${copy}/kvstore-cluster.json`));
    assert.equal(saved.migration.kind, "add", "the state file records the unfinished move");
    assert.equal(saved.migration.shard.master, fourth.address);

    await using restarted = await startRouter({ dataDir: copy });
    await restarted.waitForLog(/Resuming the rebalancing the state file records/);
    using again = new KvClient(restarted.address, { deadlineMs: 20_000 });
    // Mid-move, every key is still readable, wherever it is.
    assert.deepEqual(await again.mget(keys), keys.map((key) => `v-${key}`));
    await waitUntil(
      async () => (await status(restarted.address)).migration === null,
      "the move completes",
      60_000,
      200,
    );
    const done = await status(restarted.address);
    assert.equal(done.shards.length, 4);
    assert.equal(Number(done.epoch), 3);
    const ring = cluster.ring();
    const held = await Promise.all(cluster.shards.map((shard) => keysOn(shard.address)));
    cluster.shards.forEach((shard, i) => {
      for (const key of held[i].keys()) assert.equal(ring.owner(key), shard.address, key);
    });
    keys.forEach((key, i) => {
      const owner = cluster.shards.findIndex((shard) => shard.address === ring.owner(key));
      assert.deepEqual(held[owner].get(key), { value: `v-${key}`, expiresAtMs: deadline + (i % 1000) }, key);
    });
  } finally {
    await Deno.remove(copy, { recursive: true });
  }
});

Deno.test("a router killed mid-move under write load loses no acknowledged write once restarted", opts, async () => {
  await using cluster = await startCluster(3, ["--migration-batch-keys", "20", "--migration-pause-ms", "10"]);
  using client = cluster.client(20_000);
  const initial = new Map<string, KeyState>();
  const entries = Array.from({ length: 4000 }, (_, n) => {
    const expiresAtMs = n % 3 === 0 ? Date.now() + 3_600_000 + n : undefined;
    initial.set(`key:${n}`, { value: `v${n}`, expiresAtMs: expiresAtMs ?? null, approximate: false });
    return { key: `key:${n}`, value: `v${n}`, expiresAtMs };
  });
  for (let start = 0; start < entries.length; start += 2000) await client.mset(entries.slice(start, start + 2000));
  const fourth = await cluster.addProcess();
  const load = new WriteLoad(cluster.router.address, initial, 4);
  load.start();
  const copy = await Deno.makeTempDir({ prefix: "kvstore-router-" });
  try {
    const detached = await runKvstore(
      ["cluster", "add-shard", fourth.address, "--detach", "--endpoint", cluster.router.address],
    );
    assert.equal(detached.code, 0, detached.stderr);
    await waitUntil(
      async () => Number((await status(cluster.router.address)).migration?.keys_moved ?? 0) > 100,
      "keys move",
    );
    // Calls in flight at the kill fail (the load marks their keys uncertain); the others
    // were acknowledged, and must survive.
    const address = cluster.router.address;
    await cluster.router.kill();
    await Deno.copyFile(`${cluster.router.dataDir}/kvstore-cluster.json`, `${copy}/kvstore-cluster.json`);
    const opsBefore = load.ops;
    cluster.router = await startRouter({ dataDir: copy, address });
    await cluster.router.waitForLog(/Resuming the rebalancing the state file records/);
    // A client's link to the old router may still be backing off for a moment.
    await waitUntil(
      () => status(address).then((now) => now.migration === null, () => false),
      "the move completes",
      60_000,
      200,
    );
    await waitUntil(() => Promise.resolve(load.ops > opsBefore + 50), "writes go on through the new router");
    await load.stop();
    assert.deepEqual(load.mismatches, [], "every read saw the last acknowledged write");
    await verifyCluster(address, cluster.shards.map((shard) => shard.address), cluster.ring(), load);
  } finally {
    await load.stop();
    await Deno.remove(copy, { recursive: true });
  }
});
