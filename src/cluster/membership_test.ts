import assert from "node:assert/strict";
import {
  completeMigration,
  findShard,
  forgetShard,
  initialMembership,
  shardsAfter,
  shardsInvolved,
  startAdd,
  startRemove,
} from "./membership.ts";
import { parseShardList, parseShardSpec } from "./shard_spec.ts";
import { Topology } from "./topology.ts";

const base = initialMembership(parseShardList("h:1,h:2,h:3", "t"), 64);
const spec = (text: string) => parseShardSpec(text, "t");

Deno.test("adding a shard records the migration; completing it puts the shard on the ring", () => {
  const adding = startAdd(base, spec("h:4"), 1000);
  assert.equal(adding.epoch, 2);
  assert.deepEqual(adding.shards, base.shards, "the ring stays as it was until the keys have moved");
  assert.deepEqual(shardsAfter(adding).map((s) => s.name), ["h:1", "h:2", "h:3", "h:4"]);
  assert.equal(findShard(adding, "h:4")?.name, "h:4");
  const done = completeMigration(adding);
  assert.equal(done.epoch, 3);
  assert.equal(done.migration, null);
  assert.deepEqual(done.shards.map((s) => s.name), ["h:1", "h:2", "h:3", "h:4"]);
});

Deno.test("removing a shard keeps reaching it until its keys have moved", () => {
  const removing = startRemove(base, "h:2", 1000);
  assert.deepEqual(shardsInvolved(removing).map((s) => s.name), ["h:1", "h:2", "h:3"]);
  assert.deepEqual(shardsAfter(removing).map((s) => s.name), ["h:1", "h:3"]);
  assert.deepEqual(completeMigration(removing).shards.map((s) => s.name), ["h:1", "h:3"]);
});

Deno.test("changes that cannot be made are refused with what to do", () => {
  assert.throws(() => startAdd(base, spec("h:2"), 0), /Cannot add shard h:2: shard "h:2" is listed twice/);
  assert.throws(() => startAdd(base, spec("x=h:1"), 0), /address h:1 belongs to both/);
  const adding = startAdd(base, spec("h:4"), 0);
  assert.throws(() => startAdd(adding, spec("h:5"), 0), /is adding shard "h:4"; wait until it completes/);
  assert.throws(() => startRemove(adding, "h:1", 0), /wait until it completes/);
  assert.throws(() => startRemove(base, "h:9", 0), /no shard has that name .* \(shards: h:1, h:2, h:3\)/);
  const single = initialMembership([spec("h:1")], 64);
  assert.throws(() => startRemove(single, "h:1", 0), /it is the last one/);
  assert.throws(() => forgetShard(single, "h:1"), /it is the last one/);
  assert.throws(() => initialMembership([], 64), /no shards/);
});

Deno.test("a shard can be found by its name or its master's address", () => {
  const named = initialMembership(parseShardList("a=h:1+h:9,h:2", "t"), 64);
  assert.equal(findShard(named, "a")?.master, "h:1");
  assert.equal(findShard(named, "h:1")?.name, "a");
  assert.deepEqual(forgetShard(named, "h:1").shards.map((s) => s.name), ["h:2"]);
});

Deno.test("a scan visits the shards keys leave before the shards they join", () => {
  assert.deepEqual(new Topology(startAdd(base, spec("h:4"), 0)).scanOrder(), ["h:1", "h:2", "h:3", "h:4"]);
  assert.deepEqual(new Topology(startRemove(base, "h:2", 0)).scanOrder(), ["h:2", "h:1", "h:3"]);
  const topology = new Topology(base);
  assert.equal(topology.migrating, false);
  assert.equal(topology.moves("anything"), false);
});

Deno.test("forgetting the shard a migration moves keys to or from calls the migration off", () => {
  const adding = startAdd(base, spec("h:4"), 0);
  const calledOff = forgetShard(adding, "h:4");
  assert.equal(calledOff.migration, null);
  assert.deepEqual(calledOff.shards.map((s) => s.name), ["h:1", "h:2", "h:3"]);
  assert.equal(calledOff.epoch, adding.epoch + 1);
  const removing = startRemove(base, "h:2", 0);
  assert.deepEqual(forgetShard(removing, "h:2").shards.map((s) => s.name), ["h:1", "h:3"]);
  assert.throws(() => forgetShard(adding, "h:1"), /is adding shard "h:4"; wait until it completes/);
});
