import assert from "node:assert/strict";
import { KvError } from "../errors.ts";
import { silentLogger } from "../logging/logger.ts";
import type { GetResponse, ScanResponse, WireEntry } from "../transport/messages.ts";
import { completeMigration, initialMembership, type Membership, startAdd, startRemove } from "./membership.ts";
import { MemoryShard, seededRandom } from "./memory_shard.ts";
import { type MigrationProgress, Migrator } from "./migrator.ts";
import { callInParts, RouterCore } from "./router_core.ts";
import type { CallContext } from "./shard_api.ts";
import { parseShardSpec } from "./shard_spec.ts";
import { Topology } from "./topology.ts";

const NOW_MS = 1_700_000_000_000;
const CONTEXT: CallContext = { deadlineMs: Infinity, readFrom: "master" };
const LIMITS = { keyBytesMax: 1024, valueBytesMax: 1024, ttlSecondsMax: 1_000_000 };
const VNODES = 64;

/** Shards in memory, a core routing over them, and helpers to change the ring. */
class Harness {
  readonly clock = { nowMs: NOW_MS };
  readonly random: () => number;
  readonly shards = new Map<string, MemoryShard>();
  membership: Membership;
  core: RouterCore;

  constructor(names: string[], seed: number, extra: string[] = []) {
    this.random = seededRandom(seed);
    for (const name of [...names, ...extra]) {
      this.shards.set(name, new MemoryShard(name, () => this.clock.nowMs, this.random));
    }
    this.membership = initialMembership(names.map((name) => parseShardSpec(name, "test")), VNODES);
    this.core = this.newCore();
  }

  newCore(): RouterCore {
    return new RouterCore(new Topology(this.membership), (name) => this.shard(name), {
      limits: LIMITS,
      clock: () => this.clock.nowMs,
    });
  }

  shard(name: string): MemoryShard {
    const shard = this.shards.get(name);
    if (shard === undefined) throw new Error(`no shard ${name}`);
    return shard;
  }

  change(membership: Membership): void {
    this.membership = membership;
    this.core.setTopology(new Topology(membership));
  }

  migrator(onProgress: (progress: MigrationProgress) => void = () => {}): Migrator {
    return new Migrator(this.core, (name) => this.shard(name), this.core.topology, {
      scanPageKeys: 37,
      batchKeys: 11,
      pauseMs: 0,
      retryMs: 1,
      clock: () => this.clock.nowMs,
      sleep: () => new Promise((resolve) => setTimeout(resolve, 0)),
      logger: silentLogger(),
      onProgress,
    });
  }

  /** Where each live key is, by shard. */
  holders(key: string): string[] {
    return [...this.shards.values()].filter((shard) => shard.store.get(key, this.clock.nowMs) !== undefined)
      .map((shard) => shard.spec.name);
  }
}

const NAMES = ["10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1"];
const NEW_SHARD = "10.0.0.4:1";

async function get(core: RouterCore, key: string): Promise<string | undefined> {
  const response: GetResponse = await core.get({ key }, CONTEXT);
  return response.found ? response.value : undefined;
}

/** How long a test lets a mover run before it aborts it, in ms: a mover that never
 * finishes is a bug, and fails the test rather than hang it. */
const MOVER_MS_MAX = 20_000;

/** Most pages a test scan reads before it fails: a cursor that never ends is a bug. */
const SCAN_PAGES_MAX = 10_000;

async function scanAll(core: RouterCore, limit: number): Promise<string[]> {
  const keys: string[] = [];
  let cursor = "";
  for (let pages = 0; pages < SCAN_PAGES_MAX; pages++) {
    const page: ScanResponse = await core.scan({ cursor, prefix: "", limit, include_values: false }, CONTEXT);
    keys.push(...page.entries.map((entry) => entry.key));
    cursor = page.cursor;
    if (cursor === "") return keys;
  }
  throw new Error(`The scan did not end within ${SCAN_PAGES_MAX} pages`);
}

function entry(key: string, value: string, expiresAtMs = 0): WireEntry {
  return { key, value, expires_at_ms: expiresAtMs, ttl_ms: 0 };
}

Deno.test("with a stable ring every key lands on its owner and batches are split and merged in order", async () => {
  const h = new Harness(NAMES, 1);
  const keys = Array.from({ length: 200 }, (_, i) => `k${i}`);
  const written = await h.core.mset({ entries: keys.map((key) => entry(key, `v-${key}`)) }, CONTEXT);
  assert.equal(written.count, 200);
  const ring = h.core.topology.after;
  for (const key of keys) assert.deepEqual(h.holders(key), [ring.owner(key)]);
  for (const name of NAMES) assert.ok(h.shard(name).keys().length > 30, "each shard holds a fair part");

  const read = await h.core.mget({ keys: ["k5", "missing", "k0", "k199"] }, CONTEXT);
  assert.deepEqual(read.values.map((value) => value.value), ["v-k5", "", "v-k0", "v-k199"]);
  assert.deepEqual((await scanAll(h.core, 7)).sort(), [...keys].sort(), "a scan returns every key once");

  assert.deepEqual(await h.core.delete({ key: "k1" }, CONTEXT), { success: true, found: true });
  assert.deepEqual(await h.core.expire({ key: "k2", seconds: 50 }, CONTEXT), { success: true });
  assert.deepEqual(await h.core.ttl({ key: "k2" }, CONTEXT), { seconds: 50 });
  assert.deepEqual(await h.core.contains({ key: "k1" }, CONTEXT), { exists: false });
});

Deno.test("an MSet that one shard fails says what the others took, and that its outcome is unknown", async () => {
  const h = new Harness(NAMES, 3);
  const ring = h.core.topology.after;
  const keys = Array.from({ length: 30 }, (_, i) => `k${i}`);
  const down = NAMES[1];
  h.shard(down).down = true;
  const onDown = keys.filter((key) => ring.owner(key) === down);
  const error = await h.core.mset({ entries: keys.map((key) => entry(key, "v")) }, CONTEXT).then(
    () => assert.fail("the MSet succeeded"),
    (error) => error,
  );
  assert.ok(error instanceof KvError);
  assert.equal(error.code, "UNAVAILABLE");
  assert.equal(error.outcomeUnknown, true, "the other shards' parts were applied");
  assert.match(
    error.message,
    new RegExp(
      `^router: Cannot reach shard "${down}": down; 2 other shards took theirs, ${keys.length - onDown.length} ` +
        `of the ${keys.length} entries \\(an MSet across shards is not atomic: read them back\\)$`,
    ),
  );
  for (const key of keys) assert.deepEqual(h.holders(key), onDown.includes(key) ? [] : [ring.owner(key)], key);

  // On the down shard alone, nothing was applied: the error is the shard's, and says no more.
  const alone = await h.core.mset({ entries: onDown.map((key) => entry(key, "v")) }, CONTEXT).then(
    () => assert.fail("the MSet succeeded"),
    (error) => error,
  );
  assert.ok(alone instanceof KvError);
  assert.equal(alone.outcomeUnknown, false);
  assert.equal(alone.message, `router: Cannot reach shard "${down}": down`);
});

Deno.test("a batch that breaks a limit is refused whole before any shard is written", async () => {
  const h = new Harness(NAMES, 2);
  await assert.rejects(
    h.core.mset({ entries: [entry("fine", "v"), entry("big", "x".repeat(2000))] }, CONTEXT),
    /RESOURCE_EXHAUSTED|over the limit of 1024/,
  );
  await assert.rejects(h.core.mset({ entries: [entry("", "v")] }, CONTEXT), /the key is empty/);
  await assert.rejects(
    h.core.mset({ entries: [{ key: "k", value: "v", expires_at_ms: NOW_MS + 1, ttl_ms: 5 }] }, CONTEXT),
    /not both/,
  );
  await assert.rejects(h.core.mget({ keys: Array.from({ length: 10_001 }, (_, i) => `k${i}`) }, CONTEXT), /split/);
  for (const name of NAMES) assert.equal(h.shard(name).calls.get("MSet") ?? 0, 0);
});

Deno.test("a scan cursor from before a change that could make it miss keys is refused", async () => {
  const h = new Harness(NAMES, 3, [NEW_SHARD]);
  await h.core.mset({ entries: Array.from({ length: 50 }, (_, i) => entry(`k${i}`, "v")) }, CONTEXT);
  const scan = (cursor: string) => h.core.scan({ cursor, prefix: "", limit: 5, include_values: false }, CONTEXT);
  const refused = /earlier shape of the cluster .* start again/;
  const beforeRemoval = (await scan("")).cursor;
  h.change(startRemove(h.membership, NAMES[2], NOW_MS));
  // The leaving shard's keys move onto shards the scan may have finished.
  await assert.rejects(scan(beforeRemoval), refused);
  const beforeRestart = (await scan("")).cursor;
  h.membership = completeMigration(h.membership);
  h.core = h.newCore();
  await assert.rejects(scan(beforeRestart), refused, "a router that restarted knows no earlier ring");
  await assert.rejects(scan("c1.99.0."), refused, "a cursor from a ring the router never had");
});

/** Scans every key in pages of 7, running `between` after the first `pagesBefore` pages. */
async function scanAround(h: Harness, pagesBefore: number, between: () => Promise<void>): Promise<string[]> {
  const keys: string[] = [];
  let cursor = "";
  for (let pages = 0; pages < SCAN_PAGES_MAX; pages++) {
    if (pages === pagesBefore) await between();
    const page: ScanResponse = await h.core.scan({ cursor, prefix: "", limit: 7, include_values: false }, CONTEXT);
    keys.push(...page.entries.map((entry) => entry.key));
    cursor = page.cursor;
    if (cursor === "") return keys;
  }
  throw new Error(`The scan did not end within ${SCAN_PAGES_MAX} pages`);
}

Deno.test("a scan goes on across the start and end of an add and the end of a removal, missing no key", async () => {
  for (const pagesBefore of [0, 12, 40]) {
    const h = new Harness(NAMES, 40 + pagesBefore, [NEW_SHARD]);
    const keys = Array.from({ length: 300 }, (_, i) => `k${i}`);
    await h.core.mset({ entries: keys.map((key) => entry(key, "v")) }, CONTEXT);
    const added = await scanAround(h, pagesBefore, async () => {
      h.change(startAdd(h.membership, parseShardSpec(NEW_SHARD, "t"), NOW_MS));
      await h.migrator().run(AbortSignal.timeout(MOVER_MS_MAX));
      h.change(completeMigration(h.membership));
    });
    assert.deepEqual([...new Set(added)].sort(), [...keys].sort(), `add, after ${pagesBefore} pages`);

    h.change(startRemove(h.membership, NAMES[1], NOW_MS));
    const removed = await scanAround(h, pagesBefore, async () => {
      await h.migrator().run(AbortSignal.timeout(MOVER_MS_MAX));
      h.change(completeMigration(h.membership));
    });
    assert.deepEqual([...new Set(removed)].sort(), [...keys].sort(), `remove, after ${pagesBefore} pages`);
  }
});

Deno.test("during a migration, a key not yet moved is read from its old shard, and a write moves it first", async () => {
  const h = new Harness(NAMES, 4, [NEW_SHARD]);
  await h.core.mset(
    { entries: Array.from({ length: 300 }, (_, i) => entry(`k${i}`, `v${i}`, NOW_MS + 60_000)) },
    CONTEXT,
  );
  h.change(startAdd(h.membership, parseShardSpec(NEW_SHARD, "test"), NOW_MS));
  const moving = Array.from({ length: 300 }, (_, i) => `k${i}`).filter((key) => h.core.topology.moves(key));
  assert.ok(moving.length > 20, `${moving.length} keys move`);
  const [read, written, deleted, expired] = moving;

  assert.equal(await get(h.core, read), `v${read.slice(1)}`);
  assert.deepEqual(h.holders(read), [h.core.topology.before.owner(read)], "a read moves nothing");

  await h.core.set({ key: written, value: "new" }, CONTEXT);
  assert.deepEqual(h.holders(written), [NEW_SHARD]);
  assert.equal(await get(h.core, written), "new");

  assert.deepEqual(await h.core.delete({ key: deleted }, CONTEXT), { success: true, found: true });
  assert.deepEqual(h.holders(deleted), []);

  assert.deepEqual(await h.core.ttl({ key: expired }, CONTEXT), { seconds: 60 }, "TTL reads the old shard");
  assert.deepEqual(await h.core.expire({ key: expired, seconds: 5 }, CONTEXT), { success: true });
  assert.deepEqual(h.holders(expired), [NEW_SHARD]);
  assert.deepEqual(await h.core.ttl({ key: expired }, CONTEXT), { seconds: 5 });

  const batch = await h.core.mget({ keys: [read, written, deleted, "k-missing"], include_deadlines: true }, CONTEXT);
  assert.deepEqual(batch.values.map((value) => value.found), [true, true, false, false]);
  assert.equal(Number(batch.expires_at_ms![0]), NOW_MS + 60_000, "deadlines come from the shard holding the key");

  assert.equal(h.core.keysMoved, 3, "each write moved its key first: the reads moved nothing");

  await h.migrator().run(AbortSignal.timeout(MOVER_MS_MAX));
  assert.equal(await get(h.core, deleted), undefined, "the mover does not bring a deleted key back");
  for (const key of moving) {
    assert.ok(h.holders(key).every((name) => name === NEW_SHARD), `${key} is only on the new shard`);
  }
  assert.equal(h.core.keysMoved, moving.length, "every moving key was moved once, by a write or by the mover");
});

/**
 * Many clients work on their own keys while the mover runs; each checks every read
 * against what it last wrote, and at the end every key must be where the new ring says,
 * alone, with the value and deadline of its last acknowledged write.
 */
async function migrateUnderLoad(seed: number, kind: "add" | "remove"): Promise<void> {
  const h = new Harness(NAMES, seed, [NEW_SHARD]);
  const random = seededRandom(seed * 7919);
  const model = new Map<string, { value: string; expiresAtMs: number | null } | null>();
  const keys = Array.from({ length: 400 }, (_, i) => `key:${seed}:${i}`);
  if (kind === "remove") h.change(completeMigration(startAdd(h.membership, parseShardSpec(NEW_SHARD, "t"), NOW_MS)));
  await h.core.mset({ entries: keys.map((key) => entry(key, `initial-${key}`)) }, CONTEXT);
  for (const key of keys) model.set(key, { value: `initial-${key}`, expiresAtMs: null });

  h.change(
    kind === "add"
      ? startAdd(h.membership, parseShardSpec(NEW_SHARD, "t"), NOW_MS)
      : startRemove(h.membership, NEW_SHARD, NOW_MS),
  );
  const progress: MigrationProgress[] = [];
  const mover = h.migrator((p) => progress.push({ ...p })).run(AbortSignal.timeout(MOVER_MS_MAX));

  const worker = async (own: string[]) => {
    for (let op = 0; op < 30; op++) {
      const key = own[Math.floor(random() * own.length)];
      const expected = model.get(key)!;
      const choice = random();
      if (choice < 0.25) {
        const value = `w${op}-${random().toString(36).slice(2, 7)}`;
        await h.core.set({ key, value }, CONTEXT);
        model.set(key, { value, expiresAtMs: null });
      } else if (choice < 0.35) {
        const response = await h.core.delete({ key }, CONTEXT);
        assert.equal(response.found, expected !== null, `delete of ${key} found it`);
        model.set(key, null);
      } else if (choice < 0.45) {
        const seconds = 100 + Math.floor(random() * 1000);
        const response = await h.core.expire({ key, seconds }, CONTEXT);
        assert.equal(response.success, expected !== null);
        if (expected !== null) model.set(key, { value: expected.value, expiresAtMs: NOW_MS + seconds * 1000 });
      } else if (choice < 0.55) {
        const pair = [key, own[Math.floor(random() * own.length)]].filter((k, i, all) => all.indexOf(k) === i);
        const expiresAtMs = NOW_MS + 5000;
        await h.core.mset({ entries: pair.map((k) => entry(k, `m${op}`, expiresAtMs)) }, CONTEXT);
        for (const k of pair) model.set(k, { value: `m${op}`, expiresAtMs });
      } else if (choice < 0.65) {
        const ttl = (await h.core.ttl({ key }, CONTEXT)).seconds;
        const expectedTtl = expected === null
          ? -2
          : expected.expiresAtMs === null
          ? -1
          : Math.floor((expected.expiresAtMs - NOW_MS + 500) / 1000);
        assert.equal(ttl, expectedTtl, `ttl of ${key}`);
      } else {
        assert.equal(await get(h.core, key), expected?.value, `read of ${key}`);
      }
    }
  };
  const workers = Array.from({ length: 20 }, (_, w) => worker(keys.filter((_, i) => i % 20 === w)));
  await Promise.all([mover, ...workers]);

  h.change(completeMigration(h.membership));
  const ring = h.core.topology.after;
  for (const key of keys) {
    const expected = model.get(key)!;
    if (expected === null) {
      assert.deepEqual(h.holders(key), [], `${key} was deleted and stays deleted`);
      continue;
    }
    const owner = ring.owner(key);
    assert.deepEqual(h.holders(key), [owner], `${key} is on its owner only`);
    assert.deepEqual(h.shard(owner).store.get(key, NOW_MS), expected, `${key} has its last written value`);
  }
  const last = progress.at(-1)!;
  assert.equal(last.state, "moving");
  assert.ok(last.keysMoved > 0 && last.keysScanned >= last.keysMoved);
  assert.ok(Math.abs(last.keysToMove - last.keysMoved) < last.keysToMove * 0.6 + 20, JSON.stringify(last));
  assert.equal(h.core.lockedKeys, 0, "every lock was released");
}

for (const seed of [1, 2, 3]) {
  Deno.test(`adding a shard under concurrent writes loses nothing and leaves each key on its owner only (seed ${seed})`, () =>
    migrateUnderLoad(seed, "add"));
  Deno.test(`removing a shard under concurrent writes loses nothing and leaves each key on its owner only (seed ${seed})`, () =>
    migrateUnderLoad(seed + 10, "remove"));
}

/**
 * As migrateUnderLoad, with time passing: keys get deadlines a few seconds out, the
 * clock moves on while calls and the mover run, so keys expire on their way between
 * shards. At the end, every key whose last acknowledged deadline has not passed is on
 * its owner alone with that value and deadline; every other key is on no shard.
 */
async function migrateWithExpiries(seed: number, kind: "add" | "remove"): Promise<void> {
  const h = new Harness(NAMES, seed, [NEW_SHARD]);
  const random = seededRandom(seed * 104729);
  const keys = Array.from({ length: 300 }, (_, i) => `ttl:${seed}:${i}`);
  // A deadline set by Expire is the shard's time plus the seconds, and other calls move
  // the clock on meanwhile: it is known to lie within [expiresAtMs, latestMs].
  type State = { value: string; expiresAtMs: number | null; latestMs: number | null } | null;
  const model = new Map<string, State>();
  if (kind === "remove") h.change(completeMigration(startAdd(h.membership, parseShardSpec(NEW_SHARD, "t"), NOW_MS)));
  const deadline = () => h.clock.nowMs + 200 + Math.floor(random() * 3000);
  const initial = keys.map((key, i) => entry(key, `initial-${i}`, i % 2 === 0 ? deadline() : 0));
  await h.core.mset({ entries: initial }, CONTEXT);
  for (const { key, value, expires_at_ms } of initial) {
    const expiresAtMs = Number(expires_at_ms) || null;
    model.set(key, { value, expiresAtMs, latestMs: expiresAtMs });
  }
  /** Whether a key in `state` is live at `atMs`: true, false, or null (cannot tell). */
  const live = (state: State | undefined, atMs: number): boolean | null => {
    if (state === null || state === undefined) return false;
    if (state.expiresAtMs === null || state.expiresAtMs > atMs) return true;
    return state.latestMs! <= atMs ? false : null;
  };

  h.change(
    kind === "add"
      ? startAdd(h.membership, parseShardSpec(NEW_SHARD, "t"), NOW_MS)
      : startRemove(h.membership, NEW_SHARD, NOW_MS),
  );
  const mover = h.migrator().run(AbortSignal.timeout(MOVER_MS_MAX));
  const worker = async (own: string[]) => {
    for (let op = 0; op < 40; op++) {
      h.clock.nowMs += Math.floor(random() * 40);
      const key = own[Math.floor(random() * own.length)];
      const before = model.get(key)!;
      const startedMs = h.clock.nowMs;
      const choice = random();
      if (choice < 0.3) {
        const value = `s${op}`;
        const expiresAtMs = random() < 0.5 ? deadline() : 0;
        await h.core.mset({ entries: [entry(key, value, expiresAtMs)] }, CONTEXT);
        model.set(key, { value, expiresAtMs: expiresAtMs || null, latestMs: expiresAtMs || null });
      } else if (choice < 0.45) {
        await h.core.delete({ key }, CONTEXT);
        model.set(key, null);
      } else if (choice < 0.6) {
        const seconds = 1 + Math.floor(random() * 3);
        const { success } = await h.core.expire({ key, seconds }, CONTEXT);
        const endedMs = h.clock.nowMs;
        const [liveAtStart, liveAtEnd] = [live(before, startedMs), live(before, endedMs)];
        if (liveAtStart === false) assert.equal(success, false, `expire of ${key}, gone before the call`);
        if (liveAtEnd === true) assert.equal(success, true, `expire of ${key}, live throughout the call`);
        if (success) {
          model.set(key, {
            value: before!.value,
            expiresAtMs: startedMs + seconds * 1000,
            latestMs: endedMs + seconds * 1000,
          });
        }
      } else {
        const value = await get(h.core, key);
        const endedMs = h.clock.nowMs;
        const [liveAtStart, liveAtEnd] = [live(before, startedMs), live(before, endedMs)];
        // A key whose deadline fell within the call may be read either way.
        if (liveAtStart !== null && liveAtStart === liveAtEnd) {
          assert.equal(value, liveAtEnd ? before!.value : undefined, `read of ${key}`);
        }
      }
    }
  };
  await Promise.all([mover, ...Array.from({ length: 15 }, (_, w) => worker(keys.filter((_, i) => i % 15 === w)))]);
  h.change(completeMigration(h.membership));
  const ring = h.core.topology.after;
  const endMs = h.clock.nowMs;
  let expired = 0;
  let checked = 0;
  for (const key of keys) {
    const state = model.get(key)!;
    const holders = h.holders(key);
    assert.ok(
      holders.every((name) => name === ring.owner(key)),
      `${key} is on ${holders}, owned by ${ring.owner(key)}`,
    );
    const expected = live(state, endMs);
    if (expected === null) continue;
    checked++;
    if (!expected) {
      assert.deepEqual(holders, [], `${key} expired or was deleted, and stays gone`);
      if (state !== null) expired++;
      continue;
    }
    assert.deepEqual(holders, [ring.owner(key)], `${key} is on its owner`);
    const found = h.shard(ring.owner(key)).store.get(key, endMs)!;
    assert.equal(found.value, state!.value, `${key} has its last value`);
    if (state!.expiresAtMs === null) assert.equal(found.expiresAtMs, null, `${key} has no deadline`);
    else {assert.ok(
        found.expiresAtMs! >= state!.expiresAtMs && found.expiresAtMs! <= state!.latestMs!,
        `${key} deadline`,
      );}
  }
  assert.ok(checked > 250, `${checked} keys checked`);
  assert.ok(expired > 10, `${expired} keys expired while the cluster changed`);
  assert.equal(h.core.lockedKeys, 0);
}

for (const seed of [21, 22]) {
  Deno.test(`adding a shard while keys expire keeps each live key on its owner, with its deadline (seed ${seed})`, () =>
    migrateWithExpiries(seed, "add"));
  Deno.test(`removing a shard while keys expire keeps each live key on its owner, with its deadline (seed ${seed})`, () =>
    migrateWithExpiries(seed + 10, "remove"));
}

Deno.test("a mover stopped half-way (a router crash) is finished by a new one from scratch", async () => {
  const h = new Harness(NAMES, 5, [NEW_SHARD]);
  const keys = Array.from({ length: 500 }, (_, i) => `k${i}`);
  await h.core.mset({ entries: keys.map((key) => entry(key, `v-${key}`, NOW_MS + 90_000)) }, CONTEXT);
  h.change(startAdd(h.membership, parseShardSpec(NEW_SHARD, "t"), NOW_MS));
  const moving = keys.filter((key) => h.core.topology.moves(key));

  // The copy to the new shard succeeds but the deletion on the old one fails once: the
  // key is on both shards with the same value, as after a crash between the two steps.
  let failedDeletes = 0;
  for (const name of NAMES) {
    h.shard(name).beforeCall = (rpc, request) => {
      const entries = (request as { entries?: WireEntry[] }).entries;
      if (rpc === "MSet" && entries?.[0]?.expires_at_ms === 1 && failedDeletes++ === 0) throw new Error("lost");
    };
  }
  const stop = new AbortController();
  const first = h.migrator((progress) => {
    if (progress.keysMoved > 15) stop.abort(new Error("router killed"));
  });
  await assert.rejects(first.run(stop.signal), /router killed/);
  assert.equal(failedDeletes > 0, true);
  for (const key of moving) assert.equal(await get(h.core, key), `v-${key}`, `${key} reads its value mid-way`);

  h.core = h.newCore();
  await h.migrator().run(AbortSignal.timeout(MOVER_MS_MAX));
  h.change(completeMigration(h.membership));
  for (const key of keys) {
    const owner = h.core.topology.after.owner(key);
    assert.deepEqual(h.holders(key), [owner]);
    assert.deepEqual(h.shard(owner).store.get(key, NOW_MS), { value: `v-${key}`, expiresAtMs: NOW_MS + 90_000 });
  }
});

/**
 * Shards that fsync only when asked (as under --appendfsync no or everysec) lose power at
 * random moments of a move; a key the cluster held before the move must survive every
 * such cut, on its owner alone: settle's copy is durable on the new shard before the old
 * one deletes the key, and that deletion is durable before the mover goes on.
 */
async function moveThroughPowerCuts(seed: number, kind: "add" | "remove"): Promise<void> {
  const h = new Harness(NAMES, seed, [NEW_SHARD]);
  if (kind === "remove") h.change(completeMigration(startAdd(h.membership, parseShardSpec(NEW_SHARD, "t"), NOW_MS)));
  const keys = Array.from({ length: 250 }, (_, i) => `k${i}`);
  await h.core.mset({ entries: keys.map((key) => entry(key, `v-${key}`)) }, CONTEXT);
  for (const shard of h.shards.values()) shard.syncAll();
  h.change(
    kind === "add"
      ? startAdd(h.membership, parseShardSpec(NEW_SHARD, "t"), NOW_MS)
      : startRemove(h.membership, NEW_SHARD, NOW_MS),
  );
  const random = seededRandom(seed * 7919);
  const names = [...h.shards.keys()];
  let cuts = 0;
  for (const shard of h.shards.values()) {
    shard.beforeCall = () => {
      if (random() >= 0.05) return;
      h.shard(names[Math.floor(random() * names.length)]).powerCut();
      cuts++;
    };
  }
  await h.migrator().run(AbortSignal.timeout(MOVER_MS_MAX));
  assert.ok(cuts >= 2, `${cuts} power cuts happened`);
  h.change(completeMigration(h.membership));
  for (const key of keys) {
    const owner = h.core.topology.after.owner(key);
    assert.deepEqual(h.holders(key), [owner], `${key} is on its owner alone after ${cuts} power cuts`);
    assert.equal(await get(h.core, key), `v-${key}`);
  }
  assert.ok(h.shard(kind === "add" ? NEW_SHARD : NAMES[0]).fsyncs > 0, "the copies asked for an fsync");
}

for (const seed of [31, 32]) {
  Deno.test(`adding a shard through power cuts of shards that fsync only when asked loses no key (seed ${seed})`, () =>
    moveThroughPowerCuts(seed, "add"));
  Deno.test(`removing a shard through power cuts of shards that fsync only when asked loses no key (seed ${seed})`, () =>
    moveThroughPowerCuts(seed + 10, "remove"));
}

Deno.test("an unreachable shard makes the mover wait and retry, then finish", async () => {
  const h = new Harness(NAMES, 6, [NEW_SHARD]);
  await h.core.mset({ entries: Array.from({ length: 100 }, (_, i) => entry(`k${i}`, "v")) }, CONTEXT);
  h.change(startAdd(h.membership, parseShardSpec(NEW_SHARD, "t"), NOW_MS));
  h.shard(NEW_SHARD).down = true;
  const states: string[] = [];
  const mover = h.migrator((progress) => {
    states.push(progress.state);
    if (progress.state === "waiting" && states.filter((state) => state === "waiting").length === 3) {
      assert.match(progress.error, /Cannot move keys from shard .*down/);
      h.shard(NEW_SHARD).down = false;
    }
  });
  await mover.run(AbortSignal.timeout(MOVER_MS_MAX));
  assert.ok(states.includes("waiting"));
  assert.equal(states.at(-1), "moving");
  assert.ok(h.shard(NEW_SHARD).keys().length > 0);
});

Deno.test("a scan during a migration returns every key that exists throughout at least once", async () => {
  for (const kind of ["add", "remove"] as const) {
    const h = new Harness(NAMES, 7, [NEW_SHARD]);
    if (kind === "remove") h.change(completeMigration(startAdd(h.membership, parseShardSpec(NEW_SHARD, "t"), NOW_MS)));
    const keys = Array.from({ length: 600 }, (_, i) => `k${i}`);
    await h.core.mset({ entries: keys.map((key) => entry(key, "v")) }, CONTEXT);
    h.change(
      kind === "add"
        ? startAdd(h.membership, parseShardSpec(NEW_SHARD, "t"), NOW_MS)
        : startRemove(h.membership, NEW_SHARD, NOW_MS),
    );
    const [scanned] = await Promise.all([scanAll(h.core, 13), h.migrator().run(AbortSignal.timeout(MOVER_MS_MAX))]);
    assert.deepEqual([...new Set(scanned)].sort(), [...keys].sort(), kind);
  }
});

Deno.test("drained() waits for calls that started under an earlier topology", async () => {
  const h = new Harness(NAMES, 8, [NEW_SHARD]);
  let releaseCall!: () => void;
  const blocked = new Promise<void>((resolve) => releaseCall = resolve);
  const owner = h.core.topology.after.owner("k");
  const shard = h.shard(owner);
  const original = shard.call.bind(shard);
  shard.call = async <R>(rpc: string, request: object, context: CallContext): Promise<R> => {
    await blocked;
    return await original<R>(rpc, request, context);
  };
  const call = h.core.set({ key: "k", value: "v" }, CONTEXT);
  await new Promise((resolve) => setTimeout(resolve, 0));
  h.change(startAdd(h.membership, parseShardSpec(NEW_SHARD, "t"), NOW_MS));
  let drained = false;
  const waiting = h.core.drained().then(() => drained = true);
  await new Promise((resolve) => setTimeout(resolve, 5));
  assert.equal(drained, false, "a call from the old topology is still running");
  releaseCall();
  await call;
  await waiting;
  assert.equal(drained, true);
});

Deno.test("a write that started before a migration is not lost to a call that moves its key", async () => {
  const h = new Harness(NAMES, 9, [NEW_SHARD]);
  const keys = Array.from({ length: 100 }, (_, i) => `k${i}`);
  await h.core.mset({ entries: keys.map((key) => entry(key, "old")) }, CONTEXT);
  const key = keys.find((key) => h.core.topology.after.withShard(NEW_SHARD).owner(key) === NEW_SHARD)!;
  // The Set reaches the key's shard under the stable ring and is held there, unapplied,
  // while the migration begins: a call in flight on the network.
  const from = h.shard(h.core.topology.after.owner(key));
  let releaseSet!: () => void;
  const held = new Promise<void>((resolve) => releaseSet = resolve);
  const original = from.call.bind(from);
  from.call = async <R>(rpc: string, request: object, context: CallContext): Promise<R> => {
    if (rpc === "Set") await held;
    return await original<R>(rpc, request, context);
  };
  const write = h.core.set({ key, value: "new" }, CONTEXT);
  await new Promise((resolve) => setTimeout(resolve, 0));
  h.change(startAdd(h.membership, parseShardSpec(NEW_SHARD, "t"), NOW_MS));
  assert.ok(h.core.topology.moves(key));
  // A call under the new topology moves the key while the old Set is still on its way.
  const expire = h.core.expire({ key, seconds: 100 }, CONTEXT);
  for (let turn = 0; turn < 20; turn++) await new Promise((resolve) => setTimeout(resolve, 0));
  releaseSet();
  await Promise.all([write, expire]);

  await h.migrator().run(AbortSignal.timeout(MOVER_MS_MAX));
  h.change(completeMigration(h.membership));
  assert.deepEqual(h.holders(key), [NEW_SHARD]);
  assert.equal(await get(h.core, key), "new", "the acknowledged Set is not lost");
});

Deno.test("a source shard that forgets the mover's scan cursor (a restart) is scanned again from the start", async () => {
  const h = new Harness(NAMES, 10, [NEW_SHARD]);
  const keys = Array.from({ length: 600 }, (_, i) => `k${i}`);
  await h.core.mset({ entries: keys.map((key) => entry(key, `v-${key}`)) }, CONTEXT);
  h.change(startAdd(h.membership, parseShardSpec(NEW_SHARD, "t"), NOW_MS));
  let restarts = 0;
  for (const name of NAMES) {
    const shard = h.shard(name);
    shard.beforeCall = (rpc, request) => {
      if (rpc === "Scan" && (request as { cursor: string }).cursor !== "" && restarts < 2) {
        restarts++;
        shard.forgetCursors();
      }
    };
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const tooLong = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error("the mover never finished")), 10_000);
  });
  try {
    await Promise.race([h.migrator().run(AbortSignal.timeout(MOVER_MS_MAX)), tooLong]);
  } finally {
    clearTimeout(timer);
  }
  assert.equal(restarts, 2);
  h.change(completeMigration(h.membership));
  for (const key of keys) assert.deepEqual(h.holders(key), [h.core.topology.after.owner(key)], key);
});

Deno.test("keys whose values together pass the shards' message limit still move, in several calls", async () => {
  const h = new Harness(NAMES, 11, [NEW_SHARD]);
  // Each value is nearly the largest allowed; a step of the mover (11 keys) holds about
  // ten of them, more than one message may carry.
  for (const shard of h.shards.values()) shard.messageBytesMax = 4000;
  const big = (i: number) => `${i}:`.padEnd(900, "x");
  const keys = Array.from({ length: 300 }, (_, i) => `k${i}`);
  for (let i = 0; i < keys.length; i += 2) {
    await h.core.mset(
      { entries: keys.slice(i, i + 2).map((key, j) => entry(key, big(i + j), NOW_MS + 60_000)) },
      CONTEXT,
    );
  }
  h.change(startAdd(h.membership, parseShardSpec(NEW_SHARD, "t"), NOW_MS));
  const moving = keys.filter((key) => h.core.topology.moves(key));
  assert.ok(moving.length > 30, `${moving.length} keys move`);

  const states: string[] = [];
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(new Error(`the mover never finished: ${states.at(-1)}`)), 10_000);
  try {
    await h.migrator((progress) => states.push(`${progress.state} ${progress.error}`)).run(stop.signal);
  } finally {
    clearTimeout(timer);
  }
  assert.deepEqual(states.filter((state) => state.startsWith("waiting")), [], "no step was refused for its size");
  h.change(completeMigration(h.membership));
  for (const [i, key] of keys.entries()) {
    const owner = h.core.topology.after.owner(key);
    assert.deepEqual(h.holders(key), [owner], key);
    assert.deepEqual(h.shard(owner).store.get(key, NOW_MS), { value: big(i), expiresAtMs: NOW_MS + 60_000 });
  }
  // Once a read is refused for its size, the next ones are smaller from the start.
  const reads = NAMES.reduce((sum, name) => sum + (h.shard(name).calls.get("MGet") ?? 0), 0);
  assert.ok(reads < moving.length, `${reads} reads to move ${moving.length} keys`);

  // A scan with values pages by bytes too: every key once, no page refused as too large.
  const scanned: string[] = [];
  let cursor = "";
  for (let pages = 0; pages === 0 || cursor !== ""; pages++) {
    assert.ok(pages < SCAN_PAGES_MAX, "the scan ends");
    const page: ScanResponse = await h.core.scan({ cursor, prefix: "", limit: 100, include_values: true }, CONTEXT);
    assert.ok(page.entries.length <= 4, `a page of ${page.entries.length} values of 900 bytes`);
    scanned.push(...page.entries.map((entry) => entry.key));
    cursor = page.cursor;
  }
  assert.deepEqual(scanned.sort(), [...keys].sort());
});

Deno.test("callInParts cuts by bytes, sends an oversized item alone, and halves a part refused as too large", async () => {
  const parts: number[][] = [];
  await callInParts([3, 3, 3, 9, 1, 1], { itemsMax: Infinity, bytesMax: 6 }, (n) => n, (part) => {
    parts.push(part);
    return Promise.resolve();
  });
  assert.deepEqual(parts, [[3, 3], [3], [9], [1, 1]]);

  // The "shard" takes at most 5 in one call; the bound learned is kept for later parts.
  const taken: number[][] = [];
  const bounds = { itemsMax: Infinity, bytesMax: 100 };
  await callInParts(Array.from({ length: 12 }, (_, i) => i), bounds, () => 1, (part) => {
    if (part.length > 5) return Promise.reject(new KvError("RESOURCE_EXHAUSTED", "Sent message larger than max"));
    taken.push(part);
    return Promise.resolve();
  });
  assert.deepEqual(taken.flat(), Array.from({ length: 12 }, (_, i) => i), "every item, once, in order");
  assert.ok(taken.every((part) => part.length <= 5));
  assert.equal(bounds.itemsMax, 3);

  await assert.rejects(
    callInParts([1, 2], { itemsMax: Infinity, bytesMax: 100 }, () => 1, () => {
      throw new KvError("RESOURCE_EXHAUSTED", "too large");
    }),
    /too large/,
    "a single item refused is an error",
  );
  await assert.rejects(
    callInParts([1, 2], { itemsMax: Infinity, bytesMax: 100 }, () => 1, () => {
      throw new KvError("UNAVAILABLE", "down");
    }),
    /down/,
    "other errors are not retried",
  );
});
