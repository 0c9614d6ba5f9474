/**
 * Regression guard for denoland/deno#36788: on Deno 2.9.4-2.9.6 a grpc-js server aborts
 * (nghttp2 assertion, `free(): invalid pointer`) when a client that made a few hundred
 * calls on one connection closes it. Three clients in turn each make 300 calls on one
 * connection and close it gracefully; the server must still answer afterwards.
 * Run this on any new Deno before moving the pin in tools/deno.sh.
 */

import assert from "node:assert/strict";
import { KvClient } from "../src/client/client.ts";
import { startServer, waitUntil } from "./helpers/server_process.ts";

Deno.test("smoke: the server survives busy clients closing their connections", {
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using server = await startServer();
  // A connection of its own, to watch the server's count of open connections.
  using probe = new KvClient(server.address, { ownConnection: true });
  const connections = async () => Number((await probe.info()).connections);
  assert.equal(await connections(), 1);
  for (let round = 0; round < 3; round++) {
    const client = new KvClient(server.address, { ownConnection: true });
    for (let call = 0; call < 300; call++) {
      if (call % 2 === 0) await client.set(`r${round}:${call}`, "v");
      else await client.get(`r${round}:${call - 1}`);
    }
    assert.equal(await connections(), 2, "the busy client has one connection");
    client.close();
    // The server has handled the close once only the probe's connection is left. A server
    // that aborts there fails the probe's call, and then its process is gone.
    await waitUntil(
      async () => !server.running || await connections().catch(() => 0) === 1,
      "the server sees the close",
      10_000,
    );
    assert.ok(server.running, `the server died after client ${round + 1} closed:\n${server.stderr}`);
  }
  assert.equal(await probe.get("r2:298"), "v");
  assert.equal(Number((await probe.info()).keys), 450);
  assert.ok(server.running);
});
