import assert from "node:assert/strict";
import { KvError } from "../errors.ts";
import { silentLogger } from "../logging/logger.ts";
import { expositionProblems, parseExposition, sampleValue } from "../metrics/exposition.ts";
import { MetricsRegistry } from "../metrics/registry.ts";
import type { WireEntry } from "../transport/messages.ts";
import { ClusterAdmin, type ShardPool } from "./cluster_admin.ts";
import { initialMembership } from "./membership.ts";
import { MemoryShard, seededRandom } from "./memory_shard.ts";
import { RouterCore } from "./router_core.ts";
import { registerRouterMetrics, ShardCallMetrics, ShardProbes } from "./router_metrics.ts";
import type { CallContext, ShardApi } from "./shard_api.ts";
import { parseShardList, parseShardSpec, type ShardSpec } from "./shard_spec.ts";
import { Topology } from "./topology.ts";

const CONTEXT: CallContext = { deadlineMs: Infinity, readFrom: "master" };

/** A shard whose next answer the test sets: a response, or an error to throw. */
function scriptedShard(name: string, clock: { ms: number }, answer: () => unknown): ShardApi {
  return {
    spec: parseShardSpec(name, "test"),
    call<Response>(): Promise<Response> {
      clock.ms += 7;
      const outcome = answer();
      return outcome instanceof Error ? Promise.reject(outcome) : Promise.resolve(outcome as Response);
    },
    close() {},
  };
}

Deno.test("a shard's calls are counted by the status they end with, timed, and passed through unchanged", async () => {
  const registry = new MetricsRegistry();
  const clock = { ms: 0 };
  const metrics = new ShardCallMetrics(registry, () => clock.ms);
  let next: unknown = { found: true, value: "v" };
  const shard = metrics.wrap(scriptedShard("a=h:1", clock, () => next));
  assert.equal(shard.spec.name, "a");

  assert.deepEqual(await shard.call("Get", { key: "k" }, CONTEXT), { found: true, value: "v" });
  const refusal = new KvError("UNAVAILABLE", 'router: Cannot reach shard "a"');
  next = refusal;
  await assert.rejects(shard.call("Get", { key: "k" }, CONTEXT), (error) => error === refusal);
  next = new TypeError("a bug");
  await assert.rejects(shard.call("Get", { key: "k" }, CONTEXT), TypeError);

  assert.equal(metrics.calls("a", "OK"), 1);
  assert.equal(metrics.calls("a", "UNAVAILABLE"), 1);
  assert.equal(metrics.calls("a", "UNKNOWN"), 1);
  const text = registry.render();
  assert.deepEqual(expositionProblems(text), [], text);
  const parsed = parseExposition(text);
  assert.equal(sampleValue(parsed, "kvstore_router_shard_duration_seconds_count", { shard: "a" }), 3);
  assert.equal(sampleValue(parsed, "kvstore_router_shard_duration_seconds_sum", { shard: "a" }), 0.021);
  assert.equal(sampleValue(parsed, "kvstore_router_shard_duration_seconds_bucket", { shard: "a", le: "0.01" }), 3);
});

Deno.test("a probe round marks each shard up or down by whether its master answered Info", async () => {
  const answers = new Map<string, boolean>([["a:1", true], ["b:1", false]]);
  let shards: ShardSpec[] = parseShardList("a:1,b:1", "test");
  const asked: string[] = [];
  const changes: string[] = [];
  const probes = new ShardProbes({
    shards: () => shards,
    link: (name) =>
      scriptedShard(name, { ms: 0 }, () => {
        asked.push(name);
        return answers.get(name) ? { role: "master" } : new KvError("DEADLINE_EXCEEDED", "too slow");
      }),
    clock: () => 0,
    deadlineMs: 2000,
    onChange: (spec, up, reason) => changes.push(`${spec.name} ${up ? "up" : `down: ${reason}`}`),
  });
  assert.equal(probes.up("a:1"), undefined, "nothing is known before the first round");
  await probes.round();
  assert.deepEqual(asked, ["a:1", "b:1"]);
  assert.equal(probes.up("a:1"), true);
  assert.equal(probes.up("b:1"), false);
  assert.deepEqual(changes, [], "a first verdict is no change (the router's start-up check reports it)");
  answers.set("a:1", false);
  await probes.round();
  assert.deepEqual(changes, ["a:1 down: too slow"], "a shard that stops answering is said to, once");
  await probes.round();
  assert.deepEqual(changes, ["a:1 down: too slow"], "a shard still down is not said to be again");

  answers.set("b:1", true);
  shards = parseShardList("b:1", "test");
  await probes.round();
  assert.equal(probes.up("b:1"), true, "a shard that answers again is up");
  assert.equal(probes.up("a:1"), undefined, "a shard that left the ring is forgotten");
  assert.deepEqual(changes, ["a:1 down: too slow", "b:1 up"]);
});

class MemoryPool implements ShardPool {
  readonly shards = new Map<string, MemoryShard>();
  get(name: string): ShardApi {
    return this.shards.get(name)!;
  }
  sync(): void {}
}

Deno.test("the ring's metrics follow a rebalancing: epoch, state, keys to move and keys moved", async () => {
  const random = seededRandom(5);
  const pool = new MemoryPool();
  for (const name of ["h:1", "h:2", "h:3"]) pool.shards.set(name, new MemoryShard(name, Date.now, random));
  const membership = initialMembership(parseShardList("h:1,h:2", "t"), 64);
  const core = new RouterCore(new Topology(membership), (name) => pool.get(name), {
    limits: { keyBytesMax: 1024, valueBytesMax: 1024, ttlSecondsMax: 1_000_000 },
    clock: Date.now,
  });
  const admin = new ClusterAdmin(membership, {
    core,
    pool,
    persist: () => Promise.resolve(),
    logger: silentLogger(),
    clock: Date.now,
    sleep: () => new Promise((resolve) => setTimeout(resolve, 0)),
    scanPageKeys: 50,
    batchKeys: 10,
    pauseMs: 0,
    retryMs: 1,
  });
  const probes = new ShardProbes({
    shards: () => admin.membership.shards,
    link: (name) => pool.get(name),
    clock: Date.now,
    deadlineMs: 1000,
  });
  const registry = new MetricsRegistry();
  registerRouterMetrics(registry, { core, admin, probes });
  const scrape = () => {
    const text = registry.render();
    assert.deepEqual(expositionProblems(text), [], text);
    return parseExposition(text);
  };

  const entries: WireEntry[] = Array.from({ length: 300 }, (_, i) => ({
    key: `k${i}`,
    value: `v${i}`,
    expires_at_ms: 0,
    ttl_ms: 0,
  }));
  await core.mset({ entries }, CONTEXT);
  pool.shards.get("h:2")!.down = true;
  await probes.round();
  let metrics = scrape();
  assert.equal(sampleValue(metrics, "kvstore_router_ring_epoch"), 1);
  assert.equal(sampleValue(metrics, "kvstore_router_shards"), 2);
  assert.equal(sampleValue(metrics, "kvstore_router_shard_up", { shard: "h:1" }), 1);
  assert.equal(sampleValue(metrics, "kvstore_router_shard_up", { shard: "h:2" }), 0);
  assert.equal(sampleValue(metrics, "kvstore_router_rebalancing"), 0);
  assert.equal(sampleValue(metrics, "kvstore_router_rebalancing_info"), undefined);
  assert.equal(sampleValue(metrics, "kvstore_router_rebalance_keys_to_move"), 0);
  assert.equal(sampleValue(metrics, "kvstore_router_rebalance_keys_moved_total"), 0);

  // The rebalancing waits while h:2 is down, so its state can be read mid-way.
  await admin.addShard(parseShardSpec("h:3", "t"), { force: false });
  metrics = scrape();
  assert.equal(sampleValue(metrics, "kvstore_router_ring_epoch"), 2);
  assert.equal(sampleValue(metrics, "kvstore_router_rebalancing"), 1);
  assert.equal(sampleValue(metrics, "kvstore_router_rebalancing_info", { kind: "add", shard: "h:3" }), 1);
  const waiting = () =>
    sampleValue(scrape(), "kvstore_router_rebalancing_info", { kind: "add", shard: "h:3", state: "waiting" }) === 1;
  for (let turns = 0; !waiting(); turns++) {
    assert.ok(turns < 10_000, "the rebalancing waits for the shard that is down");
    await new Promise((resolve) => setTimeout(resolve, 0));
  }

  pool.shards.get("h:2")!.down = false;
  for (let turns = 0; admin.membership.migration !== null; turns++) {
    assert.ok(turns < 100_000, "the rebalancing ends once the shard is back");
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  await probes.round();
  metrics = scrape();
  const moved = pool.shards.get("h:3")!.store.size;
  assert.ok(moved > 50, `${moved} keys moved onto the new shard`);
  assert.equal(sampleValue(metrics, "kvstore_router_ring_epoch"), 3);
  assert.equal(sampleValue(metrics, "kvstore_router_shards"), 3);
  assert.equal(sampleValue(metrics, "kvstore_router_shard_up", { shard: "h:2" }), 1);
  assert.equal(sampleValue(metrics, "kvstore_router_shard_up", { shard: "h:3" }), 1);
  assert.equal(sampleValue(metrics, "kvstore_router_rebalancing"), 0);
  assert.equal(sampleValue(metrics, "kvstore_router_rebalancing_info"), undefined);
  assert.equal(sampleValue(metrics, "kvstore_router_rebalance_keys_to_move"), 0);
  assert.equal(sampleValue(metrics, "kvstore_router_rebalance_keys_moved_total"), moved);
});
