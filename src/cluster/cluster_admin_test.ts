import assert from "node:assert/strict";
import { ROUTER_SHARD_INFO_DEADLINE_MS } from "../config/limits.ts";
import { KvError, loadingRefusalMessage } from "../errors.ts";
import { Logger, silentLogger } from "../logging/logger.ts";
import type { MigrationStatus, WireEntry } from "../transport/messages.ts";
import { datasetDigest } from "../persistence/digest.ts";
import { Store } from "../store/store.ts";
import { ClusterAdmin, combineDigests, type ShardPool } from "./cluster_admin.ts";
import { initialMembership, type Membership } from "./membership.ts";
import { MemoryShard, seededRandom } from "./memory_shard.ts";
import { RouterCore } from "./router_core.ts";
import type { ShardApi } from "./shard_api.ts";
import { parseShardList, parseShardSpec, type ShardSpec } from "./shard_spec.ts";
import { Topology } from "./topology.ts";

const CONTEXT = { deadlineMs: Infinity, readFrom: "master" as const };

class MemoryPool implements ShardPool {
  readonly shards = new Map<string, MemoryShard>();
  linked: string[] = [];
  get(name: string): ShardApi {
    const shard = this.shards.get(name);
    if (shard === undefined || !this.linked.includes(name)) throw new Error(`no link to ${name}`);
    return shard;
  }
  sync(specs: readonly ShardSpec[]): void {
    this.linked = specs.map((spec) => spec.name);
  }
}

/** An admin over in-memory shards h:1..h:3 (and h:4, h:5 not on the ring), recording
 * every membership it persists. */
function setup(
  options: {
    failPersist?: () => boolean;
    beforePersist?: (next: Membership) => Promise<void>;
    logger?: Logger;
  } = {},
) {
  const random = seededRandom(3);
  const pool = new MemoryPool();
  for (const name of ["h:1", "h:2", "h:3", "h:4", "h:5"]) {
    pool.shards.set(name, new MemoryShard(name, Date.now, random));
  }
  const membership = initialMembership(parseShardList("h:1,h:2,h:3", "t"), 64);
  const core = new RouterCore(new Topology(membership), (name) => pool.get(name), {
    limits: { keyBytesMax: 1024, valueBytesMax: 1024, ttlSecondsMax: 1_000_000 },
    clock: Date.now,
  });
  const persisted: Membership[] = [];
  const admin = new ClusterAdmin(membership, {
    core,
    pool,
    persist: async (next) => {
      await options.beforePersist?.(next);
      if (options.failPersist?.()) throw new Error("disk full");
      persisted.push(next);
    },
    logger: options.logger ?? silentLogger(),
    clock: Date.now,
    sleep: () => new Promise((resolve) => setTimeout(resolve, 0)),
    scanPageKeys: 50,
    batchKeys: 10,
    pauseMs: 0,
    retryMs: 1,
  });
  return { admin, core, pool, persisted };
}

async function load(core: RouterCore, count: number): Promise<void> {
  const entries: WireEntry[] = Array.from(
    { length: count },
    (_, i) => ({ key: `k${i}`, value: `v${i}`, expires_at_ms: 0, ttl_ms: 0 }),
  );
  await core.mset({ entries }, CONTEXT);
}

/** How long a test waits for a change to get somewhere, in ms, before it fails. */
const WAIT_MS_MAX = 10_000;

/** Resolves with every status a watcher sees until "done" (rejects after WAIT_MS_MAX). */
function watchUntilDone(admin: ClusterAdmin): Promise<MigrationStatus[]> {
  return new Promise((resolve, reject) => {
    const seen: MigrationStatus[] = [];
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`The change was not done within ${WAIT_MS_MAX} ms: ${JSON.stringify(seen.at(-1))}`));
    }, WAIT_MS_MAX);
    const stop = admin.watch((status) => {
      seen.push(status);
      if (status.state === "done") {
        clearTimeout(timer);
        stop();
        resolve(seen);
      }
    });
  });
}

/** Waits, a turn of the event loop at a time, until `condition` holds (at most WAIT_MS_MAX). */
async function eventually(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS_MAX;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${WAIT_MS_MAX} ms waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

Deno.test("adding a shard records the change before moving keys, and its end before routing by the new ring", async () => {
  const { admin, core, pool, persisted } = setup();
  await load(core, 300);
  const done = watchUntilDone(admin);
  await admin.addShard(parseShardSpec("h:4", "t"), { force: false });
  assert.equal(persisted.length, 1);
  assert.equal(persisted[0].migration?.kind, "add");
  assert.equal(core.topology.migrating, true, "the router routes by the migration as soon as it is recorded");
  assert.equal((await admin.status()).shards.find((shard) => shard.name === "h:4")?.state, "joining");

  const seen = await done;
  const last = seen.at(-1)!;
  assert.equal(last.state, "done");
  assert.ok(Number(last.finished_at_ms) >= Number(last.started_at_ms));
  assert.ok(Number(last.keys_moved) > 20 && Number(last.keys_moved) === pool.shards.get("h:4")!.keys().length);
  assert.equal(persisted.length, 2);
  assert.equal(persisted[1].migration, null);
  assert.deepEqual(persisted[1].shards.map((spec) => spec.name), ["h:1", "h:2", "h:3", "h:4"]);
  assert.equal(core.topology.migrating, false);
  assert.equal(admin.current(), null);
  assert.deepEqual(pool.linked, ["h:1", "h:2", "h:3", "h:4"]);
  const status = await admin.status();
  assert.ok(status.shards.every((shard) => shard.state === "serving" && shard.reachable));
  assert.ok(Math.abs(status.shards.reduce((sum, shard) => sum + shard.ring_share, 0) - 1) < 1e-9);
});

Deno.test("asking to add the shard being added watches the running change", async () => {
  const { admin, core, persisted } = setup();
  await load(core, 200);
  const done = watchUntilDone(admin);
  await admin.addShard(parseShardSpec("h:4", "t"), { force: false });
  await admin.addShard(parseShardSpec("h:4", "t"), { force: false });
  await assert.rejects(admin.addShard(parseShardSpec("h:5", "t"), { force: false }), /wait until it completes/);
  await done;
  assert.equal(persisted.length, 2, "one change: its start and its end");
  await assert.rejects(admin.addShard(parseShardSpec("h:4", "t"), { force: false }), /already on the ring/);
});

Deno.test("a shard that holds keys, is not a master or does not answer is not added", async () => {
  const { admin, pool, persisted } = setup();
  pool.shards.get("h:4")!.store.apply({ kind: "set", key: "stray", value: "x", expiresAtMs: null });
  await assert.rejects(admin.addShard(parseShardSpec("h:4", "t"), { force: false }), /holds 1 key; .*--force/);
  pool.shards.get("h:5")!.role = "replica";
  await assert.rejects(
    admin.addShard(parseShardSpec("h:5", "t"), { force: false }),
    /is a replica; .* must be a master/,
  );
  pool.shards.get("h:5")!.role = "master";
  pool.shards.get("h:5")!.down = true;
  await assert.rejects(admin.addShard(parseShardSpec("h:5", "t"), { force: false }), /Cannot add shard "h:5": .*down/);
  assert.deepEqual(persisted, [], "nothing was recorded");
  assert.deepEqual(pool.linked, ["h:1", "h:2", "h:3"], "links opened for the checks are closed again");
  const done = watchUntilDone(admin);
  await admin.addShard(parseShardSpec("h:4", "t"), { force: true });
  await done;
  assert.ok(pool.shards.get("h:4")!.keys().includes("stray"), "with --force the shard keeps what it held");
});

Deno.test("a shard already on the ring under another address is not added, even with --force", async () => {
  const { admin, core, pool, persisted } = setup();
  await load(core, 300);
  // "h:5" is h:1 spelled another way (localhost and 127.0.0.1): the copies of its moving
  // keys would find them present, and the deletions that follow would lose them.
  pool.shards.set("h:5", pool.shards.get("h:1")!);
  pool.shards.get("h:1")!.store.clear();
  for (const force of [false, true]) {
    await assert.rejects(
      admin.addShard(parseShardSpec("h:5", "t"), { force }),
      /Cannot add shard "h:5": it answers as the node already on the ring as shard "h:1"/,
    );
  }
  assert.deepEqual(persisted, [], "nothing was recorded");
  assert.deepEqual(pool.linked, ["h:1", "h:2", "h:3"]);

  // A ring that already names one node twice (an old state file) is not shrunk by a move.
  pool.shards.set("h:2", pool.shards.get("h:1")!);
  await assert.rejects(
    admin.removeShard("h:2", { forget: false }),
    /Cannot remove shard "h:2": it answers as the same node as shard "h:1"/,
  );
  assert.deepEqual(persisted, [], "nothing was recorded");
});

Deno.test("removing a shard empties it; forgetting one drops it at once", async () => {
  const { admin, core, pool, persisted } = setup();
  await load(core, 300);
  const held = pool.shards.get("h:2")!.keys().length;
  const done = watchUntilDone(admin);
  assert.equal(await admin.removeShard("h:2", { forget: false }), "moving");
  assert.equal((await admin.status()).shards.find((shard) => shard.name === "h:2")?.state, "leaving");
  const last = (await done).at(-1)!;
  assert.equal(Number(last.keys_moved), held);
  assert.deepEqual(pool.shards.get("h:2")!.keys(), []);
  assert.deepEqual(pool.linked, ["h:1", "h:3"]);

  assert.equal(await admin.removeShard("h:3", { forget: true }), "forgotten");
  assert.deepEqual(persisted.at(-1)!.shards.map((spec) => spec.name), ["h:1"]);
  assert.equal(core.topology.after.owner("anything"), "h:1");
  await assert.rejects(admin.removeShard("h:1", { forget: false }), /it is the last one/);
});

Deno.test("a change the state file cannot record is not made", async () => {
  let fail = true;
  const { admin, core } = setup({ failPersist: () => fail });
  await assert.rejects(admin.addShard(parseShardSpec("h:4", "t"), { force: false }), /disk full/);
  assert.equal(admin.membership.migration, null);
  assert.equal(core.topology.migrating, false);
  fail = false;
  const done = watchUntilDone(admin);
  await admin.addShard(parseShardSpec("h:4", "t"), { force: false });
  await done;
});

Deno.test("a stopped change is resumed by the next router from the recorded membership", async () => {
  const first = setup();
  await load(first.core, 400);
  let stopped = false;
  first.admin.watch((status) => {
    if (!stopped && Number(status.keys_moved) > 0) {
      stopped = true;
      void first.admin.stop();
    }
  });
  await first.admin.addShard(parseShardSpec("h:4", "t"), { force: false });
  await eventually(() => first.admin.current() === null, "the change stops");
  const recorded = first.persisted.at(-1)!;
  assert.equal(recorded.migration?.kind, "add", "the change is still recorded as under way");

  // The next router: the same shards, the recorded membership.
  const core = new RouterCore(new Topology(recorded), (name) => first.pool.get(name), {
    limits: { keyBytesMax: 1024, valueBytesMax: 1024, ttlSecondsMax: 1_000_000 },
    clock: Date.now,
  });
  const persisted: Membership[] = [];
  const admin = new ClusterAdmin(recorded, {
    core,
    pool: first.pool,
    persist: (next) => {
      persisted.push(next);
      return Promise.resolve();
    },
    logger: silentLogger(),
    clock: Date.now,
    sleep: () => new Promise((resolve) => setTimeout(resolve, 0)),
    scanPageKeys: 50,
    batchKeys: 10,
    pauseMs: 0,
    retryMs: 1,
  });
  const done = watchUntilDone(admin);
  admin.resume();
  await done;
  assert.equal(persisted.at(-1)!.migration, null);
  const ring = core.topology.after;
  for (let i = 0; i < 400; i++) {
    const key = `k${i}`;
    const holders = [...first.pool.shards.values()].filter((shard) => shard.keys().includes(key));
    assert.deepEqual(holders.map((shard) => shard.spec.name), [ring.owner(key)], key);
  }
});

Deno.test("forgetting a dead shard that is being added calls the change off and keeps the old ring", async () => {
  const { admin, core, pool, persisted } = setup();
  await load(core, 200);
  await admin.addShard(parseShardSpec("h:4", "t"), { force: false });
  pool.shards.get("h:4")!.down = true;
  await eventually(() => admin.current()?.state === "waiting", "the change waits for the dead shard");
  assert.equal(await admin.removeShard("h:4", { forget: true }), "forgotten");
  assert.equal(admin.current(), null);
  assert.equal(persisted.at(-1)!.migration, null);
  assert.deepEqual(persisted.at(-1)!.shards.map((spec) => spec.name), ["h:1", "h:2", "h:3"]);
  assert.equal(core.topology.migrating, false);
  assert.deepEqual(pool.linked, ["h:1", "h:2", "h:3"]);
  const read = await core.get({ key: "k1" }, CONTEXT);
  assert.equal(read.found || pool.shards.get("h:4")!.keys().includes("k1"), true, "keys not moved are still served");
});

Deno.test("forgetting a shard while its change is being recorded as complete acts on the completed ring", async () => {
  for (const kind of ["add", "remove"] as const) {
    // The completion's write to the state file is slow; --forget arrives meanwhile.
    let completionWritten!: () => void;
    const slow = new Promise<void>((resolve) => completionWritten = resolve);
    let completing!: () => void;
    const reached = new Promise<void>((resolve) => completing = resolve);
    const { admin, core, persisted } = setup({
      beforePersist: async (next) => {
        if (next.migration === null && next.shards.length !== 3) {
          completing();
          await slow;
        }
      },
    });
    await load(core, 100);
    if (kind === "add") await admin.addShard(parseShardSpec("h:4", "t"), { force: false });
    else await admin.removeShard("h:3", { forget: false });
    await reached;
    const forgotten = admin.removeShard(kind === "add" ? "h:4" : "h:3", { forget: true });
    await new Promise((resolve) => setTimeout(resolve, 5));
    completionWritten();
    assert.equal(await forgotten, "forgotten");
    const epochs = persisted.map((membership) => membership.epoch);
    assert.deepEqual(epochs, [...new Set(epochs)].sort((a, b) => a - b), `${kind}: every change has its own epoch`);
    assert.deepEqual(admin.membership.shards.map((spec) => spec.name), [
      "h:1",
      "h:2",
      ...(kind === "add" ? ["h:3"] : []),
    ]);
    assert.equal(admin.membership.migration, null);
    assert.equal(core.topology.epoch, admin.membership.epoch);
  }
});

Deno.test("the start-up check tells a shard that is loading its dataset from one that does not answer", async () => {
  const lines: string[] = [];
  const logger = new Logger({ level: "warn", format: "text", sink: (line) => lines.push(line) });
  const { admin, pool } = setup({ logger });
  pool.shards.get("h:1")!.beforeCall = () => {
    throw new KvError(
      "UNAVAILABLE",
      `router: Shard "h:1" at h:1 is loading its dataset, and serves its keys once loaded: ` +
        loadingRefusalMessage("Info", "loading its dataset from /data (2 s so far)"),
    );
  };
  pool.shards.get("h:2")!.down = true;
  await admin.checkShards();
  assert.equal(lines.length, 2, lines.join("\n"));
  assert.match(
    lines.find((line) => line.includes("shard=h:1"))!,
    /WARN {2}kvstore: A shard is loading its dataset; calls for its keys are refused until it has, and it is used once loaded/,
  );
  assert.match(lines.find((line) => line.includes("shard=h:2"))!, /A shard does not answer/);
});

Deno.test("a router creating a cluster warns about the shards that already hold keys, naming each", async () => {
  const lines: string[] = [];
  const logger = new Logger({ level: "warn", format: "text", sink: (line) => lines.push(line) });
  const { admin, pool } = setup({ logger });
  const entries = (count: number) =>
    Array.from({ length: count }, (_, i) => ({ key: `old${i}`, value: "v", expires_at_ms: 0, ttl_ms: 0 }));
  await pool.shards.get("h:1")!.call("MSet", { entries: entries(1) }, CONTEXT);
  await pool.shards.get("h:3")!.call("MSet", { entries: entries(12) }, CONTEXT);
  // A router restarted over its state file created nothing: its shards' keys are its own.
  await admin.checkShards();
  assert.deepEqual(lines, []);
  await admin.checkShards({ newCluster: true });
  assert.equal(lines.length, 1, lines.join("\n"));
  assert.match(
    lines[0],
    /WARN {2}kvstore: The new cluster's shards already hold keys \(h:1: 1 key, h:3: 12 keys\): the ring may give a key to another shard than the one that holds it, .*export each such shard's keys \(kvstore export FILE --endpoint SHARD\), start it again empty, and import the files through the router \(kvstore import FILE\).* shards=h:1,h:3$/,
  );
});

Deno.test("describing the cluster gives each shard until the caller's deadline, when that comes first", async () => {
  const { admin, pool } = setup();
  const infoDeadlines: number[] = [];
  const get = pool.get.bind(pool);
  pool.get = (name) => {
    const shard = get(name);
    return {
      spec: shard.spec,
      close: () => shard.close(),
      call: (rpc, request, context) => {
        if (rpc === "Info") infoDeadlines.push(context.deadlineMs);
        return shard.call(rpc, request, context);
      },
    };
  };
  const soonMs = Date.now() + 300;
  await admin.status(soonMs);
  assert.deepEqual(infoDeadlines, [soonMs, soonMs, soonMs], "a caller with 300 ms left is answered in them");

  infoDeadlines.length = 0;
  const beforeMs = Date.now();
  await admin.status(beforeMs + 60_000);
  await admin.status();
  const afterMs = Date.now();
  assert.equal(infoDeadlines.length, 6);
  for (const deadlineMs of infoDeadlines) {
    assert.ok(
      deadlineMs >= beforeMs + ROUTER_SHARD_INFO_DEADLINE_MS && deadlineMs <= afterMs + ROUTER_SHARD_INFO_DEADLINE_MS,
      "a caller with more time, or none given, waits ROUTER_SHARD_INFO_DEADLINE_MS at most",
    );
  }
});

Deno.test("shards' digests combine into the digest of one node holding all their keys", () => {
  const all = new Store();
  const shards = [new Store(), new Store(), new Store()];
  for (let i = 0; i < 300; i++) {
    const command = { kind: "set", key: `k${i}`, value: `v${i}`, expiresAtMs: i % 7 === 0 ? 9e12 : null } as const;
    all.apply(command);
    shards[i % 3].apply(command);
  }
  const asResponse = (store: Store) => {
    const { digest, keys } = datasetDigest(store, 0);
    return { digest, keys, seq: 0, replid: "" };
  };
  const combined = combineDigests(shards.map(asResponse));
  assert.deepEqual(combined, { ...asResponse(all) });
  assert.notEqual(combineDigests(shards.slice(1).map(asResponse)).digest, combined.digest);
});
