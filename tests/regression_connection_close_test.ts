/**
 * Regression guard for denoland/deno#36788: on Deno 2.9.4-2.9.6 a grpc-js server aborts
 * (nghttp2 assertion, `free(): invalid pointer`) when a client that made a few hundred
 * calls on one connection closes it. Three clients in turn each make 300 calls on one
 * connection and close it gracefully; the server must still answer afterwards.
 * Run this on any new Deno before moving the pin in tools/deno.sh.
 */

import assert from "node:assert/strict";
import { KvClient } from "../src/client/client.ts";
import { startServer } from "./helpers/server_process.ts";

Deno.test("smoke: the server survives busy clients closing their connections", {
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using server = await startServer();
  for (let round = 0; round < 3; round++) {
    const client = new KvClient(server.address);
    for (let call = 0; call < 300; call++) {
      if (call % 2 === 0) await client.set(`r${round}:${call}`, "v");
      else await client.get(`r${round}:${call - 1}`);
    }
    client.close();
    // Give the server a moment to process the connection's close before the next round.
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.ok(server.running, `the server died after client ${round + 1} closed:\n${server.stderr}`);
  }
  using client = new KvClient(server.address);
  assert.equal(await client.get("r2:298"), "v");
  assert.equal(Number((await client.info()).keys), 450);
  assert.ok(server.running);
});
