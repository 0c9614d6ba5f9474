/**
 * The sharded client library against real nodes (no router needed): the calls that take
 * options (a set with a TTL, a scan with the default page size), an MSet that one shard
 * fails, and replica reads that keep to the call's deadline when the replica, or every
 * node, hangs.
 */

import assert from "node:assert/strict";
import { KvClientError } from "../src/client/client.ts";
import { ShardedClient } from "../src/client/sharded_client.ts";
import { expectReadsFromReplicaOnceSynced, startMaster, startReplica } from "./helpers/replication.ts";
import { freePort, startServer, waitUntil } from "./helpers/server_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("a sharded client sets with a TTL, and a scan asked for 0 keys a page ends", opts, async () => {
  await using a = await startServer();
  await using b = await startServer();
  using client = new ShardedClient([`a=${a.address}`, `b=${b.address}`], { deadlineMs: 10_000 });
  assert.equal(await client.set("session", "x", { ttlMs: 60_000 }), true);
  assert.ok([59, 60].includes(await client.ttl("session")), "the TTL came with the value");
  await client.mset(Array.from({ length: 150 }, (_, i) => ({ key: `k${i}`, value: "v" })));

  const keys: string[] = [];
  const scan = client.scanAll({ pageSize: 0, prefix: "k" });
  // Bounded: a cursor that never moved would make this loop forever.
  for await (const entry of scan) {
    keys.push(entry.key);
    assert.ok(keys.length <= 150, "no key comes twice");
  }
  assert.equal(keys.length, 150);
});

Deno.test(
  "an MSet that one shard fails says what the other shards took, and that its outcome is unknown",
  opts,
  async () => {
    await using a = await startServer();
    await using b = await startServer();
    using client = new ShardedClient([`a=${a.address}`, `b=${b.address}`], { deadlineMs: 10_000 });
    const keys = Array.from({ length: 40 }, (_, i) => `k${i}`);
    const onA = keys.filter((key) => client.owner(key).name === "a");
    await b.kill();
    const error = await client.mset(keys.map((key) => ({ key, value: "v" }))).then(
      () => assert.fail("the MSet succeeded"),
      (error) => error,
    );
    assert.ok(error instanceof KvClientError, String(error));
    assert.equal(error.codeName, "UNAVAILABLE");
    assert.equal(error.transport, "unreached", "b never got its part");
    assert.equal(error.outcomeUnknown, true, "a took its part");
    assert.match(
      error.message,
      new RegExp(
        `; 1 other shard took its part, ${onA.length} of the ${keys.length} entries \\(an MSet across shards`,
      ),
    );
    assert.deepEqual(await Promise.all(onA.map((key) => client.get(key))), onA.map(() => "v"));
    // b's keys alone: nothing was applied, and the error says no more than b's.
    const alone = await client.mset(keys.filter((key) => !onA.includes(key)).map((key) => ({ key, value: "v" }))).then(
      () => assert.fail("the MSet succeeded"),
      (error) => error,
    );
    assert.ok(alone instanceof KvClientError);
    assert.equal(alone.outcomeUnknown, false);
    assert.doesNotMatch(alone.message, /took its part/);
  },
);

Deno.test("a replica read keeps to one deadline when the replica hangs, and when every node does", opts, async () => {
  await using master = await startMaster();
  await using replica = await startReplica(master);
  const deadlineMs = 2000;
  using client = new ShardedClient([`a=${master.address}+${replica.address}`], { deadlineMs, readFrom: "replica" });
  await client.set("k", "v");
  await waitUntil(async () => await client.get("k") === "v", "the replica has the write");
  const timed = async (read: Promise<unknown>) => {
    const startedMs = performance.now();
    const outcome = await read.then((value) => ({ value }), (error) => ({ error }));
    return { ...outcome, elapsedMs: performance.now() - startedMs };
  };

  replica.signal("SIGSTOP");
  try {
    // The replica gets half the time; the master answers within the other half.
    const fallback = await timed(client.get("k"));
    assert.equal((fallback as { value?: unknown }).value, "v");
    assert.ok(fallback.elapsedMs < deadlineMs, `answered in ${fallback.elapsedMs} ms, within the one deadline`);

    master.signal("SIGSTOP");
    try {
      const hung = await timed(client.get("k"));
      const error = (hung as { error?: unknown }).error;
      assert.ok(error instanceof KvClientError && error.codeName === "DEADLINE_EXCEEDED", String(error));
      assert.ok(hung.elapsedMs < deadlineMs + 500, `failed after ${hung.elapsedMs} ms, not twice the deadline`);
    } finally {
      master.signal("SIGCONT");
    }
  } finally {
    replica.signal("SIGCONT");
  }
});

Deno.test("replica reads skip a replica that has not synced yet, and use it once it has", opts, async () => {
  await using master = await startMaster();
  // This replica follows a master that is not there, so it never syncs and holds nothing:
  // read from, it would say "not found" for every key.
  await using replica = await startReplica(`127.0.0.1:${freePort()}`);
  // 2 s: with the master paused below, a read that still goes there fails within it.
  using client = new ShardedClient([`a=${master.address}+${replica.address}`], {
    deadlineMs: 2000,
    readFrom: "replica",
  });
  await client.set("k", "v");
  for (let i = 0; i < 3; i++) {
    assert.equal(await client.get("k"), "v", "read from the master, not the empty replica");
    assert.deepEqual(await client.mget(["k", "none"]), ["v", undefined]);
    assert.equal(await client.contains("k"), true);
    assert.equal(await client.ttl("k"), -1);
  }

  // Once it follows the master and has synced, reads go to it.
  await expectReadsFromReplicaOnceSynced(master, replica, () => client.get("k"));
});
