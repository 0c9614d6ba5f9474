import assert from "node:assert/strict";
import { completeMigration, forgetShard, initialMembership, startAdd, startRemove } from "./membership.ts";
import { parseShardSpec } from "./shard_spec.ts";
import { carryScanPosition, scanOrderOf } from "./topology.ts";

const spec = (name: string) => parseShardSpec(name, "test");
const stable = initialMembership(["a:1", "b:1", "c:1"].map(spec), 16);
const adding = startAdd(stable, spec("d:1"), 0);
const removing = startRemove(stable, "b:1", 0);

Deno.test("a scan goes first through the shards keys move from", () => {
  assert.deepEqual(scanOrderOf(stable), ["a:1", "b:1", "c:1"]);
  assert.deepEqual(scanOrderOf(adding), ["a:1", "b:1", "c:1", "d:1"]);
  assert.deepEqual(scanOrderOf(removing), ["b:1", "a:1", "c:1"]);
});

Deno.test("a scan position is carried across the start of an add and the end of a move", () => {
  const at = (index: number, shardCursor = "x.1") => ({ index, shardCursor });
  // An add begins: the new shard goes last, and keys move only onto it.
  assert.deepEqual(carryScanPosition(stable, adding, at(1)), at(1));
  // An add ends: the order stays.
  assert.deepEqual(carryScanPosition(adding, completeMigration(adding), at(3)), at(3));
  // An add called off: the new shard's keys are lost with it; a scan on it is done.
  const calledOff = forgetShard(adding, "d:1");
  assert.deepEqual(carryScanPosition(adding, calledOff, at(2)), at(2));
  assert.deepEqual(carryScanPosition(adding, calledOff, at(3)), at(3, ""));
  // A removal ends: the drained shard, first in the order, leaves it.
  const removed = completeMigration(removing);
  assert.deepEqual(carryScanPosition(removing, removed, at(0)), at(0, ""), "on to the next shard's start");
  assert.deepEqual(carryScanPosition(removing, removed, at(2)), at(1));
  assert.deepEqual(carryScanPosition(removing, forgetShard(removing, "b:1"), at(1)), at(0));
});

Deno.test("a scan position is not carried where keys could move behind it", () => {
  const at = { index: 1, shardCursor: "x.1" };
  assert.equal(carryScanPosition(stable, removing, at), null, "a removal begins: keys move onto finished shards");
  assert.equal(carryScanPosition(stable, forgetShard(stable, "a:1"), at), null, "a shard forgotten off a stable ring");
  const added = completeMigration(adding);
  assert.equal(carryScanPosition(stable, added, at), null, "memberships that do not follow each other");
  assert.equal(carryScanPosition(added, startRemove(added, "d:1", 0), at), null);
});
