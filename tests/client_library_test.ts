/**
 * KvClient against real nodes: it reconnects by itself when its node comes back, and its
 * calls for the C++ store's replication rpcs work: a pull client following the master's
 * writes (StreamReplication), and a pushed command (ReplicateCommand), which only
 * replicas take.
 */

import assert from "node:assert/strict";
import { KvClient, type KvClientError } from "../src/client/client.ts";
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
