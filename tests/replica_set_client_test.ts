/**
 * KvReplicaSetClient against real nodes: roles discovered, writes to the master, reads
 * spread to replicas, failover when a node goes down, and deadlines that hold.
 */

import assert from "node:assert/strict";
import { KvClient, KvClientError } from "../src/client/client.ts";
import { KvReplicaSetClient } from "../src/client/replica_set_client.ts";
import { freePort, startServer, waitUntil } from "./helpers/server_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("writes find the master wherever it is listed; reads go where readFrom says", opts, async () => {
  await using master = await startServer();
  await using replica = await startServer({ args: ["--replica", "--master-address", master.address] });
  using group = new KvReplicaSetClient([replica.address, master.address], { readFrom: "replicas" });
  using fromMaster = new KvReplicaSetClient([replica.address, master.address]);

  // A replica is "syncing" until its first sync completes, which may come after it listens.
  await waitUntil(async () => (await group.discover()).get(replica.address) === "replica", "the replica synced");
  assert.deepEqual(
    Object.fromEntries(await group.discover()),
    { [replica.address]: "replica", [master.address]: "master" },
  );
  assert.equal(await group.set("k", "v"), true);
  assert.equal(await group.mset([{ key: "j", value: "w", ttlMs: 60_000 }]), 1);
  using direct = new KvClient(master.address);
  assert.equal(await direct.get("k"), "v");

  // Once replication brings the write to the replica, a read that succeeds while the
  // master is paused can only have come from the replica.
  using directReplica = new KvClient(replica.address);
  await waitUntil(async () => (await directReplica.get("k")) === "v", "the replica has the write");
  master.signal("SIGSTOP");
  try {
    assert.equal(await group.get("k"), "v");
  } finally {
    master.signal("SIGCONT");
  }
  assert.equal(await fromMaster.get("k"), "v");
  assert.deepEqual(await fromMaster.mget(["k", "j"]), ["v", "w"]);
  assert.ok((await fromMaster.ttl("j")) > 50);
  const scanned = [];
  for await (const entry of fromMaster.scanAll({ includeValues: true })) scanned.push(entry.key);
  assert.deepEqual(scanned.sort(), ["j", "k"]);

  await replica.kill();
  assert.equal(await group.get("k"), "v", "with the replica down, reads fall back to the master");
});

Deno.test("when the master dies and another node becomes master, writes follow it", opts, async () => {
  const spareAddress = `127.0.0.1:${freePort()}`;
  const first = await startServer();
  try {
    using group = new KvReplicaSetClient([first.address, spareAddress], { deadlineMs: 8000, attemptDeadlineMs: 1000 });
    await group.set("before", "1");
    assert.equal(group.master, first.address);
    await first.kill();
    await using second = await startServer({ address: spareAddress });
    assert.equal(await group.set("after", "2"), true);
    assert.equal(group.master, spareAddress);
    using direct = new KvClient(second.address);
    assert.equal(await direct.get("after"), "2");
  } finally {
    await first[Symbol.asyncDispose]();
  }
});

Deno.test("with every node down a call fails within its deadline", opts, async () => {
  using group = new KvReplicaSetClient([`127.0.0.1:${freePort()}`, `127.0.0.1:${freePort()}`], {
    deadlineMs: 1500,
    attemptDeadlineMs: 500,
  });
  const startedMs = Date.now();
  await assert.rejects(group.set("k", "v"), (error: KvClientError) => {
    assert.equal(error.codeName, "UNAVAILABLE");
    return true;
  });
  await assert.rejects(group.get("k"), KvClientError);
  assert.ok(Date.now() - startedMs < 6000, `took ${Date.now() - startedMs} ms`);
});

Deno.test("errors that are the answer are not retried", opts, async () => {
  await using master = await startServer();
  using group = new KvReplicaSetClient([master.address]);
  await assert.rejects(group.set("", "v"), (error: KvClientError) => error.codeName === "INVALID_ARGUMENT");
});

Deno.test("reads skip a replica that has not synced yet, whose answers would be empty", opts, async () => {
  await using master = await startServer();
  // This replica follows a master that is not there, so it never syncs and holds nothing.
  await using stranded = await startServer({ args: ["--replica", "--master-address", `127.0.0.1:${freePort()}`] });
  using direct = new KvClient(master.address);
  await direct.set("k", "v");
  using group = new KvReplicaSetClient([stranded.address, master.address], { readFrom: "replicas" });
  assert.deepEqual(
    Object.fromEntries(await group.discover()),
    { [stranded.address]: "syncing", [master.address]: "master" },
  );
  for (let i = 0; i < 3; i++) assert.equal(await group.get("k"), "v", "read from the master, not the empty replica");
  using anywhere = new KvReplicaSetClient([stranded.address, master.address], { readFrom: "any" });
  for (let i = 0; i < 3; i++) assert.equal(await anywhere.get("k"), "v");
});
