/**
 * A shard that goes down in the middle of a rebalancing: the move waits (and says why)
 * instead of hanging or giving up, calls for the shard's keys fail fast, and once the
 * shard is back (it lost its scan cursors with its process, not its data) the move
 * finishes with every key on its owner, with its value and deadline.
 */

import assert from "node:assert/strict";
import { ClusterClient } from "../src/client/cluster_client.ts";
import type { KvClientError } from "../src/client/client.ts";
import type { ClusterStatusResponse } from "../src/transport/messages.ts";
import { keysOn, startCluster } from "./helpers/cluster_process.ts";
import { runKvstore, startServer, waitUntil } from "./helpers/server_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** More keys per shard than a rebalancing scan page holds (MIGRATION_SCAN_PAGE_KEYS),
 * so the mover is part-way through a shard with a cursor open when the shard dies. */
const KEYS = 9000;

async function status(address: string): Promise<ClusterStatusResponse> {
  using admin = new ClusterClient(address);
  return await admin.status();
}

Deno.test(
  "a source shard killed while keys move makes the move wait, and it finishes when the shard is back",
  opts,
  async () => {
    await using cluster = await startCluster(3, ["--migration-batch-keys", "40", "--migration-pause-ms", "10"]);
    using client = cluster.client(20_000);
    const keys = Array.from({ length: KEYS }, (_, i) => `key:${i}`);
    const deadline = Date.now() + 3_600_000;
    const expiresAt = (i: number) => i % 3 === 0 ? deadline + i : undefined;
    for (let start = 0; start < KEYS; start += 2000) {
      await client.mset(
        keys.slice(start, start + 2000).map((key, i) => ({
          key,
          value: `v-${key}`,
          expiresAtMs: expiresAt(start + i),
        })),
      );
    }
    const fourth = await cluster.addProcess();
    const added = await runKvstore([
      "cluster",
      "add-shard",
      fourth.address,
      "--detach",
      "--endpoint",
      cluster.router.address,
    ]);
    assert.equal(added.code, 0, added.stderr);
    // The mover drains the shards in the order --shards gave them: kill the first mid-way.
    const victim = cluster.shards[0];
    await waitUntil(
      async () => Number((await status(cluster.router.address)).migration?.keys_moved ?? 0) > 20,
      "keys move",
    );
    await victim.kill();

    await waitUntil(
      async () => (await status(cluster.router.address)).migration?.state === "waiting",
      "the move waits for the dead shard",
    );
    const waiting = (await status(cluster.router.address)).migration!;
    // The step in flight when the shard died lost its connection; the retries cannot reach it.
    assert.match(waiting.error, new RegExp(`(Cannot reach|Connection to) shard "${victim.address}"`));
    const ring = cluster.ring();
    const stayingOnVictim = keys.find((key) => ring.owner(key) === victim.address)!;
    const started = performance.now();
    const error: KvClientError = await client.get(stayingOnVictim).then(
      () => assert.fail("a dead shard's key was read"),
      (error) => error,
    );
    assert.equal(error.codeName, "UNAVAILABLE");
    assert.ok(performance.now() - started < 3000, "a call for the dead shard's key fails fast");

    await using back = await startServer({ address: victim.address, dataDir: victim.dataDir });
    await waitUntil(
      async () => (await status(cluster.router.address)).migration === null,
      "the move completes",
      60_000,
      200,
    );
    const held = await Promise.all(cluster.shards.map((shard) => keysOn(shard.address)));
    assert.equal(held.reduce((sum, shard) => sum + shard.size, 0), KEYS, "no key lost, none on two shards");
    keys.forEach((key, i) => {
      const owner = cluster.shards.findIndex((shard) => shard.address === ring.owner(key));
      assert.deepEqual(held[owner].get(key), { value: `v-${key}`, expiresAtMs: expiresAt(i) ?? null }, key);
    });
    void back;
  },
);
