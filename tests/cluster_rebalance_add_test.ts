/**
 * Growing a cluster under load: `kvstore cluster add-shard` moves exactly the keys the
 * new ring gives the new shard, with their TTLs, while clients keep writing through the
 * router, and no acknowledged write is lost.
 */

import assert from "node:assert/strict";
import { ClusterClient } from "../src/client/cluster_client.ts";
import { keysOn, startCluster } from "./helpers/cluster_process.ts";
import { runKvstore } from "./helpers/server_process.ts";
import { type KeyState, verifyCluster, WriteLoad } from "./helpers/write_load.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

const KEYS = 8000;

Deno.test(
  "adding a 4th shard under write load moves exactly its keys, with their TTLs, losing nothing",
  opts,
  async () => {
    // Small, paced steps make the move last long enough to overlap the writers.
    await using cluster = await startCluster(3, ["--migration-batch-keys", "40", "--migration-pause-ms", "5"]);
    using client = cluster.client(20_000);
    const initial = new Map<string, KeyState>();
    const deadlineBase = Date.now() + 3_600_000;
    for (let start = 0; start < KEYS; start += 2000) {
      const entries = Array.from({ length: 2000 }, (_, i) => {
        const n = start + i;
        const expiresAtMs = n % 3 === 0 ? deadlineBase + n : undefined;
        initial.set(`key:${n}`, { value: `v${n}`, expiresAtMs: expiresAtMs ?? null, approximate: false });
        return { key: `key:${n}`, value: `v${n}`, expiresAtMs };
      });
      await client.mset(entries);
    }
    const before = cluster.ring();
    const fourth = await cluster.addProcess();
    const after = cluster.ring();
    const moving = [...initial.keys()].filter((key) => before.owner(key) !== after.owner(key));
    assert.ok(
      moving.every((key) => after.owner(key) === fourth.address),
      "the ring moves keys only onto the new shard",
    );

    const load = new WriteLoad(cluster.router.address, initial, 6);
    load.start();
    const added = await runKvstore(["cluster", "add-shard", fourth.address, "--endpoint", cluster.router.address], {
      timeoutMs: 90_000,
    });
    await load.stop();

    assert.equal(added.code, 0, added.stderr);
    assert.match(added.stdout, new RegExp(`^Added shard "${fourth.address}": moved \\d+ keys in [0-9.]+ s`));
    assert.match(added.stderr, /adding shard .*: \d+ of about \d+ keys moved \(\d+%\), \d+ of \d+ scanned/);
    assert.deepEqual(load.errors, [], "no call failed while keys moved");
    assert.deepEqual(load.mismatches, [], "every read saw the last acknowledged write");
    assert.ok(load.ops > 100, `the writers made ${load.ops} calls during the move`);

    const counts = await verifyCluster(
      cluster.router.address,
      cluster.shards.map((shard) => shard.address),
      after,
      load,
    );
    // The mover counts the keys it moved itself; a write to a moving key moves it first,
    // so the mover finds fewer than the ring moves, and the writers' new keys add a few.
    const moved = Number(/moved (\d+) keys/.exec(added.stdout)![1]);
    assert.ok(moved > moving.length / 3 && moved < moving.length + 300, `moved ${moved}, ring says ${moving.length}`);
    assert.ok(counts.get(fourth.address)! > KEYS / 8, `the new shard holds ${counts.get(fourth.address)} keys`);

    using admin = new ClusterClient(cluster.router.address);
    const status = await admin.status();
    assert.equal(status.migration, null);
    assert.equal(Number(status.epoch), 3, "one change recorded at its start and at its end");
    assert.deepEqual(status.shards.map((shard) => shard.state), ["serving", "serving", "serving", "serving"]);
  },
);

Deno.test("adding a shard moves keys whose values together are larger than a shard's message limit", opts, async () => {
  // Shards and router take values up to 64 KiB, so one message carries about 192 KiB; the
  // keys that move hold about 2 MiB, far more than one step's calls could carry whole.
  const limits = ["--max-value-bytes", "64kb"];
  await using cluster = await startCluster(2, limits, limits);
  using client = cluster.client(20_000);
  const value = (n: number) => `${n}:`.padEnd(60_000, "v");
  const keys = Array.from({ length: 100 }, (_, n) => `big:${n}`);
  for (let n = 0; n < keys.length; n += 2) {
    await client.mset(keys.slice(n, n + 2).map((key, i) => ({ key, value: value(n + i), expiresAtMs: DEADLINE_MS })));
  }
  const fourth = await cluster.addProcess();
  const added = await runKvstore(["cluster", "add-shard", fourth.address, "--endpoint", cluster.router.address], {
    timeoutMs: 30_000,
  });
  assert.equal(added.code, 0, added.stderr);
  assert.doesNotMatch(added.stderr, /waiting/, "no step was refused");
  const after = cluster.ring();
  const held = await Promise.all(cluster.shards.map((shard) => keysOn(shard.address)));
  assert.ok(held[2].size > 15, `the new shard holds ${held[2].size} keys`);
  keys.forEach((key, n) => {
    const owner = cluster.shards.findIndex((shard) => shard.address === after.owner(key));
    assert.deepEqual(held[owner].get(key), { value: value(n), expiresAtMs: DEADLINE_MS }, key);
    assert.equal(held.filter((keys) => keys.has(key)).length, 1, `${key} is on one shard only`);
  });
});

const DEADLINE_MS = Date.now() + 3_600_000;

Deno.test(
  "a scan through the router goes on across a whole add-shard and the end of a remove-shard, missing no key",
  opts,
  async () => {
    await using cluster = await startCluster(2, ["--migration-batch-keys", "20", "--migration-pause-ms", "20"]);
    using client = cluster.client(20_000);
    using admin = new ClusterClient(cluster.router.address);
    const keys = Array.from({ length: 600 }, (_, i) => `key:${i}`);
    await client.mset(keys.map((key) => ({ key, value: "v" })));
    const epochOf = (cursor: string) => Number(cursor.split(".")[1]);
    /** Scans every key: one page, then `change`, then the rest. */
    const scanAcross = async (change: () => Promise<void>) => {
      const first = await client.scan({ limit: 50 });
      const found = first.entries.map((entry) => entry.key);
      await change();
      let cursor = first.cursor;
      const epochBefore = epochOf(cursor);
      while (cursor !== "") {
        const page = await client.scan({ cursor, limit: 50 });
        found.push(...page.entries.map((entry) => entry.key));
        cursor = page.cursor;
        assert.ok(found.length < 10 * keys.length, "the scan ends");
      }
      return { found: [...new Set(found)].sort(), epochBefore };
    };
    const added = await cluster.addProcess();
    const whole = await scanAcross(async () => {
      for await (const _ of admin.addShard(added.address));
    });
    assert.deepEqual(whole.found, [...keys].sort());
    assert.equal(
      Number((await admin.status()).epoch),
      whole.epochBefore + 2,
      "the scan spanned the add's start and end",
    );

    // The scan begins while the removal moves keys, and goes on after it ends.
    const removal = admin.removeShard(cluster.shards[0].address);
    assert.equal((await removal.next()).value?.state, "moving");
    const end = await scanAcross(async () => {
      for await (const _ of removal);
    });
    assert.deepEqual(end.found, [...keys].sort());
    assert.equal(Number((await admin.status()).epoch), end.epochBefore + 1, "the scan spanned the removal's end");
  },
);
