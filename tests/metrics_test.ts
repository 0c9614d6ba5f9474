/**
 * The Prometheus endpoint against a real node and a real router: scraped, parsed, and
 * checked against the calls the test made.
 */

import assert from "node:assert/strict";
import { KvClient, type KvClientError } from "../src/client/client.ts";
import { METRICS_CONTENT_TYPE } from "../src/metrics/http.ts";
import { expositionProblems, parseExposition, sampleValue } from "../src/metrics/exposition.ts";
import { keysOn, startCluster } from "./helpers/cluster_process.ts";
import { metricsUrl } from "./helpers/grpc_tools.ts";
import { codeSpans, markdownTable, readReadme } from "./helpers/readme.ts";
import { freePort, runKvstore, startServer, waitUntil } from "./helpers/server_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** Scrapes `url`, checks the exposition against the format's rules (HELP and TYPE before
 * each family, cumulative histogram buckets ending at +Inf, _sum and _count), and
 * parses it. */
async function scrape(url: string) {
  const response = await fetch(url);
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), METRICS_CONTENT_TYPE);
  const text = await response.text();
  assert.deepEqual(expositionProblems(text), [], text);
  return parseExposition(text);
}

Deno.test("smoke: /metrics counts calls by rpc and status, times them, and reports the dataset", opts, async () => {
  await using server = await startServer({ args: ["--metrics-address", "127.0.0.1:0"] });
  const url = await metricsUrl(server);
  using client = new KvClient(server.address);
  await client.set("a", "1");
  await client.set("b", "2");
  await client.set("c", "3", { ttlMs: 60_000 });
  await client.get("a");
  await client.get("missing");
  await assert.rejects(client.set("", "empty key"));

  const metrics = await scrape(url);
  const requests = (rpc: string, code: string) =>
    sampleValue(metrics, "kvstore_rpc_requests_total", { service: "kvstore.KeyValueStore", rpc, code });
  assert.equal(requests("Set", "OK"), 2);
  assert.equal(requests("MSet", "OK"), 1);
  assert.equal(requests("Get", "OK"), 2);
  assert.equal(requests("Set", "INVALID_ARGUMENT"), 1);
  assert.equal(sampleValue(metrics, "kvstore_rpc_duration_seconds_count", { rpc: "Get" }), 2);
  assert.equal(sampleValue(metrics, "kvstore_rpc_duration_seconds_bucket", { rpc: "Set", le: "+Inf" }), 3);
  assert.equal(metrics.types.get("kvstore_rpc_duration_seconds"), "histogram");
  assert.equal(sampleValue(metrics, "kvstore_keys"), 3);
  assert.equal(sampleValue(metrics, "kvstore_expiring_keys"), 1);
  assert.equal(sampleValue(metrics, "kvstore_commands_committed_total", { kind: "set" }), 3);
  assert.ok(sampleValue(metrics, "kvstore_dataset_bytes")! > 0);
  assert.ok(sampleValue(metrics, "process_resident_memory_bytes")! > 1_000_000);
  assert.ok(sampleValue(metrics, "kvstore_connections")! >= 1, "the test's own connection");
  assert.equal(sampleValue(metrics, "kvstore_info", { role: "master" }), 1);
  assert.equal(sampleValue(metrics, "kvstore_health_serving", { service: "" }), 1);
  // The README's metrics table names exactly the families a node serves.
  const documented = markdownTable(await readReadme(), "metric").flatMap(([cell]) =>
    codeSpans(cell).map((span) => span.replace(/\{.*\}$/, ""))
  );
  assert.deepEqual([...new Set(documented)].sort(), [...metrics.types.keys()].sort());

  const health = await fetch(url.replace("/metrics", "/healthz"));
  assert.deepEqual([health.status, await health.text()], [200, "SERVING\n"]);
  const missing = await fetch(url.replace("/metrics", "/nope"));
  await missing.body?.cancel();
  assert.equal(missing.status, 404);

  // A gRPC client pointed at the metrics address by mistake is told so.
  using confused = new KvClient(new URL(url).host, { deadlineMs: 5000 });
  await assert.rejects(confused.get("a"), (error: KvClientError) => {
    assert.equal(error.codeName, "UNIMPLEMENTED", error.message);
    assert.match(error.details, /^metrics: This address serves Prometheus metrics over HTTP, not gRPC/);
    return true;
  });
});

Deno.test("expired keys are counted, and a replica's /healthz answers 503 until its first sync", opts, async () => {
  await using server = await startServer({ args: ["--metrics-address", "127.0.0.1:0"] });
  const url = await metricsUrl(server);
  using client = new KvClient(server.address);
  await client.set("short", "lived", { ttlMs: 50 });
  await waitUntil(
    async () => sampleValue(await scrape(url), "kvstore_expired_keys_total") === 1,
    "the key expires",
    10_000,
    100,
  );
  assert.equal(sampleValue(await scrape(url), "kvstore_keys"), 0);

  // The replica's master is not up yet, so it cannot have synced when /healthz is asked.
  const masterAddress = `127.0.0.1:${freePort()}`;
  await using replica = await startServer({
    args: ["--replica", "--master-address", masterAddress, "--metrics-address", "127.0.0.1:0"],
  });
  const replicaHealthz = (await metricsUrl(replica)).replace("/metrics", "/healthz");
  const before = await fetch(replicaHealthz);
  assert.deepEqual([before.status, await before.text()], [503, "NOT_SERVING\n"]);
  await using _master = await startServer({ address: masterAddress });
  await waitUntil(
    async () => {
      const after = await fetch(replicaHealthz);
      await after.body?.cancel();
      return after.status === 200;
    },
    "the replica has synced and serves",
    20_000,
    100,
  );
});

Deno.test("a metrics address that is taken stops start-up with one clear line", opts, async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const dataDir = await Deno.makeTempDir({ prefix: "kvstore-test-" });
  try {
    const result = await runKvstore([
      "--address",
      `127.0.0.1:${freePort()}`,
      "--data-dir",
      dataDir,
      "--metrics-address",
      `127.0.0.1:${port}`,
    ]);
    assert.equal(result.code, 1, result.stderr);
    assert.match(
      result.stderr.trim().split("\n").at(-1)!,
      new RegExp(`^kvstore: metrics: Cannot listen on 127\\.0\\.0\\.1:${port}: the address is already in use`),
    );
    const router = await runKvstore([
      "router",
      "--address",
      `127.0.0.1:${freePort()}`,
      "--data-dir",
      dataDir,
      "--shards",
      "127.0.0.1:1",
      "--metrics-address",
      `127.0.0.1:${port}`,
    ]);
    assert.equal(router.code, 1, router.stderr);
    assert.match(
      router.stderr.trim().split("\n").at(-1)!,
      new RegExp(`^kvstore router: metrics: Cannot listen on 127\\.0\\.0\\.1:${port}: the address is already in use`),
    );
  } finally {
    listener.close();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test(
  "persistence and replication report their metrics: log, fsync, snapshots, seq and replica lag",
  opts,
  async () => {
    await using master = await startServer({ args: ["--metrics-address", "127.0.0.1:0", "--appendfsync", "always"] });
    await using replica = await startServer({
      args: ["--replica", "--master-address", master.address, "--metrics-address", "127.0.0.1:0"],
    });
    const masterUrl = await metricsUrl(master);
    const replicaUrl = await metricsUrl(replica);
    using client = new KvClient(master.address);
    for (let i = 0; i < 5; i++) await client.set(`k${i}`, "v");
    await client.snapshot(30_000);

    const masterMetrics = await scrape(masterUrl);
    assert.equal(sampleValue(masterMetrics, "kvstore_replication_seq"), 5);
    assert.ok(sampleValue(masterMetrics, "kvstore_log_fsync_duration_seconds_count")! >= 5, "one fsync per write");
    assert.equal(sampleValue(masterMetrics, "kvstore_snapshots_total", { status: "ok" }), 1);
    assert.equal(sampleValue(masterMetrics, "kvstore_snapshot_duration_seconds_count"), 1);
    assert.ok(sampleValue(masterMetrics, "kvstore_last_snapshot_timestamp_seconds")! > Date.now() / 1000 - 60);
    assert.ok(sampleValue(masterMetrics, "kvstore_log_bytes")! > 0);
    await waitUntil(async () => {
      const metrics = await scrape(masterUrl);
      return sampleValue(metrics, "kvstore_replication_connected_replicas") === 1 &&
        sampleValue(metrics, "kvstore_replication_lag_seq", { replica: replica.address }) === 0;
    }, "the master sees its replica caught up");
    assert.equal(sampleValue(await scrape(masterUrl), "kvstore_replication_syncs_total", { kind: "fullSync" }), 1);

    const replicaMetrics = await scrape(replicaUrl);
    assert.equal(sampleValue(replicaMetrics, "kvstore_replication_link_up"), 1);
    assert.equal(sampleValue(replicaMetrics, "kvstore_replication_seq"), 5);
    assert.equal(sampleValue(replicaMetrics, "kvstore_replication_master_lag_seq"), 0);
  },
);

Deno.test(
  "smoke: a router's /metrics counts its calls and those on each shard, reports the ring, and says a shard is down",
  opts,
  async () => {
    await using cluster = await startCluster(2, ["--metrics-address", "127.0.0.1:0"]);
    const url = await metricsUrl(cluster.router);
    using client = cluster.client();
    await client.set("a", "1");
    await client.set("b", "2");
    await client.get("a");
    await client.get("missing");
    await assert.rejects(client.set("", "empty key"));

    const ring = cluster.ring();
    const owner = (key: string) => cluster.shards.find((shard) => shard.address === ring.owner(key))!.address;
    let metrics = await scrape(url);
    const requests = (rpc: string, code: string) =>
      sampleValue(metrics, "kvstore_rpc_requests_total", { service: "kvstore.KeyValueStore", rpc, code });
    assert.equal(requests("Set", "OK"), 2);
    assert.equal(requests("Get", "OK"), 2);
    assert.equal(requests("Set", "INVALID_ARGUMENT"), 1, "refused by the router itself");
    assert.equal(sampleValue(metrics, "kvstore_rpc_duration_seconds_count", { rpc: "Get" }), 2);
    assert.equal(sampleValue(metrics, "kvstore_rpc_in_flight"), 0);
    const shardCalls = (shard: string, code = "OK") =>
      sampleValue(metrics, "kvstore_router_shard_requests_total", { shard, code }) ?? 0;
    assert.ok(shardCalls(owner("a")) >= 2, "the Set and the Get of a went to its shard");
    assert.ok(sampleValue(metrics, "kvstore_router_shard_duration_seconds_count", { shard: owner("a") })! >= 2);
    assert.equal(sampleValue(metrics, "kvstore_info", { role: "router" }), 1);
    assert.equal(sampleValue(metrics, "kvstore_health_serving", { service: "kvstore.KeyValueStore" }), 1);
    assert.ok(sampleValue(metrics, "kvstore_connections")! >= 1, "the test's own connection");
    assert.ok(sampleValue(metrics, "process_resident_memory_bytes")! > 1_000_000);
    assert.equal(sampleValue(metrics, "kvstore_router_ring_epoch"), 1);
    assert.equal(sampleValue(metrics, "kvstore_router_shards"), 2);
    assert.equal(sampleValue(metrics, "kvstore_router_rebalancing"), 0);
    assert.equal(sampleValue(metrics, "kvstore_router_rebalance_keys_moved_total"), 0);
    const up = async (shard: string) => sampleValue(await scrape(url), "kvstore_router_shard_up", { shard });
    for (const shard of cluster.shards) await waitUntil(async () => await up(shard.address) === 1, "shards are up");

    const info = await client.info();
    assert.equal(`http://${info.metrics_address}/metrics`, url);
    const health = await fetch(url.replace("/metrics", "/healthz"));
    assert.deepEqual([health.status, await health.text()], [200, "SERVING\n"]);

    // A shard killed: its keys' calls fail, counted as UNAVAILABLE, and it is reported
    // down within a probe round (2 s, and the probe's own 2 s deadline).
    const dead = cluster.shards.find((shard) => shard.address === owner("a"))!;
    await dead.kill();
    await assert.rejects(client.get("a"), /UNAVAILABLE/);
    metrics = await scrape(url);
    assert.equal(shardCalls(dead.address, "UNAVAILABLE"), 1);
    await waitUntil(async () => await up(dead.address) === 0, "the killed shard is reported down", 15_000, 100);
    const other = cluster.shards.find((shard) => shard !== dead)!;
    assert.equal(await up(other.address), 1, "the other shard is still up");
  },
);

Deno.test("a router's /metrics follows a rebalancing to its end, counting the keys it moved", opts, async () => {
  await using cluster = await startCluster(2, ["--metrics-address", "127.0.0.1:0"]);
  const url = await metricsUrl(cluster.router);
  using client = cluster.client();
  await client.mset(Array.from({ length: 600 }, (_, i) => ({ key: `k${i}`, value: `v${i}` })));
  const added = await cluster.addProcess();
  const result = await runKvstore(["cluster", "add-shard", added.address, "--endpoint", cluster.router.address], {
    timeoutMs: 60_000,
  });
  assert.equal(result.code, 0, result.stderr);
  const moved = (await keysOn(added.address)).size;
  assert.ok(moved > 100, `${moved} keys moved onto the new shard`);
  const metrics = await scrape(url);
  assert.equal(sampleValue(metrics, "kvstore_router_ring_epoch"), 3, "the change began, then ended");
  assert.equal(sampleValue(metrics, "kvstore_router_shards"), 3);
  assert.equal(sampleValue(metrics, "kvstore_router_rebalancing"), 0);
  assert.equal(sampleValue(metrics, "kvstore_router_rebalance_keys_to_move"), 0);
  assert.equal(sampleValue(metrics, "kvstore_router_rebalance_keys_moved_total"), moved);
  assert.ok(
    (sampleValue(metrics, "kvstore_router_shard_requests_total", { shard: added.address, code: "OK" }) ?? 0) > 0,
  );
  await waitUntil(
    async () => sampleValue(await scrape(url), "kvstore_router_shard_up", { shard: added.address }) === 1,
    "the new shard is probed and up",
  );
});
