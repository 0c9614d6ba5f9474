/**
 * Every rpc of the seed interface against a real server process, including TTLs that
 * expire in real time and the active sweep reclaiming keys nobody reads.
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import http2 from "node:http2";
import { KvClient, KvClientError } from "../src/client/client.ts";
import { startOn, tempDataDir } from "./helpers/durability.ts";
import { spawnKvstore, startServer, waitUntil } from "./helpers/server_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("smoke: every rpc of the seed interface behaves like the C++ store", opts, async () => {
  await using server = await startServer();
  using client = new KvClient(server.address);

  assert.equal(await client.get("missing"), undefined);
  assert.deepEqual(await client.call("Get", { key: "missing" }), { found: false, value: "" });
  assert.equal(await client.set("k", "v1"), true);
  assert.equal(await client.get("k"), "v1");
  assert.equal(await client.contains("k"), true);
  assert.equal(await client.contains("missing"), false);

  assert.equal(await client.ttl("k"), -1, "no deadline");
  assert.equal(await client.ttl("missing"), -2, "no key");
  assert.equal(await client.expire("k", 100), true);
  const ttl = await client.ttl("k");
  assert.ok(ttl === 100 || ttl === 99, `ttl ${ttl}`);
  assert.equal(await client.expire("missing", 100), false, "EXPIRE on a missing key fails");

  assert.equal(await client.set("k", "v2"), true);
  assert.equal(await client.ttl("k"), -1, "SET clears the TTL");

  assert.deepEqual(await client.call("Delete", { key: "k" }), { success: true, found: true });
  assert.deepEqual(await client.call("Delete", { key: "k" }), { success: true, found: false });
  assert.equal(await client.get("k"), undefined);
});

Deno.test("smoke: values keep every byte of UTF-8 text", opts, async () => {
  await using server = await startServer();
  using client = new KvClient(server.address);
  const value = "plain ascii, é, €, 😀, \u0000 nul, \n newline, 中文";
  await client.set("ключ 🔑", value);
  assert.equal(await client.get("ключ 🔑"), value);
  const large = "x".repeat(1024 * 1024);
  await client.set("large", large);
  assert.equal((await client.get("large"))?.length, large.length);
});

Deno.test("EXPIRE with zero or negative seconds deletes the key", opts, async () => {
  await using server = await startServer();
  using client = new KvClient(server.address);
  await client.set("a", "1");
  await client.set("b", "2");
  assert.equal(await client.expire("a", 0), true);
  assert.equal(await client.expire("b", -10), true);
  assert.equal(await client.contains("a"), false);
  assert.equal(await client.contains("b"), false);
});

Deno.test("a key expires in real time and TTL counts down", opts, async () => {
  await using server = await startServer();
  using client = new KvClient(server.address);
  await client.set("short", "v");
  await client.set("long", "v");
  assert.equal(await client.expire("short", 1), true);
  assert.equal(await client.expire("long", 60), true);
  // 1 until half a second has passed (TTL rounds to the nearest second), 0 after that.
  const ttl = await client.ttl("short");
  assert.ok(ttl === 1 || ttl === 0, `ttl ${ttl}`);
  const longTtl = await client.ttl("long");
  assert.ok(longTtl === 60 || longTtl === 59, `ttl ${longTtl}`);
  await waitUntil(async () => !(await client.contains("short")), "the key expires", 3000);
  assert.equal(await client.get("short"), undefined);
  assert.equal(await client.ttl("short"), -2);
  assert.equal(await client.get("long"), "v");
});

Deno.test("the active sweep reclaims expired keys that nobody reads", opts, async () => {
  await using server = await startServer();
  using client = new KvClient(server.address);
  await Promise.all(Array.from({ length: 200 }, (_, i) => client.set(`ttl:${i}`, "v")));
  await Promise.all(Array.from({ length: 200 }, (_, i) => client.expire(`ttl:${i}`, 1)));
  await client.set("keep", "v");
  assert.equal(Number((await client.info()).keys), 201);
  await waitUntil(async () => Number((await client.info()).keys) === 1, "the sweep removes all 200 keys", 5000);
  const info = await client.info();
  assert.equal(Number(info.expired_keys), 200);
  assert.equal(Number(info.expiring_keys), 0);
});

Deno.test("Info describes the node", opts, async () => {
  await using server = await startServer();
  using client = new KvClient(server.address);
  await client.set("k", "v");
  const info = await client.info();
  assert.equal(info.role, "master");
  assert.match(info.version, /^\d+\.\d+\.\d+/);
  assert.equal(info.address, server.address);
  assert.equal(Number(info.keys), 1);
  assert.equal(Number(info.last_seq), 1);
  assert.match(info.replid, /^[0-9a-f]{40}$/);
  assert.ok(Number(info.rss_bytes) > 0);
  assert.ok(Number(info.dataset_bytes) > 0);
});

Deno.test("a replica serves reads and refuses writes, naming its master", opts, async () => {
  await using server = await startServer({ args: ["--replica", "--master-address", "127.0.0.1:1"] });
  using client = new KvClient(server.address);
  assert.equal(await client.get("k"), undefined);
  await assert.rejects(client.set("k", "v"), /FAILED_PRECONDITION: .*read-only replica.*127\.0\.0\.1:1/);
  await assert.rejects(client.delete("k"), /FAILED_PRECONDITION/);
  await assert.rejects(client.expire("k", 5), /FAILED_PRECONDITION/);
  assert.equal((await client.info()).role, "replica");
});

Deno.test("concurrent writers all get answers and every write lands", opts, async () => {
  await using server = await startServer();
  const clients = Array.from({ length: 8 }, () => new KvClient(server.address));
  try {
    await Promise.all(clients.map(async (client, c) => {
      for (let round = 0; round < 10; round++) {
        await Promise.all(Array.from({ length: 25 }, (_, i) => client.set(`c${c}:k${round * 25 + i}`, `${c}`)));
      }
    }));
    assert.equal(Number((await clients[0].info()).keys), 8 * 250);
    assert.equal(await clients[0].get("c7:k249"), "7");
  } finally {
    for (const client of clients) client.close();
  }
});

Deno.test("SIGTERM shuts the server down gracefully", opts, async () => {
  await using server = await startServer();
  using client = new KvClient(server.address);
  await client.set("k", "v");
  const status = await server.stop("SIGTERM");
  assert.equal(status.code, 0);
  assert.match(server.stderr, /Shutting down reason="received SIGTERM"/);
  assert.match(server.stderr, /Stopped keys=1/);
});

Deno.test("SIGTERM under load: calls in flight are answered, and every acknowledged write is kept", opts, async () => {
  await using dataDir = await tempDataDir();
  const acked: string[] = [];
  const refusals: string[] = [];
  {
    await using server = await startOn(dataDir.path);
    using client = new KvClient(server.address);
    const writes = Array.from({ length: 500 }, (_, i) =>
      client.set(`k${i}`, "v".repeat(1000)).then(
        () => acked.push(`k${i}`),
        (error: unknown) => refusals.push(error instanceof KvClientError ? error.codeName : String(error)),
      ));
    await waitUntil(() => acked.length > 0, "a first write acknowledged", 10_000);
    const status = await server.stop("SIGTERM");
    await Promise.all(writes);
    assert.equal(status.code, 0, server.stderr);
    assert.doesNotMatch(server.stderr, /ERROR/);
  }
  // Calls that reach the node after it stopped accepting are refused; none is cut off.
  assert.deepEqual(refusals.filter((code) => code !== "UNAVAILABLE"), []);
  await using restarted = await startOn(dataDir.path);
  using client = new KvClient(restarted.address);
  const values = await client.mget(acked);
  assert.equal(values.filter((value) => value === undefined).length, 0, "acknowledged writes missing");
});

Deno.test("SIGINT shuts the server down gracefully", opts, async () => {
  await using server = await startServer();
  const status = await server.stop("SIGINT");
  assert.equal(status.code, 0);
  assert.match(server.stderr, /received SIGINT/);
});

Deno.test("a second signal during a shutdown that waits for a call exits at once with status 130", opts, async () => {
  await using server = await startServer();
  using client = new KvClient(server.address);
  await client.set("k", "v");
  // A call whose request never ends: the graceful shutdown waits for it (up to 5 s).
  const session = http2.connect(`http://${server.address}`);
  session.on("error", () => {});
  try {
    const stuck = session.request({
      ":method": "POST",
      ":path": "/kvstore.KeyValueStore/Set",
      "content-type": "application/grpc",
      te: "trailers",
    });
    stuck.on("error", () => {});
    stuck.write(Buffer.from([0, 0, 0, 0, 100])); // announces 100 bytes of message, never sent
    // A whole call after it on the same connection: once it is answered, the server has
    // read the stuck call's start too.
    const probe = session.request({
      ":method": "POST",
      ":path": "/kvstore.KeyValueStore/Contains",
      "content-type": "application/grpc",
      te: "trailers",
    });
    probe.on("data", () => {});
    probe.end(Buffer.from([0, 0, 0, 0, 0]));
    await new Promise((resolve) => probe.on("close", resolve));
    server.signal("SIGTERM");
    await server.waitForLog(/Shutting down/);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.ok(server.running, "the shutdown waits for the call in flight");
    const startedMs = performance.now();
    const status = await server.stop("SIGTERM", 4000);
    assert.equal(status.code, 130, server.stderr);
    assert.ok(performance.now() - startedMs < 4000);
    assert.match(server.stderr, /Second signal: exiting without waiting/);
  } finally {
    session.destroy();
  }
});

Deno.test("a node whose log reader goes away keeps serving and still shuts down gracefully", opts, async () => {
  await using dataDir = await tempDataDir();
  const child = spawnKvstore(["--address", "127.0.0.1:0", "--data-dir", dataDir.path]);
  const killTimer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  try {
    // Read the log up to "Listening on", then close the pipe, as `kvstore | head` or a log
    // shipper that died would: every later log line meets a broken pipe.
    const reader = child.stderr.getReader();
    let log = "";
    let address: string | undefined;
    while (address === undefined) {
      const { value, done } = await reader.read();
      assert.ok(!done, `kvstore exited before listening:\n${log}`);
      log += new TextDecoder().decode(value);
      address = /Listening on (\S+:\d+)/.exec(log)?.[1];
    }
    await reader.cancel();
    void child.stdout.cancel();
    using client = new KvClient(address);
    await client.set("k", "v");
    // Shutting down logs several lines; none may stop it half-way.
    child.kill("SIGTERM");
    const status = await child.status;
    assert.equal(status.code, 0, "a graceful exit");
  } finally {
    clearTimeout(killTimer);
  }
  // The shutdown finished: it wrote the snapshot and released the directory.
  await Deno.stat(`${dataDir.path}/kvstore.rdb`);
  await using restarted = await startOn(dataDir.path);
  using client = new KvClient(restarted.address);
  assert.equal(await client.get("k"), "v");
});
