/**
 * Compatibility push mode and interoperation with the C++ store, whose master pushes
 * ReplicateCommand with ids from 0 and serves no Sync, and whose replicas only take
 * pushes (they apply what arrives and echo its id). Both are played here by small
 * grpc-js servers and a test client.
 */

import assert from "node:assert/strict";
import { KvClient } from "../src/client/client.ts";
import { grpc, kvstoreServiceDefinition } from "../src/transport/grpc.ts";
import type { ReplicationCommand, ReplicationResponse } from "../src/transport/messages.ts";
import { dumpDataset, info, startMaster, startReplica, waitForConvergence } from "./helpers/replication.ts";
import { freePort, startServer, waitUntil } from "./helpers/server_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** A grpc-js server on 127.0.0.1:`port` with only the given handlers; every other rpc
 * answers UNIMPLEMENTED, as the C++ store does for Sync. */
async function fakeServer(port: number, handlers: grpc.UntypedServiceImplementation): Promise<grpc.Server> {
  const server = new grpc.Server();
  server.addService(kvstoreServiceDefinition(), handlers);
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(
      `127.0.0.1:${port}`,
      grpc.ServerCredentials.createInsecure(),
      (error) => error ? reject(error) : resolve(),
    )
  );
  return server;
}

function shutdown(server: grpc.Server): Promise<void> {
  return new Promise((resolve) => server.tryShutdown(() => resolve()));
}

/** A push-only replica like the C++ store's: applies what arrives, echoes its id. */
class FakePushReplica {
  received: ReplicationCommand[] = [];
  data = new Map<string, string>();
  handlers: grpc.UntypedServiceImplementation = {
    ReplicateCommand: (
      call: grpc.ServerUnaryCall<ReplicationCommand, ReplicationResponse>,
      callback: grpc.sendUnaryData<ReplicationResponse>,
    ) => {
      const command = call.request;
      this.received.push(command);
      if (command.type === "SET") this.data.set(command.key, command.value);
      if (command.type === "DELETE") this.data.delete(command.key);
      callback(null, { success: true, last_applied_sequence: command.sequence_id });
    },
  };
}

Deno.test("smoke: push mode with --replicas and pull together apply each command once", opts, async () => {
  const replicaPort = freePort();
  await using master = await startMaster(["--replicas", `127.0.0.1:${replicaPort}`]);
  await using replica = await startReplica(master, [], { address: `127.0.0.1:${replicaPort}` });
  using client = new KvClient(master.address);
  for (let i = 0; i < 300; i++) {
    await client.set(`k${i % 40}`, `v${i}`);
    if (i % 5 === 0) await client.expire(`k${(i + 3) % 40}`, 100 + i);
    if (i % 11 === 0) await client.delete(`k${(i + 7) % 40}`);
  }
  await waitForConvergence(master, [replica]);
  const last = (await info(master.address)).last_seq;
  await waitUntil(async () => {
    const replicas = (await info(master.address)).replicas ?? [];
    return replicas.length === 2 && replicas.every((r) => r.acked_seq === last);
  }, "both the pull stream and the push link are acknowledged up to the last seq");
  const modes = (await info(master.address)).replicas!.map((r) => r.mode).sort();
  assert.deepEqual(modes, ["pull", "push"]);
  assert.deepEqual(await client.wait(2, 300), { replicas: 1, seq: Number(last) }, "one replica reached two ways");
  // Each seq was staged once: the replica's seq equals the master's although most
  // commands reached it twice.
  assert.equal((await info(replica.address)).last_seq, last);
});

Deno.test(
  "a replica reached by push and pull that falls behind the backlog resyncs by pulling, and the pushes say so once",
  opts,
  async () => {
    const replicaPort = freePort();
    await using master = await startMaster(["--replicas", `127.0.0.1:${replicaPort}`, "--backlog-bytes", "16kb"]);
    await using replica = await startReplica(master, [], { address: `127.0.0.1:${replicaPort}` });
    using client = new KvClient(master.address);
    await client.set("before", "v");
    await waitForConvergence(master, [replica]);
    // The push link learns from the replica's first answer that it is one of ours, which
    // also pulls; before that, it would take it for a push-only replica.
    await waitUntil(async () => {
      const replicas = (await info(master.address)).replicas as unknown as { mode: string; acked_seq: string }[];
      return replicas.some((record) => record.mode === "push" && Number(record.acked_seq) >= 1);
    }, "the push of the first write is answered");
    replica.signal("SIGSTOP");
    try {
      // About 330 bytes per command against a 16 KiB backlog.
      for (let i = 0; i < 300; i++) await client.set(`k${i}`, "x".repeat(100));
    } finally {
      replica.signal("SIGCONT");
    }
    await waitForConvergence(master, [replica]);
    await client.set("after", "v");
    await waitForConvergence(master, [replica]);
    assert.doesNotMatch(master.stderr, /push mode cannot resync it/, "the replica resyncs by pulling");
    const refusals = master.stderr.match(/did not apply seq/g) ?? [];
    assert.ok(refusals.length <= 2, `refusals logged once per reason, not per retry: ${refusals.length}`);
  },
);

Deno.test("our master pushes every write in order to a push-only replica, resending what it missed", opts, async () => {
  const port = freePort();
  const fake = new FakePushReplica();
  let server = await fakeServer(port, fake.handlers);
  await using master = await startMaster(["--replicas", `127.0.0.1:${port}`]);
  using client = new KvClient(master.address);
  try {
    await client.set("a", "1");
    await client.set("b", "2");
    await client.expire("b", 60);
    await client.delete("a");
    await waitUntil(() => fake.received.length === 4, "4 pushes arrive");
    assert.deepEqual(fake.received.map((c) => [c.sequence_id, c.type, c.key]), [
      ["1", "SET", "a"],
      ["2", "SET", "b"],
      ["3", "EXPIRE", "b"],
      ["4", "DELETE", "a"],
    ]);
    assert.equal(fake.received[2].seconds, 60, "relative seconds for a replica that knows no deadlines");

    await shutdown(server);
    server.forceShutdown();
    for (let i = 0; i < 20; i++) await client.set(`down:${i}`, `${i}`);
    await master.waitForLog(/Cannot push to replica 127\.0\.0\.1:\d+/);
    server = await fakeServer(port, fake.handlers);
    await waitUntil(() => fake.data.size === 21, "the pushes missed while the replica was down arrive", 20_000);
    await master.waitForLog(/Pushing to replica \S+ again/);
    const seqs = fake.received.map((c) => Number(c.sequence_id));
    assert.deepEqual([...new Set(seqs)], Array.from({ length: 24 }, (_, i) => i + 1), "every seq, in order");
    assert.deepEqual([...fake.data.keys()].sort(), ["b", ...Array.from({ length: 20 }, (_, i) => `down:${i}`)].sort());
  } finally {
    server.forceShutdown();
  }
});

Deno.test(
  "a push replica's state in Info follows its connection, before any write: connecting or down, then online",
  opts,
  async () => {
    const port = freePort();
    await using master = await startMaster(["--replicas", `127.0.0.1:${port}`]);
    const pushState = async () => {
      const replicas = (await info(master.address)).replicas as unknown as { mode: string; state: string }[];
      return replicas.find((replica) => replica.mode === "push")?.state;
    };
    // Nothing listens there: never reached, so never "online".
    const first = await pushState();
    assert.ok(first === "connecting" || first === "down", `a replica never reached is ${first}`);
    await waitUntil(async () => (await pushState()) === "down", "the unreachable push replica shows down");
    // It comes up, and is shown online though no write was pushed to it yet.
    const fake = new FakePushReplica();
    const server = await fakeServer(port, fake.handlers);
    try {
      await waitUntil(async () => (await pushState()) === "online", "the push replica shows online", 10_000);
      assert.equal(fake.received.length, 0);
      // It goes away between writes: down again, before any push fails.
      server.forceShutdown();
      await waitUntil(async () => (await pushState()) === "down", "the push replica that went away shows down");
    } finally {
      server.forceShutdown();
    }
  },
);

Deno.test("a master with --replicas made a replica and promoted again pushes to them again", opts, async () => {
  const port = freePort();
  const fake = new FakePushReplica();
  const server = await fakeServer(port, fake.handlers);
  try {
    await using master = await startMaster(["--replicas", `127.0.0.1:${port}`]);
    await using other = await startMaster();
    using client = new KvClient(master.address);
    await client.set("a", "1");
    await waitUntil(() => fake.data.get("a") === "1", "the first write is pushed");
    using admin = new KvClient(master.address);
    await admin.replicaOf(other.address);
    await waitForConvergence(other, [master]);
    await admin.promote();
    await client.set("b", "2");
    await waitUntil(() => fake.data.get("b") === "2", "writes after the promotion are pushed", 10_000);
  } finally {
    server.forceShutdown();
  }
});

Deno.test(
  "a push-only replica whose next write left the backlog misses it, the master says so, and pushes go on",
  opts,
  async () => {
    const port = freePort();
    const fake = new FakePushReplica();
    await using master = await startMaster(["--replicas", `127.0.0.1:${port}`, "--backlog-bytes", "16kb"]);
    using client = new KvClient(master.address);
    // About 330 bytes per command against a 16 KiB backlog, pushed to no one.
    for (let i = 1; i <= 300; i++) await client.set(`k${i}`, "x".repeat(100));
    await master.waitForLog(/Cannot push to replica 127\.0\.0\.1:\d+/);
    const server = await fakeServer(port, fake.handlers);
    try {
      await master.waitForLog(/missed seqs 1 to \d+, which left the backlog; push mode cannot resync it/, 20_000);
      await waitUntil(() => fake.received.at(-1)?.sequence_id === "300", "the backlog's writes are pushed", 20_000);
      // Logged once per stretch that left the backlog while the link retried: together
      // they cover every seq before the first one pushed.
      const missed = [...master.stderr.matchAll(/missed seqs (\d+) to (\d+), which left the backlog/g)]
        .map(([, from, to]) => [Number(from), Number(to)]);
      const first = Number(fake.received[0].sequence_id);
      assert.ok(first > 1, "the first writes left the backlog");
      assert.deepEqual(
        missed.flatMap(([from, to]) => Array.from({ length: to - from + 1 }, (_, i) => from + i)),
        Array.from({ length: first - 1 }, (_, i) => i + 1),
        `missed: ${JSON.stringify(missed)}`,
      );
      const seqs = fake.received.map((command) => Number(command.sequence_id));
      assert.deepEqual(seqs, Array.from({ length: 301 - first }, (_, i) => first + i), "the rest, in order, once");
    } finally {
      server.forceShutdown();
    }
  },
);

Deno.test("smoke: our replica follows a C++-style master that pushes ids from 0 and serves no Sync", opts, async () => {
  const masterPort = freePort();
  const fakeMaster = await fakeServer(masterPort, {});
  await using replica = await startServer({ args: ["--replica", "--master-address", `127.0.0.1:${masterPort}`] });
  using pusher = new KvClient(replica.address);
  const push = (id: number, type: string, key: string, value = "", seconds = 0) =>
    pusher.call<ReplicationResponse>("ReplicateCommand", { type, key, value, seconds, sequence_id: String(id) });
  try {
    await replica.waitForLog(/does not serve Sync/);
    assert.equal((await info(replica.address)).link_state, "push-only");

    const { replica_id, ...first } = await push(0, "SET", "a", "1");
    assert.deepEqual(first, {
      success: true,
      last_applied_sequence: "0",
      replid: "0".repeat(40),
      detail: "",
    });
    assert.match(replica_id ?? "", /^[0-9a-f]{16}$/, "the replica names itself");
    assert.equal((await push(1, "SET", "b", "2")).last_applied_sequence, "1");
    assert.equal((await push(0, "SET", "a", "1")).success, true, "a duplicate is acknowledged, not applied again");
    assert.match(replica.stderr, /The master pushed id 0 again after id 1: if it restarted, its writes are ignored/);
    // Pushes that overtake each other wait for their turn.
    const answers = await Promise.all([
      push(4, "DELETE", "a"),
      push(3, "EXPIRE", "b", "", 100),
      push(2, "SET", "a", "3"),
    ]);
    assert.ok(answers.every((answer) => answer.success));
    assert.equal((await push(5, "SET", "c", "5")).last_applied_sequence, "5");

    assert.deepEqual((await dumpDataset(replica.address)).map(([key, value]) => [key, value]), [["b", "2"], [
      "c",
      "5",
    ]]);
    const ttl = await pusher.ttl("b");
    assert.ok(ttl === 100 || ttl === 99, `the relative EXPIRE counts from its arrival: ${ttl}`);
    const replicaInfo = await info(replica.address);
    assert.equal(replicaInfo.last_seq, "6", "ids 0-5 are our seqs 1-6");
    assert.equal(replicaInfo.replid, "0".repeat(40));
    await assert.rejects(pusher.set("x", "y"), /FAILED_PRECONDITION/);
  } finally {
    fakeMaster.forceShutdown();
  }
});

Deno.test(
  "a gap in a C++ master's pushes is skipped after a wait, and pushes of another history are refused",
  opts,
  async () => {
    const masterPort = freePort();
    const fakeMaster = await fakeServer(masterPort, {});
    await using replica = await startServer({ args: ["--replica", "--master-address", `127.0.0.1:${masterPort}`] });
    using pusher = new KvClient(replica.address, { deadlineMs: 10_000 });
    const push = (id: number, key: string) =>
      pusher.call<ReplicationResponse>("ReplicateCommand", { type: "SET", key, value: "v", sequence_id: String(id) });
    try {
      await replica.waitForLog(/does not serve Sync/);
      assert.equal((await push(0, "a")).success, true);
      const skipped = await push(3, "d");
      assert.equal(skipped.success, true);
      assert.equal(skipped.last_applied_sequence, "3");
      assert.match(replica.stderr, /never sent 2 commands before id 3/);
      const ours = await pusher.call<ReplicationResponse>("ReplicateCommand", {
        type: "SET",
        key: "x",
        value: "v",
        sequence_id: "9",
        replid: "f".repeat(40),
      });
      assert.equal(ours.success, false);
      assert.match(ours.detail ?? "", /holds history 000000000000, not ffffffffffff/);
    } finally {
      fakeMaster.forceShutdown();
    }
  },
);
