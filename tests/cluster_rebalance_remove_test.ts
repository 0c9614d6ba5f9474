/**
 * Shrinking a cluster under load: `kvstore cluster remove-shard` moves every key of the
 * leaving shard to the shards that own it without it, while clients keep writing, and
 * leaves the shard empty; `--forget` drops a dead shard at once.
 */

import assert from "node:assert/strict";
import { ClusterClient } from "../src/client/cluster_client.ts";
import { keysOn, startCluster } from "./helpers/cluster_process.ts";
import { runKvstore } from "./helpers/server_process.ts";
import { type KeyState, verifyCluster, WriteLoad } from "./helpers/write_load.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test(
  "removing a shard under write load moves all its keys to their new owners, losing nothing",
  opts,
  async () => {
    await using cluster = await startCluster(4, ["--migration-batch-keys", "40", "--migration-pause-ms", "5"]);
    using client = cluster.client(20_000);
    const initial = new Map<string, KeyState>();
    const entries = Array.from({ length: 6000 }, (_, n) => {
      const expiresAtMs = n % 4 === 0 ? Date.now() + 3_600_000 + n : undefined;
      initial.set(`key:${n}`, { value: `v${n}`, expiresAtMs: expiresAtMs ?? null, approximate: false });
      return { key: `key:${n}`, value: `v${n}`, expiresAtMs };
    });
    for (let start = 0; start < entries.length; start += 2000) await client.mset(entries.slice(start, start + 2000));
    const leaving = cluster.shards[2];
    const before = cluster.ring();
    const remaining = cluster.shards.filter((shard) => shard !== leaving);
    const after = cluster.ring(remaining);
    const held = (await keysOn(leaving.address)).size;
    assert.ok(held > 800, `the leaving shard holds ${held} keys`);
    for (const key of initial.keys()) {
      if (before.owner(key) !== leaving.address) {
        assert.equal(
          after.owner(key),
          before.owner(key),
          "only its keys move",
        );
      }
    }

    const load = new WriteLoad(cluster.router.address, initial, 6);
    load.start();
    const removed = await runKvstore(
      ["cluster", "remove-shard", leaving.address, "--endpoint", cluster.router.address, "--json"],
      { timeoutMs: 90_000 },
    );
    await load.stop();

    assert.equal(removed.code, 0, removed.stderr);
    const progress = removed.stdout.trim().split("\n").map((line) => JSON.parse(line));
    assert.ok(progress.length >= 2, "progress streams while keys move");
    assert.deepEqual(progress.map((status) => status.kind).filter((kind) => kind !== "remove"), []);
    const last = progress.at(-1);
    assert.equal(last.state, "done");
    assert.equal(typeof last.keys_moved, "number", "counts print as numbers, as info --json prints them");
    // A write to one of the leaving shard's keys moves it first, so the mover finds fewer.
    assert.ok(Number(last.keys_moved) > held / 3, `moved ${last.keys_moved} of the ${held} keys it held`);
    assert.deepEqual(load.errors, [], "no call failed while keys moved");
    assert.deepEqual(load.mismatches, [], "every read saw the last acknowledged write");

    await verifyCluster(cluster.router.address, cluster.shards.map((shard) => shard.address), after, load);
    assert.equal((await keysOn(leaving.address)).size, 0, "the removed shard is left empty");
    using admin = new ClusterClient(cluster.router.address);
    const status = await admin.status();
    assert.deepEqual(status.shards.map((shard) => shard.name).sort(), remaining.map((shard) => shard.address).sort());
  },
);

Deno.test("a dead shard is refused for a move, and --forget drops it from the ring at once", opts, async () => {
  await using cluster = await startCluster(3);
  using client = cluster.client();
  await client.mset(Array.from({ length: 100 }, (_, i) => ({ key: `k${i}`, value: "v" })));
  const dead = cluster.shards[0];
  await dead.kill();
  const kv = (...args: string[]) => runKvstore([...args, "--endpoint", cluster.router.address]);

  const refused = await kv("cluster", "remove-shard", dead.address);
  assert.equal(refused.code, 3);
  assert.match(refused.stderr, /Cannot remove shard .*Its keys can only move while it answers; .* --forget/);

  const forgotten = await kv("cluster", "remove-shard", dead.address, "--forget");
  assert.equal(forgotten.code, 0, forgotten.stderr);
  assert.match(forgotten.stdout, new RegExp(`^Forgot shard "${dead.address}": moved 0 keys`));
  const ring = cluster.ring(cluster.shards.slice(1));
  const survivors = Array.from({ length: 100 }, (_, i) => `k${i}`).filter((key) =>
    cluster.ring().owner(key) !== dead.address
  );
  assert.deepEqual(await client.mget(survivors), survivors.map(() => "v"), "keys of the other shards are still served");
  await client.set("fresh", "x");
  assert.ok(ring.owner("fresh") !== dead.address);
  assert.equal(await client.get("fresh"), "x", "every key has a live owner again");
});
