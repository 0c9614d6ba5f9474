/**
 * The standard health service against real nodes: a master serves, a replica does not
 * until its first sync, and every node turns NOT_SERVING when it starts to shut down.
 */

import assert from "node:assert/strict";
import { HealthClient, type ServingStatus } from "../src/client/health_client.ts";
import type { KvClientError } from "../src/client/client.ts";
import { freePort, runKvstore, startServer, waitUntil } from "./helpers/server_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test(
  "smoke: a master is SERVING for the node and the data service; unknown names are NOT_FOUND",
  opts,
  async () => {
    await using server = await startServer();
    using health = new HealthClient(server.address);
    assert.equal(await health.check(""), "SERVING");
    assert.equal(await health.check("kvstore.KeyValueStore"), "SERVING");
    await assert.rejects(health.check("nope.Service"), (error: KvClientError) => {
      assert.equal(error.codeName, "NOT_FOUND");
      assert.match(error.details, /Unknown service "nope.Service"/);
      return true;
    });
    const cli = await runKvstore(["health", "--endpoint", server.address]);
    assert.deepEqual([cli.code, cli.stdout], [0, "SERVING\n"]);
    const json = await runKvstore([
      "health",
      "--json",
      "--service",
      "kvstore.KeyValueStore",
      "--endpoint",
      server.address,
    ]);
    assert.equal(JSON.parse(json.stdout).status, "SERVING");
  },
);

Deno.test("a replica is NOT_SERVING until its first sync, and says so with exit 1", opts, async () => {
  await using server = await startServer({ args: ["--replica", "--master-address", `127.0.0.1:${freePort()}`] });
  using health = new HealthClient(server.address);
  assert.equal(await health.check(""), "NOT_SERVING");
  assert.equal(await health.check("kvstore.KeyValueStore"), "NOT_SERVING");
  const cli = await runKvstore(["health", "--endpoint", server.address]);
  assert.deepEqual([cli.code, cli.stdout], [1, "NOT_SERVING\n"]);
});

Deno.test("a replica turns SERVING after its first sync, and a promoted replica stays SERVING", opts, async () => {
  await using master = await startServer();
  await using replica = await startServer({ args: ["--replica", "--master-address", master.address] });
  using health = new HealthClient(replica.address);
  await waitUntil(async () => (await health.check("")) === "SERVING", "the replica has synced", 15_000);
  assert.equal(await health.check("kvstore.KeyValueStore"), "SERVING");
  await master.kill();
  assert.equal(await health.check(""), "SERVING", "a replica that has synced keeps serving (possibly stale) reads");
  const promoted = await runKvstore(["promote", "--endpoint", replica.address]);
  assert.equal(promoted.code, 0, promoted.stderr);
  assert.equal(await health.check(""), "SERVING");
});

Deno.test("a watcher sees SERVING, then NOT_SERVING as shutdown starts, then the stream ends", opts, async () => {
  await using server = await startServer();
  using health = new HealthClient(server.address);
  const seen: ServingStatus[] = [];
  const watch = health.watch("", (status) => seen.push(status));
  await waitUntil(() => seen.length === 1, "the first status arrives");
  assert.deepEqual(seen, ["SERVING"]);
  server.signal("SIGTERM");
  await watch.ended;
  assert.deepEqual(seen, ["SERVING", "NOT_SERVING"]);
  const status = await server.exited;
  assert.equal(status.code, 0);
});

Deno.test("health --watch prints each status until the node ends the stream", opts, async () => {
  await using server = await startServer();
  const watching = runKvstore(["health", "--watch", "--endpoint", server.address], { timeoutMs: 20_000 });
  await waitUntil(async () => (await fetchConnections(server.address)) > 1, "the watch is connected", 10_000, 100);
  server.signal("SIGTERM");
  const result = await watching;
  const lines = result.stdout.trim().split("\n");
  assert.equal(result.code, 1, result.stderr);
  assert.match(lines[0], /^\S+Z SERVING$/);
  assert.match(lines.at(-1)!, /^\S+Z NOT_SERVING$/);
});

Deno.test("health against a node that is down exits 3 with one line", opts, async () => {
  const result = await runKvstore(["health", "--endpoint", `127.0.0.1:${freePort()}`, "--timeout-ms", "3000"]);
  assert.equal(result.code, 3, result.stderr);
  assert.match(result.stderr, /^kvstore health: Cannot reach 127\.0\.0\.1:\d+/);
});

/** Client connections the node reports (the CLI's own included). */
async function fetchConnections(address: string): Promise<number> {
  const result = await runKvstore(["info", "--json", "--endpoint", address]);
  return result.code === 0 ? JSON.parse(result.stdout).connections : 0;
}
