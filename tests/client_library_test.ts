/**
 * KvClient against real nodes: it reconnects by itself when its node comes back, and its
 * calls for the C++ store's replication rpcs work: a pull client following the master's
 * writes (StreamReplication), and a pushed command (ReplicateCommand), which only
 * replicas take; and a node killed mid-call fails its calls as UNAVAILABLE, saying
 * whether they may have been applied.
 */

import assert from "node:assert/strict";
import { describeFailure } from "../src/client/cli.ts";
import { KvClient, KvClientError } from "../src/client/client.ts";
import { KvReplicaSetClient } from "../src/client/replica_set_client.ts";
import { freePort, startServer, waitUntil } from "./helpers/server_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("streamReplication yields the master's writes in order, old and new", opts, async () => {
  await using master = await startServer();
  using client = new KvClient(master.address);
  await client.set("a", "1");
  await client.set("b", "2");
  const seen: string[] = [];
  for await (const command of client.streamReplication(1, "test-follower")) {
    seen.push(`${command.type} ${command.key} ${command.sequence_id}`);
    // A write made while the stream is open arrives on it too.
    if (seen.length === 2) await client.delete("a");
    if (seen.length === 3) break;
  }
  assert.deepEqual(seen, ["SET a 1", "SET b 2", "DELETE a 3"]);

  await assert.rejects(
    async () => {
      for await (const _ of client.streamReplication(1000)) break;
    },
    (error: KvClientError) =>
      error.codeName === "FAILED_PRECONDITION" && /Cannot stream from seq 1000/.test(error.details),
  );
  await assert.rejects(
    client.replicateCommand({ type: "SET", key: "k", value: "v", seq: 1 }),
    (error: KvClientError) =>
      error.codeName === "FAILED_PRECONDITION" && /accepted only by replicas/.test(error.details),
  );
});

Deno.test("a client whose node restarts reconnects by itself, within the backoff's cap", opts, async () => {
  const address = `127.0.0.1:${freePort()}`;
  const dataDir = await Deno.makeTempDir({ prefix: "kvstore-client-" });
  try {
    using client = new KvClient(address, { deadlineMs: 2000 });
    {
      await using first = await startServer({ address, dataDir });
      await client.set("k", "v");
      await first.stop();
    }
    await assert.rejects(client.get("k"), (error: KvClientError) => error.codeName === "UNAVAILABLE");
    await using _second = await startServer({ address, dataDir });
    const backAtMs = Date.now();
    // GRPC_RECONNECT_BACKOFF_MAX_MS (5 s) with grpc's 20% jitter, and room for a slow machine.
    await waitUntil(
      async () => (await client.get("k").catch(() => undefined)) === "v",
      "the client is back",
      10_000,
      100,
    );
    assert.ok(Date.now() - backAtMs < 10_000);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test(
  "calls cut off by a node killed mid-call fail UNAVAILABLE: a read to retry, a write whose outcome is unknown",
  opts,
  async () => {
    await using server = await startServer();
    using client = new KvClient(server.address, { deadlineMs: 10_000 });
    await client.set("k", "v0");
    using group = new KvReplicaSetClient([server.address], { deadlineMs: 1500 });
    assert.equal(await group.get("k"), "v0");
    // The node stops reading: the calls below are sent on the open connection and wait
    // there, unanswered, until it is killed.
    server.signal("SIGSTOP");
    const outcome = (call: Promise<unknown>) => call.then(() => null, (error: KvClientError) => error);
    const read = outcome(client.get("k"));
    const write = outcome(client.set("k", "v1"));
    const groupWrite = outcome(group.set("k", "v2"));
    // Long enough for grpc-js to hand the calls to the socket; they are not answered.
    await new Promise((resolve) => setTimeout(resolve, 300));
    await server.kill();

    const readError = await read;
    assert.ok(readError instanceof KvClientError, "the read fails");
    assert.equal(readError.codeName, "UNAVAILABLE", readError.message);
    assert.equal(readError.transport, "lost");
    assert.equal(readError.outcomeUnknown, false, "a read changes nothing: retry it");
    assert.match(readError.details, /^Connection lost during the call \(/);

    const writeError = await write;
    assert.ok(writeError instanceof KvClientError, "the write fails");
    assert.equal(writeError.codeName, "UNAVAILABLE", writeError.message);
    assert.equal(writeError.outcomeUnknown, true);
    assert.match(writeError.details, /^Connection lost during the call \(.*\); it may or may not have been applied$/);
    assert.match(
      describeFailure(writeError, server.address, 10_000),
      /^Connection to \S+ lost during the call \(.+\); the write may or may not have been applied/,
    );

    // The replica-set client retries the write until its deadline (no node comes back),
    // and its error still says that the first attempt may have been applied.
    const groupError = await groupWrite;
    assert.ok(groupError instanceof KvClientError, "the group's write fails");
    assert.equal(groupError.codeName, "UNAVAILABLE", groupError.message);
    assert.equal(groupError.outcomeUnknown, true, groupError.message);
    assert.match(groupError.message, /may or may not have been applied/);
  },
);
