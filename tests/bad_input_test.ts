/**
 * Input a client can get wrong: each gets a gRPC status with a message, never a crash,
 * and the server stays up and consistent. Also garbage on the port and connection storms.
 */

import assert from "node:assert/strict";
import { KvClient, KvClientError } from "../src/client/client.ts";
import { connectionStorm } from "./helpers/connection_storm.ts";
import { openFilesLimit, startServer } from "./helpers/server_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

async function statusOf(promise: Promise<unknown>): Promise<{ code: string; details: string }> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof KvClientError, `expected a gRPC error, got ${error}`);
    return { code: error.codeName, details: error.details };
  }
  assert.fail("expected the call to fail");
}

Deno.test("smoke: bad keys, values and TTLs get INVALID_ARGUMENT or RESOURCE_EXHAUSTED", opts, async () => {
  await using server = await startServer();
  using client = new KvClient(server.address, { deadlineMs: 30_000 });
  await client.set("good", "v");

  for (const rpc of ["Get", "Set", "Contains", "Delete", "Expire", "TTL"]) {
    const empty = await statusOf(client.call(rpc, { key: "", value: "v", seconds: 1 }));
    assert.equal(empty.code, "INVALID_ARGUMENT", rpc);
    assert.match(empty.details, /key is empty/);
  }

  const longKey = "k".repeat(64 * 1024 + 1);
  const tooLong = await statusOf(client.set(longKey, "v"));
  assert.equal(tooLong.code, "INVALID_ARGUMENT");
  assert.match(tooLong.details, /65537 bytes, over the limit of 65536 \(raise it with --max-key-bytes\)/);
  assert.equal((await statusOf(client.get(longKey))).code, "INVALID_ARGUMENT");
  assert.equal(await client.set("k".repeat(64 * 1024), "v"), true, "a key of exactly 64 KiB is fine");

  const hugeValue = "v".repeat(16 * 1024 * 1024 + 1);
  const tooBig = await statusOf(client.set("big", hugeValue));
  assert.equal(tooBig.code, "RESOURCE_EXHAUSTED");
  assert.match(tooBig.details, /16777217 bytes, over the limit of 16777216 \(raise it with --max-value-bytes\)/);

  const silly = await statusOf(client.expire("good", 2147483647));
  assert.equal(silly.code, "INVALID_ARGUMENT");
  assert.match(silly.details, /2147483647 seconds is over the limit/);
  assert.equal(await client.ttl("good"), -1, "a refused EXPIRE changes nothing");

  assert.equal(await client.get("good"), "v", "the server is up and consistent");
  assert.equal(await client.get("big"), undefined);
  assert.equal(Number((await client.info()).keys), 2);
});

Deno.test(
  "--max-value-bytes moves the value limit; far larger messages are refused by the transport",
  opts,
  async () => {
    await using server = await startServer({ args: ["--max-value-bytes", "1kb"] });
    using client = new KvClient(server.address);
    assert.equal(await client.set("k", "x".repeat(1024)), true);
    const over = await statusOf(client.set("k", "x".repeat(1025)));
    assert.equal(over.code, "RESOURCE_EXHAUSTED");
    assert.match(over.details, /over the limit of 1024/);
    const huge = await statusOf(client.set("k", "x".repeat(2 * 1024 * 1024)));
    assert.equal(huge.code, "RESOURCE_EXHAUSTED");
    assert.equal((await client.get("k"))?.length, 1024);
  },
);

Deno.test("garbage bytes on the port do not take the server down", opts, async () => {
  await using server = await startServer();
  const [hostname, port] = server.address.split(":");
  const payloads = [
    crypto.getRandomValues(new Uint8Array(4096)),
    new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
    new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + "\xff".repeat(1000)),
    new Uint8Array(0),
  ];
  for (const payload of payloads) {
    const connection = await Deno.connect({ hostname, port: Number(port) });
    await connection.write(payload).catch(() => 0);
    connection.close();
  }
  using client = new KvClient(server.address);
  assert.equal(await client.set("still", "up"), true);
  assert.equal(await client.get("still"), "up");
  assert.ok(server.running);
});

Deno.test("hundreds of connections opened at once are all served", opts, async () => {
  await using server = await startServer();
  // Each client its own connection: grpc-js would otherwise carry them all on one.
  const clients = Array.from(
    { length: 300 },
    () => new KvClient(server.address, { deadlineMs: 30_000, ownConnection: true }),
  );
  try {
    const results = await Promise.all(clients.map((client, i) => client.set(`conn${i}`, String(i))));
    assert.ok(results.every((ok) => ok));
    assert.ok(Number((await clients[0].info()).connections) >= 300, "the server saw 300 connections");
  } finally {
    for (const client of clients) client.close();
  }
  using client = new KvClient(server.address);
  assert.equal(Number((await client.info()).keys), 300);
  assert.ok(server.running);
});

Deno.test(
  "a connection storm past the open-file limit is refused at the limit, and the node keeps accepting",
  opts,
  async () => {
    // 1024 descriptors: the node keeps 384 connections (FDS_RESERVED, 640, stay free), and
    // the storm brings 1500. A node that ran out of descriptors while accepting would never
    // accept again.
    await using server = await startServer({ shellSetup: openFilesLimit(1024) });
    assert.match(
      server.stderr,
      /WARN {2}server: The open-file limit is 1024, so at most 384 client connections are kept/,
    );

    await connectionStorm(server.address, 1500);
    using client = new KvClient(server.address, { deadlineMs: 10_000, ownConnection: true });
    assert.equal(await client.set("after", "storm"), true, "the node accepts connections again");
    assert.ok(server.running);
  },
);
