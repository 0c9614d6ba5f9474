/**
 * Manual failover and Wait with real processes: promote a replica, point the other
 * replicas at it (at run time or by restarting them), and wait for acknowledgements.
 */

import assert from "node:assert/strict";
import { KvClient } from "../src/client/client.ts";
import { parseExposition, sampleValue } from "../src/metrics/exposition.ts";
import { metricsUrl } from "./helpers/grpc_tools.ts";
import { countLog, info, startMaster, startReplica, waitForConvergence } from "./helpers/replication.ts";
import { freePort, runKvstore, startServer, waitUntil } from "./helpers/server_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test(
  "smoke: a promoted replica keeps its data, and the other replica resyncs from it partially",
  opts,
  async () => {
    await using master = await startMaster();
    await using replica1 = await startReplica(master);
    await using replica2 = await startReplica(master);
    using client = new KvClient(master.address);
    await client.mset(Array.from({ length: 200 }, (_, i) => ({ key: `k${i}`, value: `v${i}` })));
    await waitForConvergence(master, [replica1, replica2]);
    const oldReplid = (await info(master.address)).replid;
    await master.kill();

    const promoted = await runKvstore(["promote", "--endpoint", replica1.address]);
    assert.equal(promoted.code, 0, promoted.stderr);
    assert.match(promoted.stdout, /^OK promoted: replid [0-9a-f]{40} from seq 200$/m);
    const newInfo = await info(replica1.address);
    assert.equal(newInfo.role, "master");
    assert.notEqual(newInfo.replid, oldReplid, "a new history");
    assert.equal(newInfo.previous_replid, oldReplid);
    assert.equal(newInfo.keys, "200");
    assert.match(replica1.stderr, /Promoted to master/);
    assert.equal(
      (await runKvstore(["promote", "--endpoint", replica1.address])).stdout.trim().startsWith("OK already a master"),
      true,
    );

    const pointed = await runKvstore(["replicaof", replica1.address, "--endpoint", replica2.address]);
    assert.equal(pointed.code, 0, pointed.stderr);
    using newClient = new KvClient(replica1.address);
    await newClient.set("after", "failover");
    await waitForConvergence(replica1, [replica2]);
    assert.match(replica2.stderr, /Link to master up \(partialSync after seq 200\)/);
    assert.equal(countLog(replica2, /Full sync from master started/), 1, "only its first sync from the old master");
    using reader = new KvClient(replica2.address);
    await assert.rejects(reader.set("x", "y"), new RegExp(`send writes to the master at ${replica1.address}`));
  },
);

Deno.test("a replica restarted with a new --master-address follows the new master", opts, async () => {
  await using masterA = await startMaster();
  await using masterB = await startMaster();
  using clientA = new KvClient(masterA.address);
  using clientB = new KvClient(masterB.address);
  await clientA.set("from", "a");
  await clientB.set("from", "b");
  const replica = await startReplica(masterA);
  try {
    await waitForConvergence(masterA, [replica]);
  } finally {
    await replica.stop();
  }
  await using restarted = await startReplica(masterB, [], { dataDir: replica.dataDir });
  const dump = await waitForConvergence(masterB, [restarted]);
  assert.deepEqual(dump.map(([key, value]) => [key, value]), [["from", "b"]]);
  await Deno.remove(replica.dataDir, { recursive: true });
});

Deno.test("ReplicaOf turns a master into a replica of another, replacing its data", opts, async () => {
  await using masterA = await startMaster();
  await using masterB = await startMaster();
  using clientA = new KvClient(masterA.address);
  using clientB = new KvClient(masterB.address);
  await clientA.set("only-a", "1");
  await clientB.set("only-b", "2");
  const answer = await runKvstore(["replicaof", masterA.address, "--json", "--endpoint", masterB.address]);
  assert.deepEqual(JSON.parse(answer.stdout), {
    success: true,
    previous_role: "master",
    master_address: masterA.address,
  });
  await waitForConvergence(masterA, [masterB]);
  assert.equal(await clientB.get("only-b"), undefined);
  assert.equal(await clientB.get("only-a"), "1");
  await assert.rejects(clientB.set("k", "v"), /FAILED_PRECONDITION/);

  const self = await runKvstore(["replicaof", masterA.address, "--endpoint", masterA.address]);
  assert.equal(self.code, 3);
  assert.match(self.stderr, /INVALID_ARGUMENT: replication: Cannot follow \S+: that is this node's own address/);
  const bad = await runKvstore(["replicaof", "nowhere", "--endpoint", masterA.address]);
  assert.match(bad.stderr, /INVALID_ARGUMENT: replication: Invalid master_address "nowhere"/);
});

Deno.test("Wait answers once replicas acknowledge, and with the count reached when it times out", opts, async () => {
  await using master = await startMaster();
  await using _replica1 = await startReplica(master);
  await using replica2 = await startReplica(master);
  using client = new KvClient(master.address);
  await waitUntil(async () => (await info(master.address)).replicas?.length === 2, "both replicas attach");
  await client.set("k", "v");
  assert.deepEqual(await client.wait(2, 5000), { replicas: 2, seq: 1 });

  replica2.signal("SIGSTOP");
  try {
    await client.set("k", "v2");
    const started = Date.now();
    assert.deepEqual(await client.wait(2, 400), { replicas: 1, seq: 2 }, "the paused replica does not acknowledge");
    assert.ok(Date.now() - started >= 350, "it waited for the timeout");
    const cli = await runKvstore(["wait", "2", "200", "--endpoint", master.address]);
    assert.equal(cli.code, 1, "too few replicas");
    assert.equal(cli.stdout, "1\n");
  } finally {
    replica2.signal("SIGCONT");
  }
  assert.equal((await client.wait(2, 10_000)).replicas, 2, "once resumed, it acknowledges");
  const cli = await runKvstore(["wait", "1", "1000", "--endpoint", master.address]);
  assert.equal(cli.code, 0);
  assert.equal(cli.stdout, "2\n");
});

Deno.test("a Wait whose caller gives up stops blocking on the master", opts, async () => {
  await using master = await startMaster(["--metrics-address", "127.0.0.1:0"]);
  const url = await metricsUrl(master);
  const blocked = async () =>
    sampleValue(parseExposition(await (await fetch(url)).text()), "kvstore_replication_waits_blocked");
  using client = new KvClient(master.address);
  await client.set("k", "v");
  assert.equal(await blocked(), 0);

  // No replica will ever acknowledge: the wait would last its whole timeout (an hour),
  // but the caller gives up after 2 s.
  const waiting = client.wait(1, 0, { deadlineMs: 2000 });
  await waitUntil(async () => (await blocked()) === 1, "the Wait blocks");
  await assert.rejects(waiting, /DEADLINE_EXCEEDED/);
  await waitUntil(async () => (await blocked()) === 0, "the abandoned Wait no longer blocks", 5000);
});

Deno.test(
  "a replica ahead of the promoted master resyncs in full and logs how many writes it dropped",
  opts,
  async () => {
    await using master = await startMaster();
    await using behind = await startReplica(master);
    await using ahead = await startReplica(master);
    using client = new KvClient(master.address);
    await client.set("base", "v");
    await waitForConvergence(master, [behind, ahead]);

    // The paused replica's stream stalls once its HTTP/2 window is full; the master then
    // dies holding the rest, which only the other replica received.
    behind.signal("SIGSTOP");
    try {
      const value = "x".repeat(2000);
      for (let start = 0; start < 4000; start += 200) {
        await client.mset(Array.from({ length: 200 }, (_, i) => ({ key: `k${start + i}`, value })));
      }
      await waitUntil(async () => (await info(ahead.address)).last_seq === "4001", "the other replica has everything");
      await master.kill();
    } finally {
      behind.signal("SIGCONT");
    }
    await behind.waitForLog(/Link to master down/);
    const behindSeq = Number((await info(behind.address)).last_seq);
    assert.ok(behindSeq < 4001, `the paused replica missed writes (it holds seq ${behindSeq})`);

    assert.equal((await runKvstore(["promote", "--endpoint", behind.address])).code, 0);
    assert.equal((await runKvstore(["replicaof", behind.address, "--endpoint", ahead.address])).code, 0);
    await waitForConvergence(behind, [ahead]);
    const dropped = 4001 - behindSeq;
    assert.match(
      ahead.stderr,
      new RegExp(`This replica was ahead of its master's history: the fullSync drops ${dropped} commands`),
    );
    assert.match(ahead.stderr, new RegExp(`the replica is ahead of the master's history at seq ${behindSeq}`));
  },
);

Deno.test(
  "an old master restarted after a failover and made a replica resyncs partially, or drops what it wrote meanwhile",
  opts,
  async () => {
    const dataDir = await Deno.makeTempDir({ prefix: "kvstore-old-master-" });
    const address = `127.0.0.1:${freePort()}`;
    try {
      const old = await startServer({ dataDir, address });
      await using promoted = await startReplica(old);
      try {
        using client = new KvClient(old.address);
        for (let i = 0; i < 10; i++) await client.set(`k${i}`, "v");
        await waitForConvergence(old, [promoted]);
        assert.equal((await old.stop("SIGTERM")).code, 0);
      } finally {
        await old[Symbol.asyncDispose]();
      }
      assert.equal((await runKvstore(["promote", "--endpoint", promoted.address])).code, 0);
      using client = new KvClient(promoted.address);
      await client.set("after", "failover");

      // Restarted with its data, the old master begins a history of its own that continues
      // the one both hold up to seq 10; it wrote nothing since, so it needs no fullSync.
      const restarted = await startServer({ dataDir, address });
      try {
        assert.equal((await runKvstore(["replicaof", promoted.address, "--endpoint", address])).code, 0);
        await waitForConvergence(promoted, [restarted]);
        assert.match(restarted.stderr, /Link to master up \(partialSync after seq 10\)/);
        assert.doesNotMatch(restarted.stderr, /Full sync from master started/);
        assert.equal((await restarted.stop("SIGTERM")).code, 0);
      } finally {
        await restarted[Symbol.asyncDispose]();
      }

      // Restarted again as a master, it takes a write its new master never sees (a
      // split brain): made a replica, it drops that write, and says so.
      await using again = await startServer({ dataDir, address });
      using stray = new KvClient(address);
      await stray.set("split", "brain");
      assert.equal((await runKvstore(["replicaof", promoted.address, "--endpoint", address])).code, 0);
      await waitForConvergence(promoted, [again]);
      assert.match(again.stderr, /This replica was ahead of its master's history: the fullSync drops 1 command\b/);
      assert.match(
        again.stderr,
        /Full sync from master started: the replica's history \S+ left the master's at seq 11/,
      );
      assert.equal(await stray.get("split"), undefined);
    } finally {
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    }
  },
);
