import assert from "node:assert/strict";
import { kvstoreServiceDefinition } from "../transport/grpc.ts";
import { int64SchemaOf } from "../transport/proto.ts";
import { formatClusterStatus } from "./cluster_format.ts";
import { formatBytes, formatDuration, formatField, formatInfo, infoJson, infoSections } from "./info_format.ts";

/** `fields` as a client decodes an Info answer holding them: every other field at its
 * default, int64 fields as decimal strings, unset messages as null. */
function decodedInfo(fields: Record<string, unknown>): Record<string, unknown> {
  const rpc = kvstoreServiceDefinition().Info;
  return rpc.responseDeserialize(rpc.responseSerialize(fields)) as Record<string, unknown>;
}

/** The names of the `field  value` lines of `lines` (a section header or a table is not one). */
function fieldNames(lines: readonly string[]): string[] {
  return lines.filter((line) => /^[a-z_]+(\s|$)/.test(line)).map((line) => line.split(/\s/)[0]);
}

/** What a router answers with two shards, one of them down, while a third joins. */
const ROUTER_INFO = {
  role: "router",
  version: "0.1.0",
  runtime: "deno 2.9.3",
  address: "127.0.0.1:50051",
  pid: 4242,
  uptime_ms: 65_012,
  started_at_ms: 1_000,
  health: "SERVING",
  connections: 2,
  calls_total: 17,
  keys: 12,
  expiring_keys: 3,
  expired_keys: 1,
  dataset_bytes: 2048,
  rss_bytes: 100 * 1024 * 1024,
  heap_used_bytes: 16 * 1024 * 1024,
  data_dir: "/var/lib/kvstore/router",
  cluster: {
    epoch: 4,
    vnodes: 512,
    shards: [
      {
        name: "a",
        master: "10.0.0.1:7101",
        replicas: ["10.0.0.2:7101"],
        state: "serving",
        reachable: true,
        keys: 12,
        dataset_bytes: 2048,
        ring_share: 0.25446879607625306,
      },
      {
        name: "b",
        master: "10.0.0.1:7102",
        state: "serving",
        reachable: false,
        error: 'router: Cannot reach shard "b" at 10.0.0.1:7102: connection refused',
        ring_share: 0.5,
      },
      { name: "c", master: "10.0.0.1:7103", state: "joining", reachable: true, ring_share: 0.24553120392374694 },
    ],
    migration: {
      kind: "add",
      shard: "c",
      started_at_ms: 500,
      state: "moving",
      keys_moved: 100,
      keys_to_move: 400,
      keys_scanned: 1000,
      keys_to_scan: 4000,
    },
  },
};

Deno.test("info prints sections, known fields in order, with human forms beside raw values", () => {
  const lines = formatInfo({
    role: "master",
    version: "0.1.0",
    uptime_ms: "65012",
    keys: "3",
    dataset_bytes: "1234567",
    replid: "abc",
    connections: "2",
  }, 0);
  assert.deepEqual(lines, [
    "# Server",
    "role           master",
    "version        0.1.0",
    "uptime_ms      65012 (1m 05s)",
    "",
    "# Clients",
    "connections    2",
    "",
    "# Keyspace",
    "keys           3",
    "",
    "# Memory",
    "dataset_bytes  1234567 (1.2 MiB)",
    "",
    "# Replication",
    "replid         abc",
  ]);
});

Deno.test("fields added by other subsystems land in a section by their name", () => {
  const lines = formatInfo({
    role: "replica",
    fsync_lag_ms: "5",
    snapshot_age_ms: "1000",
    replica_lag_ms: "12",
    sync_peers: [{ address: "a:1", lag: 3 }],
    shard_count: "4",
    mystery: "x",
  }, 61_000);
  const text = lines.join("\n");
  assert.match(text, /# Persistence\nfsync_lag_ms\s+5 \(5 ms\)\nsnapshot_age_ms\s+1000 \(1\.0 s\)/);
  assert.match(text, /# Replication\nreplica_lag_ms\s+12 \(12 ms\)\nsync_peers\n {2}\[0\] address=a:1 lag=3/);
  assert.match(text, /# Cluster\nshard_count\s+4/);
  assert.match(text, /# Other\nmystery\s+x$/);
});

Deno.test("persistence and replication fields come in their sections' own order", () => {
  const text = formatInfo({ log_bytes: "2048", data_dir: "/d", link_state: "up", replid: "r" }, 0).join("\n");
  assert.match(text, /# Persistence\ndata_dir\s+\/d\nlog_bytes\s+2048 \(2\.0 KiB\)/);
  assert.match(text, /# Replication\nreplid\s+r\nlink_state\s+up/);
});

Deno.test("durations, sizes and times read naturally", () => {
  assert.equal(formatDuration(950), "950 ms");
  assert.equal(formatDuration(12_340), "12.3 s");
  assert.equal(formatDuration(3_723_000), "1h 02m 03s");
  assert.equal(formatDuration(93_784_000), "1d 02h 03m");
  assert.equal(formatBytes(512), "512 bytes");
  assert.equal(formatBytes(3 * 1024 ** 3), "3.0 GiB");
  assert.equal(formatField("last_snapshot_at_ms", "0", 5), "0 (never)");
  // A time ahead of this machine's clock (the node's clock is ahead) is "in", not "-5.0 s ago".
  assert.equal(formatField("started_at_ms", "6000", 1000), "6000 (1970-01-01T00:00:06.000Z, in 5.0 s)");
  assert.equal(formatField("started_at_ms", "1000", 1000), "1000 (1970-01-01T00:00:01.000Z, 0 ms ago)");
  assert.equal(formatField("version", "0.1.0", 0), "0.1.0");
});

Deno.test("JSON gives int64 fields as numbers where exact, and leaves strings alone", () => {
  const schema = { int64: new Set(["keys", "big"]), messages: new Map() };
  assert.deepEqual(
    infoJson({ keys: "12", replid: "123", big: "9007199254740993", role: "master" }, schema),
    { keys: 12, replid: "123", big: "9007199254740993", role: "master" },
  );
});

Deno.test("JSON gives the int64 fields of nested messages as numbers too: replicas, a router's shards", () => {
  const info = {
    last_seq: "7",
    replicas: [{ address: "10.0.0.2:1", acked_seq: "7", lag_ms: "0" }],
    cluster: { epoch: "3", shards: [{ name: "a", keys: "12" }], migration: null },
  };
  assert.deepEqual(infoJson(info, int64SchemaOf("InfoResponse")), {
    last_seq: 7,
    replicas: [{ address: "10.0.0.2:1", acked_seq: 7, lag_ms: 0 }],
    cluster: { epoch: 3, shards: [{ name: "a", keys: 12 }], migration: null },
  });
});

Deno.test("a router shows its process, clients, the cluster's keys and its shards, and no node-only section", () => {
  const lines = formatInfo(decodedInfo(ROUTER_INFO), 66_012);
  const cluster = decodedInfo(ROUTER_INFO).cluster as Parameters<typeof formatClusterStatus>[0];
  assert.deepEqual(lines, [
    "# Server",
    "role             router",
    "version          0.1.0",
    "runtime          deno 2.9.3",
    "address          127.0.0.1:50051",
    "pid              4242",
    "uptime_ms        65012 (1m 05s)",
    "started_at_ms    1000 (1970-01-01T00:00:01.000Z, 1m 05s ago)",
    "health           SERVING",
    "config_file      -",
    "metrics_address  -",
    "data_dir         /var/lib/kvstore/router",
    "",
    "# Clients",
    "connections      2",
    "calls_total      17",
    "",
    "# Keyspace",
    "keys             12 (2 of 3 shards answered)",
    "expiring_keys    3 (2 of 3 shards answered)",
    "expired_keys     1 (2 of 3 shards answered)",
    "dataset_bytes    2048 (2.0 KiB; 2 of 3 shards answered)",
    "",
    "# Memory",
    "rss_bytes        104857600 (100.0 MiB)",
    "heap_used_bytes  16777216 (16.0 MiB)",
    "",
    "# Cluster",
    ...formatClusterStatus(cluster),
  ]);
  // The Cluster section reads as `kvstore cluster status`: ring shares as percentages.
  assert.deepEqual(formatClusterStatus(cluster), [
    "3 shards, 512 vnodes per shard, epoch 4",
    "SHARD  MASTER         STATE    KEYS  RING   REPLICAS",
    "a      10.0.0.1:7101  serving  12    25.4%  10.0.0.2:7101",
    "b      10.0.0.1:7102  serving  down  50.0%  -",
    "c      10.0.0.1:7103  joining  0     24.6%  -",
    'b: router: Cannot reach shard "b" at 10.0.0.1:7102: connection refused',
    'adding shard "c": 100 of about 400 keys moved (25%), 1000 of 4000 scanned',
  ]);
});

Deno.test("a router whose shards all answer shows plain sums, and a stable ring", () => {
  const shards = ROUTER_INFO.cluster.shards.slice(0, 1);
  const text = formatInfo(decodedInfo({ ...ROUTER_INFO, cluster: { epoch: 1, vnodes: 512, shards } }), 0).join("\n");
  assert.match(text, /^keys +12$/m);
  assert.match(text, /^dataset_bytes +2048 \(2\.0 KiB\)$/m);
  assert.match(text, /# Cluster\n1 shard, 512 vnodes per shard, epoch 1, stable\nSHARD /);
  assert.doesNotMatch(text, /ring_share|# Persistence|# Replication|# Other|replid|appendfsync/);
});

Deno.test("a master leaves out its replica-only fields, and a replica the master's list of replicas", () => {
  const common = {
    version: "0.1.0",
    replid: "r2",
    last_seq: 7,
    backlog_bytes: 460,
    backlog_bytes_max: 1024,
    backlog_first_seq: 1,
    data_dir: "/d",
    appendfsync: "everysec",
  };
  const master = formatInfo(
    decodedInfo({
      ...common,
      role: "master",
      first_sync_done: true,
      replicas: [{ replica_id: "x", address: "a:1", mode: "pull", state: "online", acked_seq: 7 }],
    }),
    0,
  );
  const masterFields = fieldNames(master);
  for (const field of ["master_address", "link_state", "first_sync_done", "master_last_seq", "link_down_ms"]) {
    assert.ok(!masterFields.includes(field), `a master has no ${field}`);
  }
  assert.ok(!masterFields.includes("link_error"));
  assert.ok(!masterFields.includes("cluster"), "a node has no cluster");
  assert.match(master.join("\n"), /\nreplicas\n {2}\[0\] replica_id=x address=a:1 mode=pull state=online acked_seq=7/);
  assert.match(master.join("\n"), /\nbacklog_bytes +460 \(460 bytes\)\nbacklog_bytes_max +1024 \(1\.0 KiB\)/);

  const up = formatInfo(
    decodedInfo({
      ...common,
      role: "replica",
      master_address: "m:1",
      link_state: "up",
      first_sync_done: true,
      master_last_seq: 7,
    }),
    0,
  );
  const upFields = fieldNames(up);
  assert.ok(!upFields.includes("replicas"), "a replica serves no replicas");
  assert.ok(!upFields.includes("link_down_ms"), "the link is up");
  for (const field of ["master_address", "link_state", "first_sync_done", "master_last_seq", "link_error"]) {
    assert.ok(upFields.includes(field), `a replica shows ${field}`);
  }
  const down = formatInfo(
    decodedInfo({ ...common, role: "replica", link_state: "down", link_down_ms: 1500, link_error: "refused" }),
    0,
  ).join("\n");
  assert.match(down, /^link_down_ms +1500 \(1\.5 s\)\nlink_error +refused$/m);
});

Deno.test("what describes nothing is left out: no previous history, no snapshot yet", () => {
  const fresh = fieldNames(formatInfo(decodedInfo({ role: "master", last_snapshot_status: "none" }), 0));
  for (
    const field of [
      "previous_replid",
      "previous_replid_last_seq",
      "last_snapshot_duration_ms",
      "last_snapshot_keys",
      "last_snapshot_bytes",
      "last_snapshot_seq",
    ]
  ) assert.ok(!fresh.includes(field), field);
  assert.ok(fresh.includes("last_snapshot_at_ms") && fresh.includes("last_snapshot_status"));

  const text = formatInfo(
    decodedInfo({
      role: "master",
      previous_replid: "r1",
      previous_replid_last_seq: 5,
      last_snapshot_at_ms: 1000,
      last_snapshot_status: "ok",
      last_snapshot_keys: 3,
      last_snapshot_seq: 5,
    }),
    2000,
  ).join("\n");
  assert.match(text, /^previous_replid +r1\nprevious_replid_last_seq +5$/m);
  assert.match(text, /^last_snapshot_status +ok\nlast_snapshot_duration_ms +0 \(0 ms\)\nlast_snapshot_keys +3$/m);
});

Deno.test("after a failed snapshot, the last good one's time says that it is the last good one", () => {
  const failed = formatInfo(
    decodedInfo({
      role: "master",
      last_snapshot_at_ms: 1_000,
      last_snapshot_status: "failed at 1970-01-01T00:01:00.000Z: No space left on device (os error 28)",
      last_snapshot_keys: 3,
    }),
    61_000,
  ).join("\n");
  assert.match(
    failed,
    /^last_snapshot_at_ms +1000 \(1970-01-01T00:00:01\.000Z, 1m 00s ago; the last good one\)\n/m,
  );
  assert.match(failed, /^last_snapshot_status +failed at 1970-01-01T00:01:00\.000Z: No space left on device/m);
  assert.match(failed, /^last_snapshot_keys +3$/m);
  // With no good snapshot before it, there is none to point at; and a good one needs no note.
  const never = formatInfo(decodedInfo({ role: "master", last_snapshot_status: "failed at x: y" }), 0).join("\n");
  assert.match(never, /^last_snapshot_at_ms +0 \(never\)$/m);
  const ok = formatInfo(decodedInfo({ role: "master", last_snapshot_at_ms: 1_000, last_snapshot_status: "ok" }), 2_000);
  assert.doesNotMatch(ok.join("\n"), /last good/);
});

Deno.test("a router's JSON has every field, its counts, shares and progress as numbers", () => {
  const json = infoJson(decodedInfo(ROUTER_INFO), int64SchemaOf("InfoResponse"));
  // The same shape whatever the role: the node-only fields are there, at their defaults.
  assert.equal(json.appendfsync, "");
  assert.equal(json.last_seq, 0);
  assert.deepEqual(json.replicas, []);
  assert.equal(json.keys, 12);
  assert.equal(json.data_dir, "/var/lib/kvstore/router");
  const cluster = json.cluster as Record<string, unknown>;
  assert.equal(cluster.epoch, 4);
  const shards = cluster.shards as Record<string, unknown>[];
  assert.deepEqual(shards.map((shard) => [shard.keys, shard.dataset_bytes, shard.ring_share]), [
    [12, 2048, 0.25446879607625306],
    [0, 0, 0.5],
    [0, 0, 0.24553120392374694],
  ]);
  assert.deepEqual(cluster.migration, {
    kind: "add",
    shard: "c",
    started_at_ms: 500,
    state: "moving",
    error: "",
    keys_moved: 100,
    keys_to_move: 400,
    keys_scanned: 1000,
    keys_to_scan: 4000,
    finished_at_ms: 0,
  });
  // Every number is a JSON number, every field survives a round trip through JSON.
  assert.deepEqual(JSON.parse(JSON.stringify(json)), json);
  const strings = JSON.stringify(json).match(/"[a-z_]+":"-?[0-9]+"/g);
  assert.equal(strings, null, `int64 fields left as strings: ${strings}`);
});

Deno.test("sections named keep only those, in their order; JSON keeps every field of them", () => {
  const master = decodedInfo({ role: "master", keys: 3, replid: "r", last_seq: 7, connections: 1 });
  assert.deepEqual(
    formatInfo(master, 0, new Set(["replication", "keyspace"])).filter((line) => line.startsWith("# ")),
    [
      "# Keyspace",
      "# Replication",
    ],
  );
  assert.deepEqual(formatInfo(decodedInfo(ROUTER_INFO), 0, new Set(["persistence"])), [], "a router has none");
  assert.deepEqual(
    Object.keys(infoSections(master, new Set(["replication"]))),
    [
      "replicas",
      "replid",
      "last_seq",
      "master_address",
      "link_state",
      "first_sync_done",
      "master_last_seq",
      "link_down_ms",
      "link_error",
      "backlog_bytes",
      "backlog_bytes_max",
      "backlog_first_seq",
      "previous_replid",
      "previous_replid_last_seq",
    ],
  );
  assert.deepEqual(
    infoSections(decodedInfo(ROUTER_INFO), new Set(["keyspace"])),
    { keys: "12", expiring_keys: "3", expired_keys: "1", dataset_bytes: "2048" },
    "a router's dataset figure is a sum over its shards, in its Keyspace",
  );
});
