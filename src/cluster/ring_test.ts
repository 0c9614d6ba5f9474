import assert from "node:assert/strict";
import { VNODES_PER_SHARD_DEFAULT } from "../config/limits.ts";
import { hashString } from "./hash.ts";
import { HashRing } from "./ring.ts";

const KEYS = Array.from({ length: 100_000 }, (_, i) => `key:${i}`);

function counts(ring: HashRing, keys: readonly string[]): Map<string, number> {
  const result = new Map(ring.shards.map((name) => [name, 0]));
  for (const key of keys) {
    const owner = ring.owner(key);
    result.set(owner, result.get(owner)! + 1);
  }
  return result;
}

const NAMING_SCHEMES: [string, string[]][] = [
  ["local ports", Array.from({ length: 10 }, (_, i) => `127.0.0.1:${7001 + i}`)],
  ["hosts", Array.from({ length: 10 }, (_, i) => `10.0.0.${i + 1}:50051`)],
  ["names", Array.from({ length: 10 }, (_, i) => `shard-${i}`)],
  ["dns names", Array.from({ length: 10 }, (_, i) => `kv${i}.example.com:50051`)],
  ["sparse ports", Array.from({ length: 10 }, (_, i) => `127.0.0.1:${40000 + 7 * i}`)],
];

Deno.test("the default ring has 512 vnodes per shard", () => {
  assert.equal(VNODES_PER_SHARD_DEFAULT, 512);
});

Deno.test("every process computes the same owner: the ring depends on the set of names, not their order", () => {
  const names = NAMING_SCHEMES[0][1];
  const a = new HashRing(names, VNODES_PER_SHARD_DEFAULT);
  const b = new HashRing([...names].reverse(), VNODES_PER_SHARD_DEFAULT);
  for (const key of KEYS.slice(0, 20_000)) assert.equal(a.owner(key), b.owner(key));
});

Deno.test("owners are pinned: a change to the hash or the vnode labels would move keys in running clusters", () => {
  // These values were computed once; if this test fails, every deployed cluster's keys
  // would be looked for on the wrong shards after an upgrade.
  const ring = new HashRing(["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"], 512);
  const owners = ["user:1", "user:2", "user:3", "session:abc", "ключ", ""].map((key) => ring.owner(key));
  assert.deepEqual(owners, PINNED_OWNERS);
});

const PINNED_OWNERS = [
  "127.0.0.1:7003",
  "127.0.0.1:7001",
  "127.0.0.1:7003",
  "127.0.0.1:7001",
  "127.0.0.1:7001",
  "127.0.0.1:7002",
];

for (const [scheme, names] of NAMING_SCHEMES) {
  Deno.test(`with 10 shards (${scheme}) and 100k keys the busiest shard holds at most 1.15x the mean`, () => {
    const ring = new HashRing(names, VNODES_PER_SHARD_DEFAULT);
    const busiest = Math.max(...counts(ring, KEYS).values());
    assert.ok(busiest <= 1.15 * (KEYS.length / 10), `busiest shard holds ${busiest} keys`);
  });
}

Deno.test("adding an 11th shard moves about 1/11 of the keys, all onto the new shard", () => {
  const ring = new HashRing(NAMING_SCHEMES[0][1], VNODES_PER_SHARD_DEFAULT);
  const grown = ring.withShard("127.0.0.1:7011");
  let moved = 0;
  for (const key of KEYS) {
    const before = ring.owner(key);
    const after = grown.owner(key);
    if (before === after) continue;
    moved++;
    assert.equal(after, "127.0.0.1:7011", `key ${key} moved from ${before} to ${after}`);
  }
  const share = moved / KEYS.length;
  assert.ok(share > 0.075 && share < 0.11, `moved ${share} of the keys (1/11 = 0.091)`);
});

Deno.test("removing a shard moves only the keys it owned", () => {
  const ring = new HashRing(NAMING_SCHEMES[2][1], VNODES_PER_SHARD_DEFAULT);
  const shrunk = ring.withoutShard("shard-3");
  let moved = 0;
  for (const key of KEYS) {
    const before = ring.owner(key);
    const after = shrunk.owner(key);
    if (before === "shard-3") {
      assert.notEqual(after, "shard-3");
      moved++;
    } else {
      assert.equal(after, before, `key ${key} moved from ${before} though it was not on the removed shard`);
    }
  }
  assert.ok(moved > 0);
});

Deno.test("shares sum to 1 and predict the keys per shard", () => {
  const ring = new HashRing(NAMING_SCHEMES[1][1], VNODES_PER_SHARD_DEFAULT);
  const shares = ring.shares();
  const total = [...shares.values()].reduce((sum, share) => sum + share, 0);
  assert.ok(Math.abs(total - 1) < 1e-9);
  for (const [name, count] of counts(ring, KEYS)) {
    assert.ok(Math.abs(count / KEYS.length - shares.get(name)!) < 0.01, `${name}: ${count} keys`);
  }
});

Deno.test("movingShares predicts the share of keys a change moves from each shard", () => {
  const ring = new HashRing(NAMING_SCHEMES[3][1], VNODES_PER_SHARD_DEFAULT);
  const grown = ring.withShard("kv10.example.com:50051");
  const predicted = ring.movingShares(grown);
  const measured = new Map(ring.shards.map((name) => [name, 0]));
  for (const key of KEYS) {
    const before = ring.owner(key);
    if (before !== grown.owner(key)) measured.set(before, measured.get(before)! + 1);
  }
  for (const [name, count] of measured) {
    assert.ok(Math.abs(count / KEYS.length - predicted.get(name)!) < 0.005, `${name}: ${count}`);
  }
  // Removing a shard moves exactly its own share.
  const shrunk = ring.withoutShard("kv0.example.com:50051");
  const removing = ring.movingShares(shrunk);
  assert.ok(Math.abs(removing.get("kv0.example.com:50051")! - ring.shares().get("kv0.example.com:50051")!) < 1e-9);
  assert.equal(removing.get("kv1.example.com:50051"), 0);
});

Deno.test("a key belongs to the first virtual node at or after its position, wrapping past the top", () => {
  const ring = new HashRing(["a", "b"], 1);
  const [low, high] = [["a", hashString("a#0")], ["b", hashString("b#0")]].sort((x, y) =>
    (x[1] as number) - (y[1] as number)
  ) as [string, number][];
  assert.equal(ring.ownerOfPosition(low[1]), low[0], "a position equal to a node's belongs to it");
  assert.equal(ring.ownerOfPosition(low[1] + 1), high[0]);
  assert.equal(ring.ownerOfPosition(high[1]), high[0]);
  assert.equal(ring.ownerOfPosition(high[1] + 1), low[0], "past the last node wraps to the first");
  assert.equal(ring.ownerOfPosition(0), low[0]);
  assert.equal(ring.ownerOfPosition(2 ** 32 - 1), high[1] === 2 ** 32 - 1 ? high[0] : low[0]);
});

Deno.test("a ring refuses duplicate names and has no owner when empty", () => {
  assert.throws(() => new HashRing(["a", "a"], 8), /listed twice/);
  const empty = new HashRing([], 8);
  assert.equal(empty.empty, true);
  assert.throws(() => empty.owner("k"), /no shards/);
  assert.equal(new HashRing(["a"], 8).owner("anything"), "a");
});
