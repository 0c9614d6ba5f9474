/**
 * Every client subcommand against a real server and against none: success, not found,
 * bad usage, server down, and JSON that parses.
 */

import assert from "node:assert/strict";
import { KvClient } from "../src/client/client.ts";
import { freePort, runKvstore, startServer } from "./helpers/server_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** Runs the tasks a few at a time: each is a process, and the machine is shared. */
async function inBatches<T>(tasks: (() => Promise<T>)[], size = 6): Promise<T[]> {
  const results: T[] = [];
  for (let i = 0; i < tasks.length; i += size) {
    results.push(...await Promise.all(tasks.slice(i, i + size).map((task) => task())));
  }
  return results;
}

/** A successful invocation of each subcommand that talks to a server. */
const INVOCATIONS: Record<string, string[]> = {
  get: ["get", "k"],
  set: ["set", "k", "v"],
  del: ["del", "k"],
  exists: ["exists", "k"],
  expire: ["expire", "k", "10"],
  ttl: ["ttl", "k"],
  mget: ["mget", "a", "b"],
  mset: ["mset", "a", "1"],
  scan: ["scan"],
  info: ["info"],
  health: ["health"],
  export: ["export", "-"],
  import: ["import", "/dev/null"],
  bench: ["bench", "-n", "1", "-c", "1"],
  shell: ["shell"],
  promote: ["promote"],
  replicaof: ["replicaof", "127.0.0.1:1"],
  wait: ["wait", "0", "10"],
  snapshot: ["snapshot"],
  digest: ["digest"],
  cluster: ["cluster", "status"],
};

Deno.test(
  "every subcommand that talks to a server reports one clear line and exit 3 when it is down",
  opts,
  async () => {
    const endpoint = `127.0.0.1:${freePort()}`;
    const results = await inBatches(
      Object.entries(INVOCATIONS).filter(([name]) => name !== "shell").map(([name, args]) => async () => {
        const result = await runKvstore([...args, "--endpoint", endpoint, "--timeout-ms", "3000"]);
        return { name, result };
      }),
    );
    for (const { name, result } of results) {
      assert.equal(result.code, 3, `${name}: ${result.stderr}`);
      assert.equal(result.stderr.trim().split("\n").length, 1, `${name}: ${result.stderr}`);
      assert.match(
        result.stderr,
        new RegExp(`^kvstore ${name}: Cannot reach ${endpoint.replaceAll(".", "\\.")}: .*is the server running`),
      );
    }
  },
);

Deno.test(
  "every subcommand refuses an unknown flag, a bad endpoint and wrong arguments with exit 2",
  opts,
  async () => {
    const checks = Object.entries(INVOCATIONS).flatMap(([name, args]) => [
      { name, args: [...args, "--no-such-flag"], message: /Unknown flag --no-such-flag/ },
      { name, args: [...args, "--endpoint", "nohost"], message: /Invalid --endpoint "nohost": expected host:port/ },
    ]);
    checks.push(
      { name: "mset", args: ["mset", "a"], message: /Expected KEY VALUE/ },
      { name: "mset", args: ["mset", "a", "1", "b"], message: /Expected KEY VALUE pairs, got 3 arguments/ },
      { name: "mset", args: ["mset", "a", "1", "--ttl", "0"], message: /Invalid --ttl "0": expected a positive/ },
      { name: "scan", args: ["scan", "--page-size", "0"], message: /Invalid --page-size "0"/ },
      { name: "info", args: ["info", "extra"], message: /Unknown section "extra": expected server, clients, / },
      { name: "export", args: ["export", "-", "--page-size", "x"], message: /Invalid --page-size "x"/ },
      { name: "ttl", args: ["ttl", "k", "--timeout-ms", "0"], message: /Invalid --timeout-ms "0"/ },
    );
    const results = await inBatches(
      checks.map((check) => async () => ({ check, result: await runKvstore(check.args) })),
    );
    for (const { check, result } of results) {
      assert.equal(result.code, 2, `${check.args.join(" ")}: ${result.stderr}`);
      assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
      assert.match(result.stderr, new RegExp(`^kvstore ${check.name}: `));
      assert.match(result.stderr, check.message);
    }
    const repair = await runKvstore(["repair", "--data-dir", "/nonexistent/kvstore-data", "--check"]);
    assert.deepEqual([repair.code, repair.stderr], [
      2,
      'kvstore repair: Cannot repair "/nonexistent/kvstore-data": no such directory\n',
    ]);
    const env = await runKvstore(["get", "k"], { env: { KVSTORE_ENDPOINT: "localhost" } });
    assert.equal(env.code, 2);
    assert.match(env.stderr, /Invalid KVSTORE_ENDPOINT "localhost"/);
  },
);

Deno.test("smoke: mset, mget and scan work in plain text and JSON", opts, async () => {
  await using server = await startServer();
  const kv = (...args: string[]) => runKvstore([...args, "--endpoint", server.address]);
  assert.deepEqual(
    await kv("mset", "user:1", "ada", "user:2", "bob", "other", "x", "--ttl", "100").then((r) => [r.code, r.stdout]),
    [
      0,
      "OK\n",
    ],
  );
  assert.deepEqual(await kv("mget", "user:1", "nope", "user:2").then((r) => r.stdout), "ada\n\nbob\n");
  assert.deepEqual(JSON.parse((await kv("mget", "user:1", "nope", "--json")).stdout), [
    { key: "user:1", found: true, value: "ada" },
    { key: "nope", found: false, value: null },
  ]);
  assert.equal(
    (await kv("scan", "--prefix", "user:")).stdout.split("\n").filter(Boolean).sort().join(","),
    "user:1,user:2",
  );
  const scanned = (await kv("scan", "--prefix", "user:", "--values", "--json")).stdout.trim().split("\n").map((line) =>
    JSON.parse(line)
  );
  assert.equal(scanned.length, 2);
  assert.equal(typeof scanned[0].expiresAtMs, "number");
  assert.deepEqual(JSON.parse((await kv("ttl", "nope", "--json")).stdout), { key: "nope", ttl: -2 });
  assert.deepEqual(JSON.parse((await kv("expire", "nope", "5", "--json")).stdout), { key: "nope", success: false });
});

Deno.test("info is readable in sections, and --json gives numbers for counts", opts, async () => {
  await using server = await startServer();
  await runKvstore(["set", "k", "v", "--endpoint", server.address]);
  const plain = await runKvstore(["info", "--endpoint", server.address]);
  assert.equal(plain.code, 0);
  for (const section of ["# Server", "# Clients", "# Keyspace", "# Memory", "# Replication"]) {
    assert.ok(plain.stdout.includes(`${section}\n`), section);
  }
  assert.match(plain.stdout, /^role\s+master$/m);
  assert.match(plain.stdout, /^keys\s+1$/m);
  assert.match(plain.stdout, /^uptime_ms\s+\d+ \(/m);
  assert.match(plain.stdout, /^rss_bytes\s+\d+ \(\d+\.\d MiB\)$/m);
  assert.match(plain.stdout, /^health\s+SERVING$/m);
  const replication = await runKvstore(["info", "Replication", "keyspace", "--endpoint", server.address]);
  assert.equal(replication.code, 0, replication.stderr);
  assert.deepEqual(
    replication.stdout.split("\n").filter((line) => line.startsWith("# ")),
    ["# Keyspace", "# Replication"],
    "sections named, in any case, keep their order",
  );
  assert.deepEqual(
    Object.keys(JSON.parse((await runKvstore(["info", "keyspace", "--json", "--endpoint", server.address])).stdout)),
    ["keys", "expiring_keys", "expired_keys"],
  );
  const none = await runKvstore(["info", "cluster", "--endpoint", server.address]);
  assert.deepEqual([none.code, none.stdout, none.stderr], [0, "", "kvstore info: A master has no cluster section\n"]);
  const json = JSON.parse((await runKvstore(["info", "--json", "--endpoint", server.address])).stdout);
  assert.equal(json.keys, 1);
  assert.equal(typeof json.uptime_ms, "number");
  assert.equal(json.health, "SERVING");
  assert.equal(json.runtime, `deno ${Deno.version.deno}`);
  assert.ok(json.calls_total >= 1);
});

Deno.test("set --ttl writes the value and its deadline in one call", opts, async () => {
  await using server = await startServer({ args: ["--max-ttl-seconds", "100"] });
  const refused = await runKvstore(["set", "k", "v", "--ttl", "1000", "--endpoint", server.address]);
  assert.equal(refused.code, 3);
  const missing = await runKvstore(["get", "k", "--endpoint", server.address]);
  assert.equal(missing.code, 1, "a refused TTL leaves no key behind (no set-then-expire)");
});

Deno.test("expire and wait refuse numbers their int32 fields cannot carry, and change nothing", opts, async () => {
  await using server = await startServer();
  const kv = (...args: string[]) => runKvstore([...args, "--endpoint", server.address]);
  assert.equal((await kv("set", "k", "v")).code, 0);
  // 2^32 seconds would reach the server as 0 seconds, which deletes the key.
  for (const seconds of ["4294967296", "2147483648", "-2147483649"]) {
    const expire = await kv("expire", "k", seconds);
    assert.equal(expire.code, 2, `expire ${seconds}: ${expire.stderr}`);
    assert.match(
      expire.stderr,
      /^kvstore expire: Invalid SECONDS ".*": expected a whole number from -2147483648 to 2147483647\n$/,
    );
  }
  assert.deepEqual(await kv("get", "k").then((r) => [r.code, r.stdout]), [0, "v\n"], "the key is untouched");
  assert.equal(await kv("ttl", "k").then((r) => r.stdout), "-1\n");
  // Negative numbers are values, not flags, as in redis-cli; other dashes go after --.
  assert.deepEqual(await kv("set", "temp", "-5").then((r) => [r.code, r.stderr]), [0, ""]);
  assert.equal(await kv("get", "temp").then((r) => r.stdout), "-5\n");
  assert.equal((await runKvstore(["set", "--endpoint", server.address, "flagish", "--", "-x"])).code, 0);
  assert.equal(await kv("get", "flagish").then((r) => r.stdout), "-x\n");
  assert.deepEqual(await kv("set", "k2", "v", "--ttl", "-5").then((r) => [r.code, r.stderr]), [
    2,
    'kvstore set: Invalid --ttl "-5": expected a positive whole number of seconds\n',
  ]);
  assert.deepEqual(await kv("expire", "temp", "-1").then((r) => [r.code, r.stdout]), [0, "1\n"]);
  assert.equal((await kv("get", "temp")).code, 1, "EXPIRE with a negative TTL deletes the key");
  // 2^32 + 1 replicas would be asked for as 1.
  const wait = await kv("wait", "4294967297", "10");
  assert.equal(wait.code, 2, wait.stderr);
  assert.match(
    wait.stderr,
    /^kvstore wait: Invalid NUM_REPLICAS "4294967297": expected a whole number from 0 to 2147483647/,
  );
});

Deno.test("del and exists of thousands of keys finish, each call within its own deadline", opts, async () => {
  await using server = await startServer();
  const keys = Array.from({ length: 5000 }, (_, i) => `tmp:${i}`);
  using client = new KvClient(server.address, { deadlineMs: 30_000 });
  for (let i = 0; i < keys.length; i += 1000) {
    await client.mset(keys.slice(i, i + 1000).map((key) => ({ key, value: "x" })));
  }
  // As `kvstore scan --prefix tmp: | xargs kvstore del` makes it: every key at once. Sent
  // all together, the calls shared one deadline of 0.5 s, and the last ones missed it.
  const args = ["--endpoint", server.address, "--timeout-ms", "500", ...keys];
  const exists = await runKvstore(["exists", ...args], { timeoutMs: 60_000 });
  assert.deepEqual([exists.code, exists.stdout, exists.stderr], [0, "5000\n", ""]);
  const del = await runKvstore(["del", ...args], { timeoutMs: 60_000 });
  assert.deepEqual([del.code, del.stdout, del.stderr], [0, "5000\n", ""]);
  assert.equal(Number((await client.info()).keys), 0);
});

Deno.test("operator commands against a master: snapshot, digest, wait, promote, cluster", opts, async () => {
  await using server = await startServer();
  const kv = (...args: string[]) => runKvstore([...args, "--endpoint", server.address]);
  await kv("mset", "a", "1", "b", "2");

  const snapshot = await kv("snapshot");
  assert.equal(snapshot.code, 0, snapshot.stderr);
  assert.match(
    snapshot.stdout,
    /^Wrote .*kvstore\.rdb: 2 keys, \d+ bytes, seq \d+(?: to \d+)?, in \d+\.\d\d s\nCut the log from /,
  );
  const snapshotJson = JSON.parse((await kv("snapshot", "--json")).stdout);
  assert.equal(snapshotJson.keys, 2);
  assert.equal(typeof snapshotJson.durationMs, "number");

  const digest = await kv("digest");
  assert.match(digest.stdout, /^[0-9a-f]{16} keys=2 seq=2\n$/);
  assert.deepEqual(
    Object.keys(JSON.parse((await kv("digest", "--json")).stdout)).sort(),
    ["digest", "keys", "replid", "seq"],
  );

  assert.deepEqual(await kv("wait", "0", "10").then((r) => [r.code, r.stdout]), [0, "0\n"]);
  assert.deepEqual(await kv("wait", "1", "10").then((r) => [r.code, r.stdout]), [1, "0\n"], "too few replicas: exit 1");
  assert.deepEqual(JSON.parse((await kv("wait", "0", "10", "--json")).stdout), { replicas: 0, seq: 2 });

  const promote = await kv("promote");
  assert.equal(promote.code, 0, promote.stderr);
  assert.match(promote.stdout, /^OK already a master: replid [0-9a-f]+ at seq 2\n$/);

  const cluster = await kv("cluster", "status");
  assert.equal(cluster.code, 3);
  assert.match(cluster.stderr, /^kvstore cluster: 127\.0\.0\.1:\d+ is not a router/);
});
