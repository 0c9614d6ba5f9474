/**
 * Shards that are down or hung: the router answers UNAVAILABLE naming the shard, fast,
 * keeps serving the other shards' keys, and uses a shard again once it is back. Also the
 * router's start-up mistakes.
 */

import assert from "node:assert/strict";
import { describeFailure } from "../src/client/cli.ts";
import { KvClient, KvClientError } from "../src/client/client.ts";
import { ShardedClient } from "../src/client/sharded_client.ts";
import { ClusterClient } from "../src/client/cluster_client.ts";
import { startCluster, startRouter } from "./helpers/cluster_process.ts";
import { runKvstore, startServer, unreadBytesAt, waitUntil } from "./helpers/server_process.ts";
import { LoadingGate } from "../src/server/loading_gate.ts";
import {
  addService,
  CLIENT_TRANSPORT_LIMITS,
  createServer,
  kvstoreServiceDefinition,
  listen,
} from "../src/transport/grpc.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

async function failure(promise: Promise<unknown>): Promise<{ error: KvClientError; elapsedMs: number }> {
  const started = performance.now();
  const error = await promise.then(() => null, (error) => error);
  assert.ok(error !== null, "the call should have failed");
  return { error, elapsedMs: performance.now() - started };
}

Deno.test(
  "smoke: a shard that is down gives UNAVAILABLE naming it, fast, and the other shards keep serving",
  opts,
  async () => {
    await using cluster = await startCluster(3);
    using client = cluster.client(30_000);
    const ring = cluster.ring();
    const keys = Array.from({ length: 60 }, (_, i) => `k${i}`);
    await client.mset(keys.map((key) => ({ key, value: `v-${key}` })));
    const down = cluster.shards[1];
    const onDown = keys.filter((key) => ring.owner(key) === down.address);
    const elsewhere = keys.filter((key) => ring.owner(key) !== down.address);
    await down.kill();

    // The client's own deadline is 30 s: the answer must come from the router, quickly.
    const { error, elapsedMs } = await failure(client.get(onDown[0]));
    assert.equal(error.codeName, "UNAVAILABLE");
    assert.match(error.details, new RegExp(`router: Cannot reach shard "${down.address}" at ${down.address}: `));
    assert.ok(elapsedMs < 3000, `answered in ${elapsedMs} ms`);
    const batch = await failure(client.mget([elsewhere[0], onDown[1]]));
    assert.match(batch.error.details, new RegExp(`Cannot reach shard "${down.address}"`));
    assert.deepEqual(await client.mget(elsewhere), elsewhere.map((key) => `v-${key}`), "other shards answer");

    // The router's probes notice it too, and its log says so once.
    await cluster.router.waitForLog(
      new RegExp(`WARN {2}router: Shard "${down.address}" \\(${down.address}\\) does not answer`),
    );

    const info = await client.info();
    const downStatus = info.cluster!.shards.find((shard) => shard.name === down.address)!;
    assert.equal(downStatus.reachable, false);
    assert.match(downStatus.error, /Cannot reach shard/);
    const cli = await runKvstore(["get", onDown[0], "--endpoint", cluster.router.address]);
    assert.equal(cli.code, 3);
    assert.match(cli.stderr, new RegExp(`^kvstore get: UNAVAILABLE: router: Cannot reach shard "${down.address}"`));
    const status = await runKvstore(["cluster", "status", "--endpoint", cluster.router.address]);
    assert.match(status.stdout, new RegExp(`${down.address} +${down.address} +serving +down`));

    // The shard comes back (empty: it kept nothing) at the same address, and is used again.
    await using back = await startServer({ address: down.address });
    await waitUntil(
      async () => {
        try {
          await client.set(onDown[0], "again");
          return true;
        } catch {
          return false;
        }
      },
      "the router uses the shard again",
      15_000,
      200,
    );
    assert.equal(await client.get(onDown[0]), "again");
    void back;
  },
);

Deno.test(
  "a shard that accepts connections but never answers gives UNAVAILABLE within the connect timeout",
  opts,
  async () => {
    // A TCP listener that never speaks HTTP/2: connections open, but gRPC never becomes ready.
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const silent: Deno.Conn[] = [];
    const accepting = (async () => {
      try {
        for await (const conn of listener) silent.push(conn);
      } catch { /* closed */ }
    })();
    const address = `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`;
    try {
      await using router = await startRouter({ shards: [address], args: ["--connect-timeout-ms", "500"] });
      using client = new KvClient(router.address, { deadlineMs: 30_000 });
      const { error, elapsedMs } = await failure(client.get("k"));
      assert.equal(error.codeName, "UNAVAILABLE");
      assert.match(error.details, /Cannot reach shard .*: no connection within 500 ms/);
      assert.ok(elapsedMs < 3000, `answered in ${elapsedMs} ms`);
      // The router said so at start, before any call failed.
      await router.waitForLog(/WARN .*A shard does not answer; calls for its keys fail until it does/);
    } finally {
      listener.close();
      for (const conn of silent) conn.close();
      await accepting;
    }
  },
);

Deno.test(
  "a shard that hangs mid-call (SIGSTOP) fails the call naming the shard, before the client's own deadline",
  opts,
  async () => {
    await using cluster = await startCluster(2);
    const ring = cluster.ring();
    const hung = cluster.shards[0];
    const key = Array.from({ length: 100 }, (_, i) => `k${i}`).find((key) => ring.owner(key) === hung.address)!;
    // The router gives up on the shard 500 ms (a tenth of 5 s) before the client would.
    using client = cluster.client(5000);
    await client.set(key, "v");
    hung.signal("SIGSTOP");
    try {
      const { error, elapsedMs } = await failure(client.get(key));
      assert.equal(error.codeName, "DEADLINE_EXCEEDED");
      assert.match(error.details, new RegExp(`router: .*shard "${hung.address}" at ${hung.address}`));
      assert.ok(elapsedMs < 5000, `answered in ${elapsedMs} ms`);
      // The CLI says which shard did not answer, and of a write that it may have been applied.
      const cli = await runKvstore(["set", key, "w", "--endpoint", cluster.router.address, "--timeout-ms", "2000"]);
      assert.equal(cli.code, 3);
      assert.match(
        cli.stderr,
        new RegExp(
          `^kvstore set: DEADLINE_EXCEEDED: router: The call's deadline passed before shard "${hung.address}" .*; ` +
            "the write may or may not have been applied on that shard",
        ),
      );
      // The command line says it too, rather than a timeout that names nothing.
      const cliGet = await runKvstore(["get", key, "--endpoint", cluster.router.address, "--timeout-ms", "2000"]);
      assert.equal(cliGet.code, 3, cliGet.stderr);
      assert.match(cliGet.stderr, new RegExp(`^kvstore get: DEADLINE_EXCEEDED: router: .*shard "${hung.address}"`));
    } finally {
      hung.signal("SIGCONT");
    }
    assert.ok(["v", "w"].includes((await client.get(key)) ?? ""), "the CLI's write was applied, or not");
  },
);

Deno.test(
  "a write the router loses mid-call (its shard killed while it waits) says it may have been applied; a new one cannot reach",
  opts,
  async () => {
    await using cluster = await startCluster(2);
    const ring = cluster.ring();
    const victim = cluster.shards[0];
    const keys = Array.from({ length: 100 }, (_, i) => `k${i}`).filter((key) => ring.owner(key) === victim.address);
    using client = cluster.client(20_000);
    using sharded = new ShardedClient(cluster.shards.map((shard) => shard.address), { deadlineMs: 20_000 });
    await client.mset(keys.map((key) => ({ key, value: "v0" })));
    assert.equal(await sharded.get(keys[2]), "v0", "the sharded client's connection is open");
    const port = Number(victim.address.split(":")[1]);
    assert.deepEqual(await unreadBytesAt(port).then((unread) => unread.filter((bytes) => bytes > 0)), []);

    // The shard stops reading: the calls below reach its socket (the router's connection
    // and the sharded client's own) and wait there, unanswered, until it is killed.
    victim.signal("SIGSTOP");
    const outcome = (call: Promise<unknown>) => call.then(() => null, (error: unknown) => error);
    const routedWrite = outcome(client.set(keys[0], "v1"));
    const routedRead = outcome(client.get(keys[1]));
    const directWrite = outcome(sharded.set(keys[2], "v1"));
    // Both connections hold bytes, and the router's no longer grow: both routed calls are there.
    let lastUnread = -1;
    await waitUntil(
      async () => {
        const unread = (await unreadBytesAt(port)).filter((bytes) => bytes > 0);
        const total = unread.reduce((sum, bytes) => sum + bytes, 0);
        const settled = unread.length >= 2 && total === lastUnread;
        lastUnread = total;
        return settled;
      },
      "the router's calls and the sharded client's wait in the stopped shard's socket",
      10_000,
      100,
    );
    await victim.kill();

    const shard = `shard "${victim.address}" at ${victim.address}`;
    const write = await routedWrite;
    assert.ok(write instanceof KvClientError, String(write));
    assert.equal(write.codeName, "UNAVAILABLE", write.message);
    assert.match(
      write.details,
      new RegExp(
        `^router: Connection to ${shard} lost during the call \\(.+\\); the write may or may not have been ` +
          "applied on that shard \\(read it back to know\\)$",
      ),
    );
    assert.equal(write.outcomeUnknown, true, "the router's trailer says so to the client library");
    assert.equal(write.transport, null, "the router answered: the client's own connection is fine");
    assert.equal(
      describeFailure(write, cluster.router.address, 20_000),
      `UNAVAILABLE: ${write.details}`,
      "the CLI's line says it once",
    );
    const read = await routedRead;
    assert.ok(read instanceof KvClientError, String(read));
    assert.equal(read.codeName, "UNAVAILABLE", read.message);
    assert.equal(read.outcomeUnknown, false);
    assert.match(read.details, new RegExp(`^router: Connection to ${shard} lost during the call \\(`));
    assert.doesNotMatch(read.details, /may or may not/, "a read changes nothing");
    // The sharded client, talking to the shard itself, says the same of its write.
    const direct = await directWrite;
    assert.ok(direct instanceof KvClientError, String(direct));
    assert.equal(direct.codeName, "UNAVAILABLE", direct.message);
    assert.equal(direct.transport, "lost");
    assert.equal(direct.outcomeUnknown, true);
    assert.match(direct.message, /may or may not have been applied \(from /);

    // A write sent after the shard died never reached it: "Cannot reach", and no doubt.
    const after = await failure(client.set(keys[3], "v1"));
    assert.equal(after.error.codeName, "UNAVAILABLE");
    assert.match(after.error.details, new RegExp(`^router: Cannot reach ${shard}: `));
    assert.doesNotMatch(after.error.details, /may or may not/);
    assert.equal(after.error.outcomeUnknown, false);
    const cli = await runKvstore(["set", keys[3], "v1", "--endpoint", cluster.router.address]);
    assert.equal(cli.code, 3);
    assert.match(cli.stderr, new RegExp(`^kvstore set: UNAVAILABLE: router: Cannot reach ${shard}: `));
  },
);

Deno.test("a router warns at start when two of its shards are one node under two addresses", opts, async () => {
  await using node = await startServer();
  const twin = node.address.replace("127.0.0.1", "localhost");
  await using router = await startRouter({ shards: [node.address, twin] });
  await router.waitForLog(/WARN .*Two shards are one node .*shard=\S+ sameAs=\S+/);
});

Deno.test("a router says a shard that is loading its dataset is loading, not unreachable", opts, async () => {
  // A shard that stays loading: a node's own loading gate, never opened, in front of the
  // service (a real node leaves this state on its own, too soon for a test to rely on).
  const loading = createServer(CLIENT_TRANSPORT_LIMITS);
  const gate = new LoadingGate(() => "loading its dataset from /data (3 s so far)");
  const never = () => assert.fail("a loading node's handlers do not run");
  addService(loading, kvstoreServiceDefinition(), gate.guard(kvstoreServiceDefinition(), { Info: never, Get: never }));
  const port = await listen(loading, { host: "127.0.0.1", port: 0 }, "test");
  const address = `127.0.0.1:${port}`;
  try {
    await using router = await startRouter({ shards: [address] });
    const warning = (await router.waitForLog(/WARN .*rebalance: (.*) shard=(\S+) error=/))[0];
    assert.match(
      warning,
      /A shard is loading its dataset; calls for its keys are refused until it has, and it is used once loaded/,
    );
    assert.doesNotMatch(warning, /Cannot reach|does not answer/);

    using client = new KvClient(router.address, { deadlineMs: 5000 });
    const { error } = await failure(client.get("k"));
    assert.equal(error.codeName, "UNAVAILABLE");
    assert.equal(
      error.details,
      `router: Shard "${address}" at ${address} is loading its dataset, and serves its keys once loaded: ` +
        "server: Cannot serve Get yet: the node is loading its dataset from /data (3 s so far); retry in a moment",
    );
    const cli = await runKvstore(["get", "k", "--endpoint", router.address]);
    assert.equal(cli.code, 3);
    assert.match(cli.stderr, /^kvstore get: UNAVAILABLE: router: Shard .* is loading its dataset/);
    const status = await runKvstore(["cluster", "status", "--endpoint", router.address]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, new RegExp(`\n${address} +${address} +serving +loading +100\.0%`));
  } finally {
    loading.forceShutdown();
  }
});

Deno.test("router start-up mistakes exit with one clear line", opts, async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "kvstore-router-" });
  try {
    const none = await runKvstore(["router", "--address", "127.0.0.1:0", "--data-dir", dataDir]);
    assert.equal(none.code, 1);
    assert.match(none.stderr.trim(), /^kvstore router: No cluster to serve: .* give --shards/);
    const bad = await runKvstore(["router", "--shards", "127.0.0.1:1,127.0.0.1:1"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr.trim(), /^kvstore router: Invalid --shards: shard "127.0.0.1:1" is listed twice$/);
    const file = `${dataDir}/a-file`;
    await Deno.writeTextFile(file, "");
    const notDir = await runKvstore(["router", "--data-dir", file, "--shards", "127.0.0.1:1"]);
    assert.equal(notDir.code, 1);
    assert.match(
      notDir.stderr.trim(),
      /^kvstore router: Cannot use data directory ".*": it is not a directory$/,
    );
    // One state file, one router: a second one on the same directory is refused, as a
    // second node is, rather than left to overwrite the first one's ring.
    await using first = await startRouter({ shards: ["127.0.0.1:1"], dataDir });
    const second = await runKvstore(["router", "--address", "127.0.0.1:0", "--data-dir", dataDir]);
    assert.equal(second.code, 1);
    assert.match(
      second.stderr.trim(),
      new RegExp(
        `^kvstore router: Cannot use data directory ".*": another kvstore process \\(pid ${first.pid}\\) is using it`,
      ),
    );
    await first.stop();
    const flag = await runKvstore(["router", "--bogus"]);
    assert.equal(flag.code, 2);
    assert.equal(flag.stderr.trim(), "kvstore router: Unknown flag --bogus (see kvstore router --help)");
    const word = await runKvstore(["router", "status"]);
    assert.equal(word.code, 2);
    assert.equal(word.stderr.trim(), 'kvstore router: Unexpected argument "status" (see kvstore router --help)');
    const value = await runKvstore(["router", "--shards"]);
    assert.equal(value.stderr.trim(), "kvstore router: Flag --shards needs a value (see kvstore router --help)");
    const help = await runKvstore(["router", "--help"]);
    assert.equal(help.code, 0);
    for (const text of ["--shards", "--data-dir", "--vnodes", "--read-from", "--connect-timeout-ms"]) {
      assert.ok(help.stdout.includes(text), text);
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("with --log-format json, the line saying why the router cannot start is JSON too", opts, async () => {
  await using holder = await startServer();
  const dataDir = await Deno.makeTempDir({ prefix: "kvstore-router-" });
  try {
    const result = await runKvstore(
      ["router", "--address", holder.address, "--data-dir", dataDir, "--shards", "127.0.0.1:1", "--log-format", "json"],
    );
    assert.equal(result.code, 1, result.stderr);
    const lines = result.stderr.trim().split("\n").map((line) => JSON.parse(line));
    const last = lines.at(-1);
    assert.equal(last.level, "error");
    assert.equal(last.component, "router");
    assert.match(last.msg, /^Cannot listen on 127\.0\.0\.1:\d+: the address is already in use/);
    const text = await runKvstore(
      ["router", "--address", holder.address, "--data-dir", dataDir, "--shards", "127.0.0.1:1"],
    );
    assert.equal(text.code, 1);
    assert.match(
      text.stderr.trim(),
      /^kvstore router: Cannot listen on 127\.0\.0\.1:\d+: the address is already in use/,
    );
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("adding a shard that cannot serve is refused before anything moves", opts, async () => {
  await using cluster = await startCluster(2);
  using client = cluster.client();
  await client.set("k", "v");
  const kv = (...args: string[]) => runKvstore([...args, "--endpoint", cluster.router.address]);

  const unreachable = await kv("cluster", "add-shard", "127.0.0.1:1");
  assert.equal(unreachable.code, 3);
  assert.match(
    unreachable.stderr,
    /^kvstore cluster: UNAVAILABLE: cluster: Cannot add shard "127.0.0.1:1": .*Cannot reach shard/,
  );
  assert.doesNotMatch(
    unreachable.stderr,
    /is the server running/,
    "the router answered; it is not the one unreachable",
  );

  await using busy = await startServer();
  await runKvstore(["set", "mine", "x", "--endpoint", busy.address]);
  const nonEmpty = await kv("cluster", "add-shard", busy.address);
  assert.equal(nonEmpty.code, 3);
  assert.match(nonEmpty.stderr, /it already holds 1 key; .*pass --force/);

  const router = await kv("cluster", "add-shard", cluster.router.address);
  assert.match(router.stderr, /is a router; a shard's address must be a master/);

  // A shard already on the ring, spelled another way, is one node under two names.
  const twin = cluster.shards[0].address.replace("127.0.0.1", "localhost");
  const twice = await kv("cluster", "add-shard", twin, "--force");
  assert.equal(twice.code, 3);
  assert.match(twice.stderr, new RegExp(`Cannot add shard "${twin}": it answers as the node already on the ring`));

  const unknown = await kv("cluster", "remove-shard", "127.0.0.1:2");
  assert.match(unknown.stderr, /NOT_FOUND: cluster: Cannot remove shard "127.0.0.1:2": no shard has that name/);

  using admin = new ClusterClient(cluster.router.address);
  const status = await admin.status();
  assert.equal(Number(status.epoch), 1, "nothing changed");
  assert.equal(status.shards.length, 2);
  assert.equal(await client.get("k"), "v");
});
