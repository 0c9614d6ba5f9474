/**
 * MGet, MSet and Scan against a real server, through the client library and the CLI.
 */

import assert from "node:assert/strict";
import { KvClient } from "../src/client/client.ts";
import { parseExposition, sampleValue } from "../src/metrics/exposition.ts";
import type { MSetResponse } from "../src/transport/messages.ts";
import { metricsUrl } from "./helpers/grpc_tools.ts";
import { runKvstore, startServer } from "./helpers/server_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("smoke: MSet writes all entries with their TTLs and MGet reads them in order", opts, async () => {
  await using server = await startServer();
  using client = new KvClient(server.address);
  const count = await client.mset([
    { key: "a", value: "1" },
    { key: "b", value: "2", ttlMs: 60_000 },
    { key: "c", value: "3", expiresAtMs: Date.now() + 120_000 },
  ]);
  assert.equal(count, 3);
  assert.deepEqual(await client.mget(["c", "missing", "a", "b"]), ["3", undefined, "1", "2"]);
  assert.equal(await client.ttl("a"), -1);
  assert.ok([60, 59].includes(await client.ttl("b")));
  assert.ok([120, 119].includes(await client.ttl("c")));
});

Deno.test("an MSet entry whose deadline has passed deletes its key", opts, async () => {
  await using server = await startServer();
  using client = new KvClient(server.address);
  await client.set("gone", "v");
  await client.mset([{ key: "gone", value: "new", expiresAtMs: Date.now() - 1000 }, { key: "kept", value: "v" }]);
  assert.deepEqual(await client.mget(["gone", "kept"]), [undefined, "v"]);
});

Deno.test("MSet is all or nothing: one bad entry refuses the whole call", opts, async () => {
  await using server = await startServer({ args: ["--max-value-bytes", "10"] });
  using client = new KvClient(server.address);
  await assert.rejects(
    client.mset([{ key: "ok", value: "fine" }, { key: "big", value: "x".repeat(11) }]),
    /RESOURCE_EXHAUSTED: .*"big"/,
  );
  await assert.rejects(client.mset([{ key: "", value: "v" }]), /INVALID_ARGUMENT/);
  await assert.rejects(client.mset([{ key: "k", value: "v", ttlMs: 1, expiresAtMs: 1 }]), /not both/);
  await assert.rejects(client.mget(Array.from({ length: 10_001 }, (_, i) => `k${i}`)), /limit is 10000; split/);
  assert.deepEqual(await client.mget(["ok", "big"]), [undefined, undefined]);
});

Deno.test("an MSet asking for fsync is fsynced before it is answered, even under --appendfsync no", opts, async () => {
  await using server = await startServer({ args: ["--appendfsync", "no", "--metrics-address", "127.0.0.1:0"] });
  const url = await metricsUrl(server);
  const fsyncs = async () =>
    sampleValue(parseExposition(await (await fetch(url)).text()), "kvstore_log_fsync_duration_seconds_count") ?? 0;
  using client = new KvClient(server.address);
  const mset = (entries: { key: string; value: string }[], options: object) =>
    client.call<MSetResponse>("MSet", {
      entries: entries.map((entry) => ({ ...entry, expires_at_ms: 0, ttl_ms: 0 })),
      ...options,
    });
  const before = await fsyncs();
  await mset([{ key: "a", value: "1" }], {});
  assert.equal(await fsyncs(), before, "no fsync under --appendfsync no unless asked");
  assert.equal(Number((await mset([{ key: "b", value: "2" }], { fsync: true })).count), 1);
  assert.equal(await fsyncs(), before + 1, "the MSet's own fsync");
  await client.set("c", "3");
  // Nothing written, but the key it found present rests on a write not yet fsynced.
  assert.equal(Number((await mset([{ key: "c", value: "copy" }], { only_if_absent: true, fsync: true })).count), 0);
  assert.equal(await fsyncs(), before + 2, "the fsync covers the write the skipped key rests on");
  assert.equal(await client.get("c"), "3");
});

Deno.test(
  "an MGet whose answer would pass the message limit is refused, saying to ask for fewer keys",
  opts,
  async () => {
    await using server = await startServer({ args: ["--max-value-bytes", "1mb"] });
    using client = new KvClient(server.address, { deadlineMs: 20_000 });
    const big = "x".repeat(1024 * 1024);
    await client.set("a", big);
    await client.set("b", big);
    assert.deepEqual((await client.mget(["a", "nope"])).map((value) => value?.length), [big.length, undefined]);
    await assert.rejects(
      client.mget(["a", "b"]),
      /RESOURCE_EXHAUSTED: store: Cannot answer an MGet of 2 keys: the 2 values found come to about 2097180 bytes, over the 1179648 one answer may carry .*; ask for fewer keys per call/,
    );
    const cli = await runKvstore(["mget", "a", "b", "--endpoint", server.address]);
    assert.equal(cli.code, 3);
    assert.match(
      cli.stderr,
      /^kvstore mget: RESOURCE_EXHAUSTED: store: Cannot answer an MGet of 2 keys: .* ask for fewer keys/,
    );
  },
);

Deno.test("Scan pages through every key, by prefix, with values and deadlines", opts, async () => {
  await using server = await startServer();
  using client = new KvClient(server.address);
  const entries = Array.from({ length: 250 }, (_, i) => ({ key: `user:${i}`, value: `v${i}` }));
  await client.mset([...entries, { key: "other", value: "x", ttlMs: 60_000 }]);
  const keys: string[] = [];
  for await (const entry of client.scanAll({ pageSize: 100 })) keys.push(entry.key);
  assert.equal(keys.length, 251);
  assert.equal(new Set(keys).size, 251);

  const users: string[] = [];
  for await (const entry of client.scanAll({ prefix: "user:", pageSize: 7, includeValues: true })) {
    assert.equal(entry.value, `v${entry.key.slice(5)}`);
    users.push(entry.key);
  }
  assert.equal(users.length, 250);

  const [other] = (await client.scan({ prefix: "other", includeValues: true })).entries;
  assert.equal(other.value, "x");
  assert.ok(other.expiresAtMs !== null && other.expiresAtMs > Date.now());

  await assert.rejects(client.scan({ cursor: "stale.1" }), /INVALID_ARGUMENT: scan: Cursor "stale.1" is unknown/);
  await assert.rejects(client.scan({ limit: 10_001 }), /INVALID_ARGUMENT/);
});

Deno.test("Scan pages with values stay within the message limit, however large the values", opts, async () => {
  // Values up to 64 KiB make a message limit of about 192 KiB; a page of 50 such values
  // would be 3 MiB, and the server could not send it.
  await using server = await startServer({ args: ["--max-value-bytes", "64kb"] });
  using client = new KvClient(server.address);
  const value = (i: number) => `${i}:`.padEnd(60_000, "v");
  for (let i = 0; i < 50; i += 2) {
    await client.mset([{ key: `big:${i}`, value: value(i) }, { key: `big:${i + 1}`, value: value(i + 1) }]);
  }
  const seen = new Map<string, string>();
  for await (const entry of client.scanAll({ pageSize: 1000, includeValues: true })) seen.set(entry.key, entry.value);
  assert.equal(seen.size, 50);
  for (let i = 0; i < 50; i++) assert.equal(seen.get(`big:${i}`), value(i));
  const page = await client.scan({ limit: 1000, includeValues: true });
  assert.ok(page.entries.length >= 2 && page.entries.length <= 4, `a page of ${page.entries.length} values`);
  assert.notEqual(page.cursor, "");
  const keysOnly = await client.scan({ limit: 1000 });
  assert.equal(keysOnly.entries.length, 50, "keys alone fit in one page");

  const exported = await runKvstore(["export", "-", "--endpoint", server.address]);
  assert.equal(exported.code, 0, exported.stderr);
  assert.equal(exported.stdout.trim().split("\n").length, 50);
});

Deno.test("mget, mset and scan from the command line", opts, async () => {
  await using server = await startServer();
  const kv = (...args: string[]) => runKvstore([...args, "--endpoint", server.address]);
  assert.equal((await kv("mset", "k1", "v1", "k2", "v2", "--ttl", "100")).stdout, "OK\n");
  assert.equal((await kv("mget", "k1", "nope", "k2")).stdout, "v1\n\nv2\n");
  assert.equal((await kv("scan")).stdout.split("\n").filter(Boolean).sort().join(","), "k1,k2");
  assert.equal((await kv("scan", "--prefix", "k2", "--values")).stdout, "k2\tv2\n");
  const lines = (await kv("scan", "--json", "--values")).stdout.trim().split("\n").map((line) => JSON.parse(line));
  assert.equal(lines.length, 2);
  assert.ok(lines.every((line) => line.expiresAtMs > Date.now()));
  const odd = await kv("mset", "k1", "v1", "k2");
  assert.equal(odd.code, 2);
  assert.match(odd.stderr, /Expected KEY VALUE pairs/);
});
