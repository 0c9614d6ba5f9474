/**
 * The sharded client library's calls that take options, against two plain nodes (no
 * router needed): a set with a TTL, and a scan with the default page size.
 */

import assert from "node:assert/strict";
import { ShardedClient } from "../src/client/sharded_client.ts";
import { startServer } from "./helpers/server_process.ts";

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
