import assert from "node:assert/strict";
import { int64SchemaOf } from "../transport/proto.ts";
import { formatBytes, formatDuration, formatField, formatInfo, infoJson } from "./info_format.ts";

Deno.test("info prints sections, known fields in order, with human forms beside raw values", () => {
  const lines = formatInfo({
    role: "master",
    version: "0.1.0",
    uptime_ms: "65012",
    keys: "3",
    dataset_bytes: "1234567",
    replid: "abc",
    master_address: "",
    connections: "2",
  }, 0);
  assert.deepEqual(lines, [
    "# Server",
    "role            master",
    "version         0.1.0",
    "uptime_ms       65012 (1m 05s)",
    "",
    "# Clients",
    "connections     2",
    "",
    "# Keyspace",
    "keys            3",
    "",
    "# Memory",
    "dataset_bytes   1234567 (1.2 MiB)",
    "",
    "# Replication",
    "replid          abc",
    "master_address  -",
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

Deno.test("a router's cluster prints its shards one per line and leaves unset fields out", () => {
  const lines = formatInfo({
    role: "router",
    cluster: {
      epoch: "3",
      vnodes: 512,
      shards: [{ name: "a", master: "10.0.0.1:1", replicas: [], reachable: true }],
      migration: null,
    },
  }, 0);
  assert.deepEqual(lines, [
    "# Server",
    "role     router",
    "",
    "# Cluster",
    "cluster",
    "  epoch  3",
    "  vnodes  512",
    "  shards",
    "    [0] name=a master=10.0.0.1:1 replicas=[] reachable=true",
  ]);
});
