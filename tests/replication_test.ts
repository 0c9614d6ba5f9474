/**
 * Replication between real processes: writes reach every replica, a late replica
 * catches up, one key's commands keep their order, replicas refuse writes.
 */

import assert from "node:assert/strict";
import { KvClient } from "../src/client/client.ts";
import { CLIENT_TRANSPORT_LIMITS, createKvstoreClient, grpc } from "../src/transport/grpc.ts";
import type { ReplicationCommand } from "../src/transport/messages.ts";
import { countLog, dumpDataset, info, startMaster, startReplica, waitForConvergence } from "./helpers/replication.ts";
import { runKvstore, waitUntil } from "./helpers/server_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("smoke: writes on the master appear on every replica", opts, async () => {
  await using master = await startMaster();
  await using replica1 = await startReplica(master);
  await using replica2 = await startReplica(master);
  using client = new KvClient(master.address);

  await client.set("greeting", "hello");
  await client.set("doomed", "x");
  await client.delete("doomed");
  await client.set("session", "abc");
  await client.expire("session", 600);
  await client.mset([{ key: "a", value: "1" }, { key: "b", value: "2", ttlMs: 900_000 }]);
  const dump = await waitForConvergence(master, [replica1, replica2]);
  assert.deepEqual(dump.map(([key]) => key), ["a", "b", "greeting", "session"]);

  using reader = new KvClient(replica2.address);
  assert.equal(await reader.get("greeting"), "hello");
  assert.equal(await reader.get("doomed"), undefined);
  const ttl = await reader.ttl("session");
  assert.ok(ttl > 590 && ttl <= 600, `the deadline travels: ttl ${ttl}`);

  const masterInfo = await info(master.address);
  const replicaInfo = await info(replica1.address);
  assert.equal(replicaInfo.link_state, "up");
  assert.equal(replicaInfo.first_sync_done, true);
  assert.equal(replicaInfo.replid, masterInfo.replid);
  assert.equal(replicaInfo.master_address, master.address);
  await waitUntil(async () => {
    const replicas = (await info(master.address)).replicas ?? [];
    return replicas.length === 2 && replicas.every((r) => r.acked_seq === masterInfo.last_seq && r.lag_seqs === "0");
  }, "the master sees both replicas acknowledge its last seq");
  const shown = (await info(master.address)).replicas!;
  assert.deepEqual(shown.map((r) => r.mode), ["pull", "pull"]);
  assert.deepEqual(shown.map((r) => r.address).sort(), [replica1.address, replica2.address].sort());
});

Deno.test("a replica started after the master already holds data catches up with a fullSync", opts, async () => {
  await using master = await startMaster();
  using client = new KvClient(master.address);
  for (let start = 0; start < 3000; start += 500) {
    await client.mset(
      Array.from({ length: 500 }, (_, i) => ({
        key: `key:${start + i}`,
        value: `value ${start + i} `.repeat(5),
        ttlMs: (start + i) % 3 === 0 ? 3_600_000 : undefined,
      })),
    );
  }
  await using replica = await startReplica(master);
  const dump = await waitForConvergence(master, [replica]);
  assert.equal(dump.length, 3000);
  assert.equal(dump.filter(([, , expiresAtMs]) => expiresAtMs !== null).length, 1000, "deadlines arrive too");
  assert.equal(countLog(replica, /Full sync from master started/), 1);
  assert.match(replica.stderr, /Link to master up \(fullSync of 3000 keys at seq 3000\)/);

  // Writes after the fullSync stream in.
  await client.set("after", "sync");
  await waitForConvergence(master, [replica]);
});

Deno.test("set, delete and expire of one key reach replicas in the master's order", opts, async () => {
  await using master = await startMaster();
  await using replica = await startReplica(master);
  using client = new KvClient(master.address);
  await waitUntil(async () => (await info(replica.address)).link_state === "up", "the replica links up");

  // Sent without waiting, so many land in one batch: order within a batch matters too.
  const writes: Promise<unknown>[] = [];
  for (let round = 0; round < 50; round++) {
    writes.push(client.set("k", `v${round}`));
    writes.push(client.expire("k", 1000 + round));
    if (round % 7 === 3) writes.push(client.delete("k"));
  }
  writes.push(client.set("k", "last"), client.expire("k", 777));
  writes.push(client.set("gone", "x"), client.expire("gone", 0));
  await Promise.all(writes);
  await waitForConvergence(master, [replica]);
  using reader = new KvClient(replica.address);
  assert.equal(await reader.get("k"), "last");
  const ttl = await reader.ttl("k");
  assert.ok(ttl === 777 || ttl === 776, `ttl ${ttl}`);
  assert.equal(await reader.contains("gone"), false, "EXPIRE 0 reached the replica as a DELETE");
});

Deno.test("smoke: a replica refuses writes naming its master, and a master refuses pushes", opts, async () => {
  await using master = await startMaster();
  await using replica = await startReplica(master);
  using client = new KvClient(replica.address);
  await assert.rejects(client.set("k", "v"), new RegExp(`FAILED_PRECONDITION: .*read-only replica.*${master.address}`));
  await assert.rejects(client.delete("k"), /FAILED_PRECONDITION/);
  await assert.rejects(client.expire("k", 5), /FAILED_PRECONDITION/);
  await assert.rejects(client.mset([{ key: "k", value: "v" }]), /FAILED_PRECONDITION/);

  const cli = await runKvstore(["set", "k", "v", "--endpoint", replica.address]);
  assert.equal(cli.code, 3);
  assert.match(cli.stderr, new RegExp(`send writes to the master at ${master.address}`));

  using masterClient = new KvClient(master.address);
  await assert.rejects(
    masterClient.call("ReplicateCommand", { type: "SET", key: "k", value: "v", sequence_id: "1" }),
    /FAILED_PRECONDITION: .*ReplicateCommand is accepted only by replicas/,
  );
  await assert.rejects(
    client.call("Wait", { num_replicas: 1, timeout_ms: 10 }),
    /FAILED_PRECONDITION: .*call Wait on the master/,
  );
  assert.deepEqual(await dumpDataset(replica.address), []);
});

Deno.test("kvstore info shows the replication state of a master and its replica", opts, async () => {
  await using master = await startMaster();
  await using replica = await startReplica(master);
  using client = new KvClient(master.address);
  await client.set("k", "v");
  await waitForConvergence(master, [replica]);
  await waitUntil(async () => (await info(master.address)).replicas?.[0]?.acked_seq === "1", "the replica acks");

  const masterText = (await runKvstore(["info", "--endpoint", master.address])).stdout;
  assert.match(masterText, /^role +master$/m);
  assert.match(masterText, /^replicas$/m);
  assert.match(
    masterText,
    new RegExp(
      `^  \\[0\\] replica_id=\\S+ address=${replica.address} mode=pull ` +
        `state=online acked_seq=1 lag_seqs=0 lag_ms=0$`,
      "m",
    ),
  );
  for (const replicaOnly of ["master_address", "link_state", "first_sync_done", "master_last_seq", "link_error"]) {
    assert.doesNotMatch(masterText, new RegExp(`^${replicaOnly} `, "m"), `a master shows no ${replicaOnly}`);
  }
  const replicaText = (await runKvstore(["info", "--endpoint", replica.address])).stdout;
  assert.match(replicaText, /^link_state +up$/m);
  assert.match(replicaText, /^last_seq +1$/m);
  assert.match(replicaText, /^master_last_seq +1$/m);
  assert.match(replicaText, new RegExp(`^master_address +${master.address.replaceAll(".", "\\.")}$`, "m"));
  assert.doesNotMatch(replicaText, /^replicas$/m, "a replica serves no replicas");
  assert.doesNotMatch(replicaText, /^link_down_ms /m, "the link is up");
  const json = JSON.parse((await runKvstore(["info", "--json", "--endpoint", master.address])).stdout);
  assert.equal(String(json.replicas[0].acked_seq), "1");
});

Deno.test(
  "a simple pull client streams commands with StreamReplication from a seq the backlog holds",
  opts,
  async () => {
    await using master = await startMaster(["--backlog-bytes", "16kb"]);
    using client = new KvClient(master.address);
    await client.set("a", "1");
    await client.mset([{ key: "b", value: "2", ttlMs: 60_000 }]);
    await client.delete("a");
    const raw = createKvstoreClient(master.address, CLIENT_TRANSPORT_LIMITS) as unknown as {
      StreamReplication(request: object): grpc.ClientReadableStream<ReplicationCommand>;
      close(): void;
    };
    try {
      const received: ReplicationCommand[] = [];
      const stream = raw.StreamReplication({ start_sequence: "2", replica_id: "tail" });
      const done = new Promise<void>((resolve, reject) => {
        stream.on("data", (command: ReplicationCommand) => {
          received.push(command);
          if (received.length === 3) resolve();
        });
        stream.on("error", reject);
      });
      await waitUntil(async () => ((await info(master.address)).replicas ?? []).length === 1, "the stream attaches");
      await client.set("c", "3");
      await done;
      stream.cancel();
      assert.deepEqual(received.map((c) => [c.sequence_id, c.type, c.key]), [
        ["2", "SET", "b"],
        ["3", "DELETE", "a"],
        ["4", "SET", "c"],
      ]);
      assert.ok(Number(received[0].expires_at_ms) > Date.now(), "the absolute deadline travels");
      assert.equal(received[0].replid, (await info(master.address)).replid);

      // A seq the backlog no longer holds is refused with a way forward.
      for (let i = 0; i < 300; i++) await client.set(`fill:${i}`, "x".repeat(100));
      const refused = raw.StreamReplication({ start_sequence: "1", replica_id: "late" });
      const error = await new Promise<grpc.ServiceError>((resolve) => {
        refused.on("error", resolve);
        refused.on("data", () => {});
      });
      assert.equal(error.code, grpc.status.FAILED_PRECONDITION);
      assert.match(error.details, /Cannot stream from seq 1: the backlog holds seqs \d+ to \d+; .*needs a fullSync/);

      // So is one past the master's last seq, saying why.
      const ahead = raw.StreamReplication({ start_sequence: "999999", replica_id: "ahead" });
      const aheadError = await new Promise<grpc.ServiceError>((resolve) => {
        ahead.on("error", resolve);
        ahead.on("data", () => {});
      });
      assert.equal(aheadError.code, grpc.status.FAILED_PRECONDITION);
      assert.match(
        aheadError.details,
        /Cannot stream from seq 999999: this master's last seq is 304; the client holds/,
      );
    } finally {
      raw.close();
    }
  },
);
