/**
 * The sharded client library against real shards: it routes each key to the owner the
 * router would pick, splits and merges batches, scans every shard, reads from replicas
 * when asked, and refuses to route by a ring that is being changed.
 */

import assert from "node:assert/strict";
import { ShardedClient } from "../src/client/sharded_client.ts";
import { keysOn, startCluster } from "./helpers/cluster_process.ts";
import { runKvstore, startServer } from "./helpers/server_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test(
  "smoke: a sharded client puts each key where the router would, and reads the router's writes",
  opts,
  async () => {
    await using cluster = await startCluster(3);
    using sharded = await ShardedClient.fromRouter(cluster.router.address);
    using router = cluster.client();
    assert.deepEqual(
      sharded.shards.map((spec) => spec.name).sort(),
      cluster.shards.map((shard) => shard.address).sort(),
    );

    const keys = Array.from({ length: 200 }, (_, i) => `user:${i}`);
    assert.equal(await sharded.mset(keys.slice(0, 100).map((key) => ({ key, value: `s-${key}`, ttlMs: 60_000 }))), 100);
    await router.mset(keys.slice(100).map((key) => ({ key, value: `r-${key}` })));
    const expected = keys.map((key, i) => `${i < 100 ? "s" : "r"}-${key}`);
    assert.deepEqual(await sharded.mget(keys), expected, "the client reads what the router wrote");
    assert.deepEqual(await router.mget(keys), expected, "the router reads what the client wrote");

    const ring = cluster.ring();
    for (const shard of cluster.shards) {
      for (const key of (await keysOn(shard.address)).keys()) assert.equal(ring.owner(key), shard.address);
    }
    for (const key of keys.slice(0, 10)) assert.equal(sharded.owner(key).name, ring.owner(key));

    assert.equal(await sharded.set("k", "v"), true);
    assert.equal(await sharded.get("k"), "v");
    assert.equal(await sharded.contains("k"), true);
    assert.equal(await sharded.expire("k", 50), true);
    assert.ok([49, 50].includes(await sharded.ttl("k")));
    assert.equal(await sharded.delete("k"), true);
    assert.equal(await sharded.get("k"), undefined);

    const scanned: string[] = [];
    for await (const entry of sharded.scanAll({ pageSize: 33, prefix: "user:" })) scanned.push(entry.key);
    assert.deepEqual(scanned.sort(), [...keys].sort());
    const infos = await sharded.info();
    assert.equal([...infos.values()].reduce((sum, info) => sum + Number(info.keys), 0), 200);
  },
);

Deno.test("a sharded client reads from replicas when asked, and names the shard that is down", opts, async () => {
  await using master = await startServer();
  await using replica = await startServer();
  await using other = await startServer();
  using client = new ShardedClient([`a=${master.address}+${replica.address}`, `b=${other.address}`], {
    deadlineMs: 10_000,
  });
  const key = ["k", "k1", "k2", "k3", "k4", "k5"].find((candidate) => client.owner(candidate).name === "a")!;
  await runKvstore(["set", key, "replica copy", "--endpoint", replica.address]);
  await client.set(key, "master copy");
  assert.equal(await client.get(key), "master copy");
  assert.equal(await client.get(key, { readFrom: "replica" }), "replica copy");
  assert.deepEqual(await client.mget([key], { readFrom: "replica" }), ["replica copy"]);

  await other.kill();
  const onB = ["x", "y", "z", "w", "v", "u", "t"].find((candidate) => client.owner(candidate).name === "b")!;
  await assert.rejects(client.get(onB), new RegExp(`UNAVAILABLE: .*\\(from ${other.address}\\)`));
});

Deno.test("a sharded client refuses a router's ring while the router is changing it", opts, async () => {
  await using cluster = await startCluster(2, ["--migration-batch-keys", "5", "--migration-pause-ms", "50"]);
  using client = cluster.client();
  await client.mset(Array.from({ length: 400 }, (_, i) => ({ key: `k${i}`, value: "v" })));
  const third = await cluster.addProcess();
  const started = await runKvstore([
    "cluster",
    "add-shard",
    third.address,
    "--detach",
    "--endpoint",
    cluster.router.address,
  ]);
  assert.equal(started.code, 0, started.stderr);
  await assert.rejects(ShardedClient.fromRouter(cluster.router.address), /is adding shard .*use the router until/);
});
