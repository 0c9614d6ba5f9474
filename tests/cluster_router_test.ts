/**
 * A 3-shard cluster behind `kvstore router`: every rpc through one address, keys on the
 * shards the ring names (checked by asking the shards directly), errors as a node gives
 * them, replica reads when asked, Info and the CLI.
 */

import assert from "node:assert/strict";
import { KvClient } from "../src/client/client.ts";
import { CLIENT_TRANSPORT_LIMITS, createKvstoreClient, grpc } from "../src/transport/grpc.ts";
import type { InfoResponse, MGetResponse } from "../src/transport/messages.ts";
import { HealthClient } from "../src/client/health_client.ts";
import { keysOn, startCluster, startRouter } from "./helpers/cluster_process.ts";
import { expectReadsFromReplicaOnceSynced } from "./helpers/replication.ts";
import { ReflectionClient } from "./helpers/grpc_tools.ts";
import { connectionStorm } from "./helpers/connection_storm.ts";
import {
  freePort,
  openFilesLimit,
  runKvstore,
  spawnKvstore,
  startServer,
  waitUntil,
} from "./helpers/server_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test(
  "smoke: a router serves every rpc over 3 shards, and each key lands on the shard the ring names",
  opts,
  async () => {
    await using cluster = await startCluster(3);
    using client = cluster.client();

    // The seed rpcs, with the C++ store's answers.
    assert.equal(await client.set("k", "v1"), true);
    assert.equal(await client.get("k"), "v1");
    assert.deepEqual(await client.call("Get", { key: "missing" }), { found: false, value: "" });
    assert.equal(await client.contains("k"), true);
    assert.equal(await client.ttl("k"), -1);
    assert.equal(await client.expire("k", 100), true);
    assert.ok([99, 100].includes(await client.ttl("k")));
    assert.equal(await client.expire("missing", 100), false);
    assert.deepEqual(await client.call("Delete", { key: "k" }), { success: true, found: true });
    assert.deepEqual(await client.call("Delete", { key: "k" }), { success: true, found: false });
    assert.equal(await client.ttl("k"), -2);

    // Batches split over the shards and merged back in order.
    const keys = Array.from({ length: 300 }, (_, i) => `user:${i}`);
    assert.equal(await client.mset(keys.map((key) => ({ key, value: `v-${key}`, ttlMs: 600_000 }))), 300);
    const values = await client.mget(["user:7", "nope", ...keys]);
    assert.deepEqual(values, ["v-user:7", undefined, ...keys.map((key) => `v-${key}`)]);

    // Each key is on its owner and nowhere else, with its deadline.
    const ring = cluster.ring();
    const held = await Promise.all(cluster.shards.map((shard) => keysOn(shard.address)));
    for (const key of keys) {
      const holders = cluster.shards.filter((_, i) => held[i].has(key)).map((shard) => shard.address);
      assert.deepEqual(holders, [ring.owner(key)], key);
    }
    for (const shardKeys of held) {
      assert.ok(shardKeys.size > 50, `every shard holds a fair part (${shardKeys.size})`);
      for (const entry of shardKeys.values()) assert.ok(entry.expiresAtMs! > Date.now() + 500_000);
    }

    // A scan through the router returns every key once, across the shards.
    const scanned: string[] = [];
    for await (const entry of client.scanAll({ pageSize: 37 })) scanned.push(entry.key);
    assert.deepEqual(scanned.sort(), [...keys].sort());
    const prefixed: string[] = [];
    for await (const entry of client.scanAll({ prefix: "user:1", includeValues: true })) {
      assert.equal(entry.value, `v-${entry.key}`);
      prefixed.push(entry.key);
    }
    assert.equal(prefixed.length, keys.filter((key) => key.startsWith("user:1")).length);
  },
);

Deno.test("the router passes on a shard's refusals unchanged and refuses what it does not serve", opts, async () => {
  await using cluster = await startCluster(2, ["--max-value-bytes", "1kb"]);
  using client = cluster.client();
  using node = new KvClient(cluster.shards[0].address);
  const refusal = async (promise: Promise<unknown>) => {
    const error = await promise.then(() => null, (error) => error);
    assert.ok(error !== null, "the call must fail");
    return `${error.codeName}: ${error.details}`;
  };
  assert.equal(await refusal(client.get("")), await refusal(node.get("")), "same message as a node");
  assert.match(await refusal(client.set("k", "x".repeat(2000))), /^RESOURCE_EXHAUSTED: .*over the limit of 1024/);
  assert.match(
    await refusal(client.mset([{ key: "a", value: "ok" }, { key: "b", value: "x".repeat(2000) }])),
    /^RESOURCE_EXHAUSTED: .*"b"/,
  );
  assert.deepEqual(await client.mget(["a", "b"]), [undefined, undefined], "a refused batch writes nothing");
  assert.match(
    await refusal(client.scan({ cursor: "bogus" })),
    /^INVALID_ARGUMENT: scan: Cursor "bogus" is not a cluster/,
  );
  assert.match(
    await refusal(client.call("ReplicateCommand", { type: "SET", key: "k", value: "v", sequence_id: "1" })),
    /^UNIMPLEMENTED: router: ReplicateCommand is not served by a router/,
  );
});

Deno.test(
  "an MGet through the router whose answer would pass the message limit says to ask for fewer keys",
  opts,
  async () => {
    const limit = ["--max-value-bytes", "1mb"];
    await using cluster = await startCluster(2, limit, limit);
    using client = cluster.client(20_000);
    const ring = cluster.ring();
    const keys = Array.from({ length: 40 }, (_, i) => `big${i}`);
    const [a, b] = cluster.shards.map((shard) => keys.filter((key) => ring.owner(key) === shard.address));
    const big = "x".repeat(1024 * 1024);
    for (const key of [a[0], a[1], b[0]]) await client.set(key, big);
    assert.equal((await client.mget([a[0], "nope"]))[0]?.length, big.length);
    // One shard's part is already too large: the shard says so, and the router passes it on.
    await assert.rejects(
      client.mget([a[0], a[1]]),
      /RESOURCE_EXHAUSTED: store: Cannot answer an MGet .* ask for fewer keys/,
    );
    // Each shard's part fits, but not the two together: the router says so itself.
    await assert.rejects(
      client.mget([a[0], b[0]]),
      /RESOURCE_EXHAUSTED: store: Cannot answer an MGet of 2 keys: .* ask for fewer keys per call/,
    );
  },
);

Deno.test("Info from a router describes the cluster and sums its shards", opts, async () => {
  await using cluster = await startCluster(3);
  using client = cluster.client();
  await client.mset(Array.from({ length: 90 }, (_, i) => ({ key: `k${i}`, value: "v", ttlMs: i < 30 ? 60_000 : 0 })));
  const info: InfoResponse = await client.info();
  assert.equal(info.role, "router");
  assert.equal(info.address, cluster.router.address);
  assert.equal(Number(info.keys), 90);
  assert.equal(Number(info.expiring_keys), 30);
  const shards = info.cluster!.shards;
  assert.deepEqual(shards.map((shard) => shard.name).sort(), cluster.shards.map((shard) => shard.address).sort());
  assert.ok(shards.every((shard) => shard.reachable && shard.state === "serving"));
  assert.equal(shards.reduce((sum, shard) => sum + Number(shard.keys), 0), 90);
  assert.ok(Math.abs(shards.reduce((sum, shard) => sum + shard.ring_share, 0) - 1) < 1e-9);
  assert.equal(info.cluster!.vnodes, 512);
  assert.equal(info.cluster!.migration, null);
  assert.equal(Number(info.pid), cluster.router.pid, "the router reports itself as a node does");
  assert.match(info.runtime ?? "", /^deno \d/);
  assert.ok(Number(info.started_at_ms) > 0 && Number(info.started_at_ms) <= Date.now());
  assert.equal(info.health, "SERVING");
  assert.equal(info.config_file, "", "no config file");
  assert.ok(Number(info.calls_total) >= 1, `the MSet before is counted (${info.calls_total})`);

  // Client connections open now, as a node counts them: the test's own, then three more.
  const before = Number(info.connections);
  assert.ok(before >= 1, `the test's own connection is counted (${before})`);
  const others = Array.from({ length: 3 }, () => new KvClient(cluster.router.address, { ownConnection: true }));
  try {
    for (const other of others) await other.get("k0");
    const after = await client.info();
    assert.ok(Number(after.connections) >= before + 3, "each client's connection is counted");
    assert.ok(Number(after.calls_total) >= Number(info.calls_total) + 4, "and each call");
  } finally {
    for (const other of others) other.close();
  }
  await waitUntil(async () => Number((await client.info()).connections) <= before, "closed connections drop out");

  const plain = await runKvstore(["cluster", "status", "--endpoint", cluster.router.address]);
  assert.equal(plain.code, 0, plain.stderr);
  assert.match(plain.stdout, /^3 shards, 512 vnodes per shard, epoch 1, stable\n/);
  assert.match(plain.stdout, /SHARD +MASTER +STATE +KEYS +RING +REPLICAS/);
  for (const shard of cluster.shards) {
    assert.match(plain.stdout, new RegExp(`${shard.address} +${shard.address} +serving`));
  }
  const json = JSON.parse(
    (await runKvstore(["cluster", "status", "--json", "--endpoint", cluster.router.address])).stdout,
  );
  assert.equal(json.epoch, 1);
  assert.equal(json.shards.reduce((sum: number, shard: { keys: number }) => sum + shard.keys, 0), 90);
  const notRouter = await runKvstore(["cluster", "status", "--endpoint", cluster.shards[0].address]);
  assert.equal(notRouter.code, 3);
  assert.match(notRouter.stderr, /is not a router/);
});

Deno.test(
  "reads go to a shard's replica when the call or the router asks, and writes to its master",
  opts,
  async () => {
    // The "replica" is a second master holding its own value, so the test can tell which
    // node answered without depending on replication.
    await using master = await startServer();
    await using replica = await startServer();
    using direct = new KvClient(replica.address);
    await direct.set("k", "from the replica");
    await using router = await startRouter({ shards: [`${master.address}+${replica.address}`] });
    using client = new KvClient(router.address);
    await client.set("k", "from the master");
    assert.equal(await client.get("k"), "from the master");

    const metadata = new grpc.Metadata();
    metadata.set("kvstore-read-from", "replica");
    const viaReplica = await callWithMetadata<{ found: boolean; value: string }>(
      router.address,
      "Get",
      { key: "k" },
      metadata,
    );
    assert.equal(viaReplica.value, "from the replica");
    const batch = await callWithMetadata<MGetResponse>(router.address, "MGet", { keys: ["k"] }, metadata);
    assert.equal(batch.values[0].value, "from the replica");
    assert.equal(await direct.get("k"), "from the replica", "writes never go to the replica");

    await using replicaRouter = await startRouter({
      shards: [`${master.address}+${replica.address}`],
      args: ["--read-from", "replica"],
    });
    using replicaClient = new KvClient(replicaRouter.address);
    assert.equal(await replicaClient.get("k"), "from the replica");
    const bad = new grpc.Metadata();
    bad.set("kvstore-read-from", "nearest");
    await assert.rejects(callWithMetadata(router.address, "Get", { key: "k" }, bad), /expected master or replica/);

    // A replica that hangs does not fail the read either: it has half the call's time.
    replica.signal("SIGSTOP");
    try {
      using patient = new KvClient(replicaRouter.address, { deadlineMs: 4000 });
      assert.equal(await patient.get("k"), "from the master");
    } finally {
      replica.signal("SIGCONT");
    }
    // A replica that is down does not fail the read: the master answers.
    await replica.kill();
    assert.equal(await replicaClient.get("k"), "from the master");
  },
);

Deno.test(
  "replica reads through a router skip a replica that has not synced yet, and use it once it has",
  opts,
  async () => {
    await using master = await startServer();
    // This replica follows a master that is not there, so it never syncs and holds nothing:
    // read from, it would say "not found" for every key.
    await using replica = await startServer({ args: ["--replica", "--master-address", `127.0.0.1:${freePort()}`] });
    await using router = await startRouter({
      shards: [`${master.address}+${replica.address}`],
      args: ["--read-from", "replica"],
    });
    // 2 s: with the master paused below, a read that still goes there fails within it.
    using client = new KvClient(router.address, { deadlineMs: 2000 });
    await client.set("k", "v");
    for (let i = 0; i < 3; i++) {
      assert.equal(await client.get("k"), "v", "read from the master, not the empty replica");
      assert.deepEqual(await client.mget(["k", "none"]), ["v", undefined]);
      assert.equal(await client.contains("k"), true);
    }

    // Once it follows the master and has synced, reads go to it.
    await expectReadsFromReplicaOnceSynced(master, replica, () => client.get("k"));
  },
);

Deno.test("the command line works through a router", opts, async () => {
  await using cluster = await startCluster(3);
  const kv = (...args: string[]) => runKvstore([...args, "--endpoint", cluster.router.address]);
  assert.equal((await kv("mset", "a", "1", "b", "2", "c", "3")).stdout, "OK\n");
  assert.equal((await kv("mget", "c", "a", "missing", "b")).stdout, "3\n1\n\n2\n");
  assert.equal((await kv("scan")).stdout.split("\n").filter(Boolean).sort().join(","), "a,b,c");
  assert.equal((await kv("del", "a", "b", "zz")).stdout, "2\n");
  assert.equal((await kv("get", "c")).stdout, "3\n");
  const nodeInfo = await runKvstore(["info", "--endpoint", cluster.shards[0].address]);
  assert.doesNotMatch(nodeInfo.stdout, /cluster/, "a node has no cluster to describe");
});

Deno.test("kvstore info against a router shows what a router is, its shards as cluster status does", opts, async () => {
  await using cluster = await startCluster(3);
  const kv = (...args: string[]) => runKvstore([...args, "--endpoint", cluster.router.address]);
  assert.equal((await kv("mset", "a", "1", "b", "2", "c", "3", "--ttl", "3600")).code, 0);

  const plain = await kv("info");
  assert.equal(plain.code, 0, plain.stderr);
  const sections = plain.stdout.split("\n").filter((line) => line.startsWith("# "));
  assert.deepEqual(sections, ["# Server", "# Clients", "# Keyspace", "# Memory", "# Cluster"], plain.stdout);
  assert.match(plain.stdout, /^role +router$/m);
  assert.match(plain.stdout, new RegExp(`^data_dir +${literal(cluster.router.dataDir)}$`, "m"));
  assert.match(plain.stdout, /^keys +3$/m);
  assert.match(plain.stdout, /^expiring_keys +3$/m);
  assert.match(plain.stdout, /# Keyspace\n(.*\n){3}dataset_bytes +\d+ \(/);
  // The Cluster section is `kvstore cluster status`, line for line.
  const status = await kv("cluster", "status");
  assert.ok(plain.stdout.endsWith(`# Cluster\n${status.stdout}`), `${plain.stdout}\n---\n${status.stdout}`);
  assert.equal((await kv("info", "cluster")).stdout, `# Cluster\n${status.stdout}`);
  for (const shard of cluster.shards) {
    assert.match(
      plain.stdout,
      new RegExp(`^${literal(shard.address)} +${literal(shard.address)} +serving +\\d+ +\\d+\\.\\d% +-$`, "m"),
    );
  }
  for (const nodeOnly of ["appendfsync", "log_bytes", "last_snapshot", "replid", "last_seq", "link_state", "backlog"]) {
    assert.doesNotMatch(plain.stdout, new RegExp(`^${nodeOnly}`, "m"), `a router has no ${nodeOnly}`);
  }

  const json = JSON.parse((await kv("info", "--json")).stdout);
  assert.equal(json.role, "router");
  assert.equal(json.keys, 3);
  assert.equal(json.data_dir, cluster.router.dataDir);
  assert.equal(json.appendfsync, "", "every field is there, whatever the role");
  assert.equal(json.cluster.epoch, 1);
  assert.equal(json.cluster.migration, null);
  assert.deepEqual(
    json.cluster.shards.map((
      shard: { keys: unknown; ring_share: unknown },
    ) => [typeof shard.keys, typeof shard.ring_share]),
    [["number", "number"], ["number", "number"], ["number", "number"]],
  );

  // A shard that hangs: the router answers within the caller's deadline, shorter than its
  // own bound on a shard's Info (2 s; 1.9 s leaves the router a 190 ms margin to answer
  // in), and the sums say how many shards they count.
  cluster.shards[2].signal("SIGSTOP");
  let partial;
  try {
    partial = await kv("info", "--timeout-ms", "1900");
  } finally {
    cluster.shards[2].signal("SIGCONT");
  }
  assert.equal(partial.code, 0, partial.stderr);
  assert.match(partial.stdout, /^keys +\d+ \(2 of 3 shards answered\)$/m);
  assert.match(partial.stdout, new RegExp(`^${literal(cluster.shards[2].address)} +\\S+ +serving +down `, "m"));
  assert.match(partial.stdout, new RegExp(`^${literal(cluster.shards[2].address)}: router: `, "m"));
});

/** `text` as a regular expression that matches it literally. */
function literal(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

Deno.test(
  "kvstore scan through a router lists every key, and stops quietly when its reader goes away",
  opts,
  async () => {
    await using cluster = await startCluster(2);
    using client = cluster.client();
    const keys = Array.from({ length: 4000 }, (_, i) => `key:${i}`);
    await client.mset(keys.map((key) => ({ key, value: "v" })));
    const all = await runKvstore(["scan", "--page-size", "500", "--endpoint", cluster.router.address]);
    assert.deepEqual(all.stdout.trim().split("\n").sort(), [...keys].sort());

    // `kvstore scan | head -1`: the reader closes after the first line.
    const child = spawnKvstore(["scan", "--page-size", "100", "--endpoint", cluster.router.address]);
    const reader = child.stdout.getReader();
    await reader.read();
    await reader.cancel();
    const [status, stderr] = await Promise.all([child.status, new Response(child.stderr).text()]);
    assert.equal(status.code, 0, stderr);
    assert.equal(stderr, "");
  },
);

type UnaryMethod = (
  request: object,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, response?: unknown) => void,
) => void;

/** A unary call with gRPC metadata, as any gRPC client (grpcurl -H, C++) would make it. */
function callWithMetadata<Response>(
  address: string,
  rpc: string,
  request: object,
  metadata: grpc.Metadata,
): Promise<Response> {
  const client = createKvstoreClient(address, CLIENT_TRANSPORT_LIMITS);
  const method = (client as unknown as Record<string, UnaryMethod>)[rpc];
  return new Promise<Response>((resolve, reject) => {
    method.call(client, request, metadata, { deadline: Date.now() + 5000 }, (error, response) => {
      client.close();
      if (error !== null) reject(error);
      else resolve(response as Response);
    });
  });
}

Deno.test("a router serves health and reflection like a node", opts, async () => {
  await using cluster = await startCluster(1);
  using health = new HealthClient(cluster.router.address);
  assert.equal(await health.check(""), "SERVING");
  assert.equal(await health.check("kvstore.KeyValueStore"), "SERVING");
  const reflection = new ReflectionClient(cluster.router.address);
  try {
    assert.ok((await reflection.listServices()).includes("kvstore.KeyValueStore"));
  } finally {
    reflection.close();
  }
});

Deno.test(
  "a connection storm past a router's open-file limit is refused at the limit, and the router keeps accepting",
  opts,
  async () => {
    await using shard = await startServer();
    // 1024 descriptors: the router keeps 256 connections (FDS_RESERVED and
    // ROUTER_LINK_FDS_RESERVED stay free), and the storm brings 1500. A router that ran
    // out of descriptors while accepting would never accept again.
    await using router = await startRouter({ shards: [shard.address], shellSetup: openFilesLimit(1024) });
    assert.match(
      router.stderr,
      /WARN {2}router: The open-file limit is 1024, so at most 256 client connections are kept open at once \(--max-connections asks for 10000\)/,
    );

    await connectionStorm(router.address, 1500);
    using client = new KvClient(router.address, { deadlineMs: 10_000, ownConnection: true });
    assert.equal(await client.set("after", "storm"), true, "the router accepts connections again");
    assert.equal(await client.get("after"), "storm", "and reaches its shard");
    assert.ok(router.running);
  },
);

Deno.test(
  "a router's digest equals one node's holding the same data; per-node operations are refused",
  opts,
  async () => {
    await using cluster = await startCluster(3);
    await using single = await startServer();
    using routed = cluster.client();
    using direct = new KvClient(single.address);
    const entries = Array.from({ length: 500 }, (_, i) => ({ key: `key:${i}`, value: `value ${i}` }));
    await routed.mset(entries);
    await direct.mset(entries);
    const viaRouter = await runKvstore(["digest", "--endpoint", cluster.router.address]);
    const ofNode = await runKvstore(["digest", "--endpoint", single.address]);
    assert.equal(viaRouter.code, 0, viaRouter.stderr);
    assert.equal(viaRouter.stdout.split(" ")[0], ofNode.stdout.split(" ")[0]);
    assert.match(viaRouter.stdout, /keys=500/);

    const snapshot = await runKvstore(["snapshot", "--endpoint", cluster.router.address]);
    assert.equal(snapshot.code, 3);
    assert.match(
      snapshot.stderr,
      /router: Snapshot acts on one node: run kvstore snapshot --endpoint HOST:PORT on each shard/,
    );
  },
);
