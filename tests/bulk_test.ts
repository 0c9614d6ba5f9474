/**
 * `kvstore export` and `kvstore import` against real nodes: a round trip with TTLs from
 * one node to another, standard input and output, and the errors a person meets.
 */

import assert from "node:assert/strict";
import { KvClient } from "../src/client/client.ts";
import { freePort, runKvstore, startServer, waitUntil } from "./helpers/server_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("smoke: export then import moves every key, value and TTL to another node", opts, async () => {
  await using source = await startServer();
  await using target = await startServer();
  const dir = await Deno.makeTempDir({ prefix: "kvstore-bulk-" });
  try {
    using client = new KvClient(source.address);
    const entries = Array.from({ length: 2500 }, (_, i) => ({
      key: `user:${i}`,
      value: i % 7 === 0 ? `multi\nline "quoted" ключ ${i}` : `v${i}`,
      ttlMs: i % 3 === 0 ? 600_000 : undefined,
    }));
    await client.mset(entries);
    const file = `${dir}/dump.jsonl`;

    const exported = await runKvstore(["export", file, "--endpoint", source.address, "--page-size", "300"]);
    assert.equal(exported.code, 0, exported.stderr);
    assert.match(exported.stdout, /^Exported 2500 keys to .*dump\.jsonl in \d+\.\d s \(\d+ keys\/s\)\n$/);
    const lines = (await Deno.readTextFile(file)).trimEnd().split("\n");
    assert.equal(lines.length, 2500);
    await assert.rejects(Deno.stat(`${file}.tmp`), "the temporary file is renamed away");

    const imported = await runKvstore(["import", file, "--json", "--batch-size", "400", "--endpoint", target.address]);
    assert.equal(imported.code, 0, imported.stderr);
    const summary = JSON.parse(imported.stdout);
    assert.equal(summary.imported, 2500);
    assert.equal(summary.lines, 2500);

    using check = new KvClient(target.address);
    for (const i of [0, 1, 7, 2499]) {
      assert.equal(await check.get(`user:${i}`), entries[i].value);
      const ttl = await check.ttl(`user:${i}`);
      if (entries[i].ttlMs === undefined) assert.equal(ttl, -1);
      else assert.ok(ttl > 590 && ttl <= 600, `ttl ${ttl}`);
    }
    assert.equal(Number((await check.info()).keys), 2500);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an export cut short by the server going away leaves the old file in place", opts, async () => {
  await using server = await startServer();
  const dir = await Deno.makeTempDir({ prefix: "kvstore-bulk-" });
  try {
    using client = new KvClient(server.address);
    const value = "x".repeat(1000);
    for (let start = 0; start < 5000; start += 500) {
      await client.mset(Array.from({ length: 500 }, (_, i) => ({ key: `k${start + i}`, value })));
    }
    const file = `${dir}/dump.jsonl`;
    await Deno.writeTextFile(file, "the previous export\n");

    // One key per Scan call: the export is still running when its first chunk reaches
    // the temporary file, and the server is killed then.
    const exporting = runKvstore(["export", file, "--page-size", "1", "--endpoint", server.address]);
    await waitUntil(async () => (await Deno.stat(`${file}.tmp`).catch(() => null))?.size! > 0, "export writes");
    await server.kill();
    const result = await exporting;
    assert.equal(result.code, 3, result.stdout + result.stderr);
    // Killed between two calls, or during one.
    assert.match(result.stderr, /^kvstore export: (Cannot reach |Connection to \S+ lost during the call)/);
    assert.equal(await Deno.readTextFile(file), "the previous export\n", "the old file is untouched");
    await assert.rejects(Deno.stat(`${file}.tmp`), "the partial file is removed");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("- reads standard input and writes standard output, with the summary on stderr", opts, async () => {
  await using server = await startServer();
  const input =
    '{"key":"a","value":"1","ttl":null}\n\n{"key":"b","value":"2","ttl":30}\n{"key":"gone","value":"x","ttl":-1}\n';
  const imported = await runKvstore(["import", "-", "--endpoint", server.address], { input });
  assert.equal(imported.code, 0, imported.stderr);
  assert.match(imported.stdout, /^Imported 2 keys from standard input in .*; skipped 1 already expired\n$/);

  const exported = await runKvstore(["export", "-", "--prefix", "a", "--endpoint", server.address]);
  assert.equal(exported.code, 0);
  assert.equal(exported.stdout, '{"key":"a","value":"1","ttl":null}\n');
  assert.match(exported.stderr, /^Exported 1 key to standard output/);
});

Deno.test("a key on several lines ends with its last line's value, batches in flight or not", opts, async () => {
  await using server = await startServer();
  // Each round: a large first value of k<i> (slow to send), then its final value in the
  // next batch, sent while the first is still in flight (one entry per batch), then an
  // unrelated line. A small call overtakes a large one on the connection, so unless the
  // second batch waits for the first, the server applies the old value last.
  const big = "x".repeat(1_300_000);
  const rounds = 4;
  let input = "";
  for (let i = 0; i < rounds; i++) {
    input += JSON.stringify({ key: `k${i}`, value: `old${big}` }) + "\n";
    input += JSON.stringify({ key: `k${i}`, value: "new", ttl: 600 }) + "\n";
    input += JSON.stringify({ key: `other${i}`, value: "1" }) + "\n";
  }
  const result = await runKvstore(["import", "-", "--batch-size", "1", "--json", "--endpoint", server.address], {
    input,
  });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(JSON.parse(result.stdout).imported, 3 * rounds);
  using client = new KvClient(server.address);
  const keys = Array.from({ length: rounds }, (_, i) => `k${i}`);
  const values = (await client.mget(keys)).map((value) => value?.slice(0, 10));
  assert.deepEqual(values, keys.map(() => "new"), "the later line wins");
  assert.ok(await client.ttl("k0") > 590, "with the later line's TTL");
});

Deno.test("a bad line stops the import with its number, after writing everything before it", opts, async () => {
  await using server = await startServer();
  const input = '{"key":"a","value":"1"}\n{"key":"b","value":"2"}\n{"key":"c","value":3}\n{"key":"d","value":"4"}\n';
  const result = await runKvstore(["import", "-", "--endpoint", server.address], { input });
  assert.equal(result.code, 2);
  assert.equal(
    result.stderr,
    'kvstore import: Cannot import standard input: line 3: "value" of key "c" must be a string, got 3; ' +
      "2 keys before it were imported\n",
  );
  using client = new KvClient(server.address);
  assert.deepEqual(await client.mget(["a", "b", "c", "d"]), ["1", "2", undefined, undefined]);

  const dryRun = await runKvstore(["import", "-", "--dry-run", "--endpoint", server.address], { input });
  assert.equal(dryRun.code, 2);
  assert.match(dryRun.stderr, /line 3: .*; 2 entries before it are valid/);
});

Deno.test("the server's refusal names the lines of the batch it refused", opts, async () => {
  await using server = await startServer({ args: ["--max-value-bytes", "10"] });
  const input = '{"key":"a","value":"1"}\n{"key":"b","value":"far too long a value"}\n';
  const result = await runKvstore(["import", "-", "--endpoint", server.address], { input });
  assert.equal(result.code, 3);
  assert.match(result.stderr, /^kvstore import: Cannot import lines 1-2 of standard input: RESOURCE_EXHAUSTED: .*"b"/);
});

Deno.test("a refused batch stops the import there and says which lines were written", opts, async () => {
  await using server = await startServer({ args: ["--max-value-bytes", "10"] });
  const keys = Array.from({ length: 10 }, (_, i) => `k${i + 1}`);
  const input = keys.map((key) => JSON.stringify({ key, value: key === "k5" ? "far too long a value" : key }) + "\n")
    .join("");
  const result = await runKvstore(
    ["import", "-", "--batch-size", "2", "--pipeline", "1", "--endpoint", server.address],
    { input },
  );
  assert.equal(result.code, 3);
  assert.match(
    result.stderr,
    /^kvstore import: Cannot import lines 5-6 of standard input: RESOURCE_EXHAUSTED: .*"k5".*; the import stopped there: lines 1-4 were imported \(4 keys\), nothing after line 6 was\n$/,
  );
  using client = new KvClient(server.address);
  assert.deepEqual(
    await client.mget(keys),
    ["k1", "k2", "k3", "k4", undefined, undefined, undefined, undefined, undefined, undefined],
    "nothing is sent after the refusal",
  );
});

Deno.test("missing files, bad flags and a server that is down are reported plainly", opts, async () => {
  const down = `127.0.0.1:${freePort()}`;
  const cases: [string[], number, RegExp][] = [
    [
      ["import", "/nonexistent/dump.jsonl", "--endpoint", down],
      2,
      /^kvstore import: Cannot open "\/nonexistent\/dump\.jsonl": no such file/,
    ],
    [["import", "-", "--batch-size", "0", "--endpoint", down], 2, /Invalid --batch-size "0"/],
    [["export", "--endpoint", down], 2, /Expected FILE; usage: kvstore export FILE/],
    [["export", "-", "--endpoint", down, "--timeout-ms", "2000"], 3, /^kvstore export: Cannot reach 127\.0\.0\.1:\d+/],
  ];
  for (const [args, code, message] of cases) {
    const result = await runKvstore(args, { input: '{"key":"a","value":"1"}\n' });
    assert.equal(result.code, code, `${args.join(" ")}: ${result.stderr}`);
    assert.match(result.stderr, message);
  }
  const blocked = await runKvstore(["import", "-", "--endpoint", down, "--timeout-ms", "2000"], {
    input: '{"key":"a","value":"1"}\n',
  });
  assert.equal(blocked.code, 3);
  assert.match(blocked.stderr, /^kvstore import: Cannot reach 127\.0\.0\.1:\d+/, "checked before reading the input");
});
