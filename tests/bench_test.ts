/**
 * `kvstore bench` against a real node: a short run of each test, its table, its JSON,
 * its SVG histogram, and its errors.
 */

import assert from "node:assert/strict";
import { freePort, runKvstore, startServer } from "./helpers/server_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("smoke: bench runs set, get and mixed and prints ops/s and latency percentiles", opts, async () => {
  await using server = await startServer();
  const dir = await Deno.makeTempDir({ prefix: "kvstore-bench-" });
  try {
    const svg = `${dir}/latency.svg`;
    const result = await runKvstore(
      ["bench", "-c", "4", "-n", "400", "-d", "16", "-r", "100", "--histogram", svg, "--endpoint", server.address],
      { timeoutMs: 30_000 },
    );
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.trim().split("\n");
    assert.match(lines[0], /^kvstore bench: 127\.0\.0\.1:\d+, 4 clients, 400 calls per test, 16-byte values, 100 keys/);
    const header = lines.findIndex((line) => line.startsWith("test "));
    assert.match(lines[header], /keys\/s\s+calls\/s\s+p50 ms\s+p90 ms\s+p99 ms\s+p99\.9 ms\s+max ms\s+errors$/);
    for (const [i, test] of ["SET", "GET", "MIXED"].entries()) {
      assert.match(lines[header + 1 + i], new RegExp(`^${test}\\s+400\\s+\\d+\\s+\\d+\\s+[0-9.]+\\s+.*\\s0$`));
    }
    assert.match(result.stdout, /Latency histogram written to .*latency\.svg/);
    const plot = await Deno.readTextFile(svg);
    assert.ok(plot.startsWith("<svg") && plot.trimEnd().endsWith("</svg>"));
    assert.equal(plot.match(/<path /g)?.length, 3);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bench --json with batches reports keys per second per test", opts, async () => {
  await using server = await startServer();
  const result = await runKvstore(
    [
      "bench",
      "--json",
      "-c",
      "2",
      "-n",
      "50",
      "--batch",
      "10",
      "-P",
      "2",
      "--tests",
      "set,mixed",
      "--endpoint",
      server.address,
    ],
    { timeoutMs: 30_000 },
  );
  assert.equal(result.code, 0, result.stderr);
  const report = JSON.parse(result.stdout);
  assert.equal(report.settings.batch, 10);
  assert.deepEqual(report.results.map((r: { test: string }) => r.test), ["SET", "MIXED"]);
  const set = report.results[0];
  assert.equal(set.calls, 50);
  assert.equal(set.keys, 500);
  assert.equal(set.errors, 0);
  assert.ok(set.keysPerSecond > 0);
  for (const label of ["min", "mean", "p50", "p90", "p99", "p99.9", "max"]) {
    assert.equal(typeof set.latencyMs[label], "number");
  }
  assert.ok(set.latencyMs.p50 <= set.latencyMs.p99);
});

Deno.test("bench refuses bad settings and reports a server that is down", opts, async () => {
  for (
    const [args, message] of [
      [["--tests", "set,nope"], /Invalid --tests "set,nope": "nope" is not one of set, get, mixed/],
      [["--clients", "0"], /Invalid --clients "0"/],
      [["--read-ratio", "2"], /Invalid --read-ratio "2"/],
      [["--histogram", "plot.png"], /the plot is SVG/],
    ] as const
  ) {
    const result = await runKvstore(["bench", ...args, "--endpoint", "127.0.0.1:1"]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, message);
  }
  const down = await runKvstore(["bench", "-n", "10", "--endpoint", `127.0.0.1:${freePort()}`, "--timeout-ms", "2000"]);
  assert.equal(down.code, 3);
  assert.match(down.stderr, /^kvstore bench: Cannot reach/);
});

Deno.test("bench counts only the calls that succeeded, says which failed, and exits 3", opts, async () => {
  // A replica whose master is not there: it answers reads and refuses every write.
  await using replica = await startServer({ args: ["--replica", "--master-address", `127.0.0.1:${freePort()}`] });
  const result = await runKvstore(
    ["bench", "-c", "2", "-n", "100", "-t", "get,mixed,set", "--endpoint", replica.address],
    { timeoutMs: 30_000 },
  );
  assert.equal(result.code, 3, result.stderr);
  const rows = Object.fromEntries(
    result.stdout.trim().split("\n").filter((line) => /^(GET|MIXED|SET) /.test(line)).map((line) => {
      const cells = line.split(/\s+/);
      return [cells[0], { calls: Number(cells[1]), callsPerSecond: Number(cells[3]), errors: Number(cells.at(-1)) }];
    }),
  );
  assert.equal(rows.GET.errors, 0);
  assert.ok(rows.GET.callsPerSecond > 0);
  assert.ok(rows.MIXED.errors > 0 && rows.MIXED.errors < 100, `${rows.MIXED.errors} of the mixed calls failed`);
  assert.deepEqual(rows.SET, { calls: 100, callsPerSecond: 0, errors: 100 }, "failed calls are no throughput");
  const lines = result.stderr.trim().split("\n");
  assert.equal(lines.length, 2, result.stderr);
  assert.match(
    lines[0],
    /^kvstore bench: \d+ of 100 calls of the MIXED test failed .*; the last: FAILED_PRECONDITION: /,
  );
  assert.match(lines[1], /^kvstore bench: 100 of 100 calls of the SET test failed .*read-only replica/);

  const json = await runKvstore(
    ["bench", "--json", "-c", "1", "-n", "10", "-t", "set", "--endpoint", replica.address],
    { timeoutMs: 30_000 },
  );
  assert.equal(json.code, 3);
  const set = JSON.parse(json.stdout).results[0];
  assert.equal(set.errors, 10);
  assert.equal(set.callsPerSecond, 0);
  assert.match(set.lastError, /read-only replica/);
});
