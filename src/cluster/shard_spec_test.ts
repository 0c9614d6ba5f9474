import assert from "node:assert/strict";
import { findConflict, formatShardSpec, parseShardList, parseShardSpec } from "./shard_spec.ts";

Deno.test("a shard is named after its master unless it is given a name", () => {
  assert.deepEqual(parseShardSpec("127.0.0.1:7001", "--shards"), {
    name: "127.0.0.1:7001",
    master: "127.0.0.1:7001",
    replicas: [],
  });
  assert.deepEqual(parseShardSpec(" users-a=10.0.0.5:50051+10.0.0.6:50051+[::1]:7 ", "--shards"), {
    name: "users-a",
    master: "10.0.0.5:50051",
    replicas: ["10.0.0.6:50051", "[::1]:7"],
  });
});

Deno.test("formatShardSpec writes what parseShardSpec reads", () => {
  for (const text of ["127.0.0.1:7001", "a=127.0.0.1:7001+127.0.0.1:7101", "h:1+h:2"]) {
    assert.equal(formatShardSpec(parseShardSpec(text, "x")), text);
  }
});

Deno.test("a list of shards parses each and refuses names or addresses used twice", () => {
  assert.equal(parseShardList("h:1,h:2+h:3,c=h:4", "--shards").length, 3);
  assert.throws(() => parseShardList("h:1,h:1", "--shards"), /Invalid --shards: shard "h:1" is listed twice/);
  assert.throws(
    () => parseShardList("h:1,h:2+h:1", "--shards"),
    /address h:1 belongs to both shard "h:1" and shard "h:2"/,
  );
  assert.throws(() => parseShardList("a=h:1,a=h:2", "--shards"), /shard "a" is listed twice/);
  assert.equal(findConflict([parseShardSpec("h:1", "x"), parseShardSpec("h:2", "x")]), null);
});

Deno.test("malformed shards are refused with the flag and an example", () => {
  assert.throws(() => parseShardSpec("", "--shards"), /Invalid --shards "": expected \[NAME=\]HOST:PORT/);
  assert.throws(() => parseShardSpec("h:1+", "--shards"), /expected \[NAME=\]HOST:PORT/);
  assert.throws(() => parseShardSpec("localhost", "--shards"), /expected host:port/);
  assert.throws(() => parseShardSpec("a b=h:1", "--shards"), /shard name "a b" must be/);
  assert.throws(() => parseShardSpec("=h:1", "--shards"), /shard name "" must be/);
  assert.throws(() => parseShardSpec("h:1+h:1", "--shards"), /h:1 is listed twice/);
});
