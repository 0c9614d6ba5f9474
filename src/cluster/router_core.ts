/**
 * The router's core: each data rpc of kvstore.KeyValueStore carried out on the shards
 * that own its keys, including while keys move between shards.
 *
 * ## Routing when the ring is stable
 *
 * A key goes to its owner on the ring. A batch (MGet, MSet) is split into one call per
 * owner, made in parallel, and the answers are merged back into request order. A scan
 * walks the shards one after another (see scan_cursor.ts for its cursor).
 *
 * ## The migration protocol
 *
 * While a shard is added or removed, the membership holds two rings, `before` and
 * `after`. For each key, `from` = before.owner(key) holds it until it moves, and
 * `to` = after.owner(key) owns it afterwards. Keys with `from` = `to` (most of them) are
 * routed as above. For a *moving* key, every call and every step of the mover holds the
 * router's lock on the key (key_locks.ts), and:
 *
 * - **settle(keys)** moves keys from `from` to `to`: read them from `from` with their
 *   deadlines (MGet include_deadlines), write those found to `to` *only if absent*
 *   (MSet only_if_absent), then delete them from `from` (MSet with a deadline in the
 *   past, which deletes). Deadlines are absolute, so TTLs move exactly. Each of the
 *   three is made in parts that fit a shard's message limit (see {@linkcode callInParts}):
 *   a key is copied before it is deleted, whatever the parts. Both writes ask the shard
 *   to fsync before it answers (MSet `fsync`), whatever its --appendfsync: a copy still
 *   in `to`'s page cache when `from`'s deletion is on disk would be lost to a power cut
 *   of `to`, and a deletion lost to a power cut of `from` would leave a stale copy there
 *   that a later move could take for the key's current value (copies are only if
 *   absent). The cost is two fsyncs per step of --migration-batch-keys keys.
 * - **a write** (Set, Delete, Expire, MSet) first settles its keys, then writes to `to`.
 * - **a read** (Get, Contains, TTL, MGet) asks `to` first and, if the key is not there,
 *   `from`. It never moves anything.
 * - **the mover** (migrator.ts) scans each `from` shard and settles the moving keys it
 *   finds, a batch at a time.
 *
 * The invariant, whenever a moving key's lock is free: *if `to` holds the key, that is
 * its current value; otherwise `from` holds its current value, or it has none.* Why it
 * holds:
 *
 * - A write reaches `to` only after settle has removed the key from `from`; so `from`
 *   never holds a value older than `to`'s once `to` has been written.
 * - settle never overwrites `to` (only if absent): if `to` already holds the key, that
 *   copy is current by the invariant, and the copy on `from` is a leftover to delete.
 * - If settle stops half-way (a shard unreachable, the router killed) the key is on both
 *   shards with the same value, or already only on `to`: the invariant still holds, and
 *   the next settle finishes the job. So every step can be retried and the mover can
 *   restart from scratch after a crash.
 * - A delete is `settle` then a delete on `to`: both copies are gone, and since nothing
 *   writes a moving key to `from`, nothing can bring it back.
 * - Expiry is the shards' own: a deadline is absolute, so both copies die at once.
 *
 * Completion: the mover has scanned every `from` shard to the end. A shard's scan
 * returns every key present for the whole scan (live iterators), and during the
 * migration nothing writes a moving key to `from`; so afterwards `from` holds no moving
 * key and `after` alone describes where every key is.
 *
 * Calls in flight across a change: a call routes by the topology it started with. A
 * call that started before a migration began may still write a moving key to `from`
 * after something settled it, and that write would be lost (settle deletes it, or `to`
 * already holds the older copy). So nothing settles under a topology until every call
 * that started under an older one has finished: the mover, and calls that write a
 * moving key, wait for that first ({@linkcode RouterCore.drained}); reads need not.
 * Calls that started during the migration and finish after it are safe as they are:
 * they settle (which finds nothing left) and write to `to`, as the new ring would.
 *
 * What this does not cover: writes that bypass this router (a client talking to shards
 * directly, or a second router) while keys move. Run rebalancing through the one router
 * that all clients use.
 *
 * @module
 */

import { MIGRATION_CALL_BYTES_MAX, SCAN_CARRY_EPOCHS_MAX } from "../config/limits.ts";
import { invalidArgument, KvError, quote } from "../errors.ts";
import { scanEntryBytes, scanPageBytesMax } from "../store/scan.ts";
import { utf8ByteLength } from "../store/utf8.ts";
import {
  type DataLimits,
  validateBatchSize,
  validateEntryDeadline,
  validateKey,
  validateMGetAnswer,
  validateScanLimit,
  validateTtlSeconds,
  validateValue,
} from "../store/validation.ts";
import type {
  ContainsResponse,
  DeleteResponse,
  ExpireRequest,
  ExpireResponse,
  GetResponse,
  KeyRequest,
  MGetRequest,
  MGetResponse,
  MSetRequest,
  MSetResponse,
  ScanRequest,
  ScanResponse,
  SetRequest,
  SetResponse,
  TtlResponse,
  WireEntry,
} from "../transport/messages.ts";
import { KeyLocks } from "./key_locks.ts";
import { partialWriteNote } from "./partial_write.ts";
import { type ClusterCursor, decodeClusterCursor, encodeClusterCursor } from "./scan_cursor.ts";
import type { CallContext, ShardApi } from "./shard_api.ts";
import type { Membership } from "./membership.ts";
import { carryScanPosition, scanOrderOf, type ScanPosition, type Topology } from "./topology.ts";

/** Finds the link to a shard by name. */
export type ShardDirectory = (name: string) => ShardApi;

export interface RouterCoreOptions {
  /** The limits the shards enforce, checked here too so that a batch spanning shards is
   * refused whole rather than applied on some shards and refused on others. */
  readonly limits: DataLimits;
  readonly clock: () => number;
}

/** A deadline in the past: an MSet entry carrying it deletes its key. */
const DELETE_DEADLINE_MS = 1;

/** Bytes counted for an entry of a rebalancing call beyond its key and value: the
 * protobuf framing (field tags, lengths, a deadline of up to 10 bytes), generously. */
const ENTRY_OVERHEAD_BYTES = 32;

/** How a rebalancing call is cut into parts: at most `itemsMax` items and (unless one
 * item alone is larger) `bytesMax` bytes each. */
interface PartBounds {
  itemsMax: number;
  readonly bytesMax: number;
}

const RESOLVED = Promise.resolve();

export class RouterCore {
  #topology: Topology;
  #shards: ShardDirectory;
  #limits: DataLimits;
  #clock: () => number;
  /** Bytes of keys and values one call of settle carries at most. */
  #callBytesMax: number;
  /** Keys per settle read: lowered when a shard refuses a read's answer as too large
   * (values are not known before they are read), so later reads of the same migration
   * do not make the shard build the oversized answer again; reset on a ring change. */
  #readBounds: PartBounds;
  #locks = new KeyLocks();
  #keysMoved = 0;
  /** The memberships routed by, oldest first, the last SCAN_CARRY_EPOCHS_MAX of them: a
   * scan cursor from an earlier one goes on where the changes since allow it. */
  #memberships: Membership[];
  /** Calls in flight per topology they started under. */
  #inflight = new Map<Topology, number>();
  /** For each topology routed by: resolves once every call that started under an
   * earlier one has finished (see "Calls in flight across a change" above). */
  #earlierDrained = new WeakMap<Topology, Promise<void>>();
  /** The pending #earlierDrained promises, each with the topologies whose calls it still
   * waits for. */
  #drainWaiters: { waitingFor: Set<Topology>; resolve: () => void }[] = [];

  constructor(topology: Topology, shards: ShardDirectory, options: RouterCoreOptions) {
    this.#topology = topology;
    this.#shards = shards;
    this.#limits = options.limits;
    this.#clock = options.clock;
    this.#callBytesMax = Math.min(MIGRATION_CALL_BYTES_MAX, options.limits.keyBytesMax + options.limits.valueBytesMax);
    this.#readBounds = { itemsMax: Infinity, bytesMax: this.#callBytesMax };
    this.#memberships = [topology.membership];
  }

  get topology(): Topology {
    return this.#topology;
  }

  /** Keys locked by migration steps and calls right now. */
  get lockedKeys(): number {
    return this.#locks.size;
  }

  /** Keys moved from one shard to another since this core was made, by the mover and by
   * writes that moved their keys first: each counted once, when its old copy is deleted. */
  get keysMoved(): number {
    return this.#keysMoved;
  }

  /** Routes new calls by `topology`. Calls already running keep theirs; see
   * {@linkcode drained}. */
  setTopology(topology: Topology): void {
    this.#topology = topology;
    this.#memberships.push(topology.membership);
    if (this.#memberships.length > SCAN_CARRY_EPOCHS_MAX) this.#memberships.shift();
    this.#readBounds = { itemsMax: Infinity, bytesMax: this.#callBytesMax };
    // No call runs under the new topology yet: every call in flight is an earlier one.
    const waitingFor = new Set(this.#inflight.keys());
    this.#earlierDrained.set(
      topology,
      waitingFor.size === 0 ? RESOLVED : new Promise((resolve) => this.#drainWaiters.push({ waitingFor, resolve })),
    );
  }

  /** Resolves when no call that started under an older topology is still running. */
  drained(): Promise<void> {
    return this.#drainedBefore(this.#topology);
  }

  // ---- Single-key rpcs ----------------------------------------------------------
  //
  // Each checks its input against the same limits, with the same words, as a node's
  // Keyspace, so a client hears through the router what a node would have said, and a
  // router with stricter limits than its shards enforces them.

  get(request: KeyRequest, context: CallContext): Promise<GetResponse> {
    validateKey(request.key, "get", this.#limits);
    return this.#read<GetResponse>("Get", request, context, (response) => !response.found);
  }

  contains(request: KeyRequest, context: CallContext): Promise<ContainsResponse> {
    validateKey(request.key, "check", this.#limits);
    return this.#read<ContainsResponse>("Contains", request, context, (response) => !response.exists);
  }

  ttl(request: KeyRequest, context: CallContext): Promise<TtlResponse> {
    validateKey(request.key, "read the TTL of", this.#limits);
    return this.#read<TtlResponse>("TTL", request, context, (response) => response.seconds === -2);
  }

  set(request: SetRequest, context: CallContext): Promise<SetResponse> {
    validateKey(request.key, "set", this.#limits);
    validateValue(request.key, request.value, this.#limits);
    return this.#write<SetResponse>("Set", request, context);
  }

  delete(request: KeyRequest, context: CallContext): Promise<DeleteResponse> {
    validateKey(request.key, "delete", this.#limits);
    return this.#write<DeleteResponse>("Delete", request, context);
  }

  expire(request: ExpireRequest, context: CallContext): Promise<ExpireResponse> {
    validateKey(request.key, "expire", this.#limits);
    validateTtlSeconds(request.key, request.seconds, this.#limits);
    return this.#write<ExpireResponse>("Expire", request, context);
  }

  // ---- Batches -----------------------------------------------------------------

  /** MGet: one MGet per owner in parallel; moving keys under their locks, `to` first. */
  async mget(request: MGetRequest, context: CallContext): Promise<MGetResponse> {
    const keys = request.keys;
    validateBatchSize(keys.length, "read");
    for (const key of keys) validateKey(key, "get", this.#limits);
    const withDeadlines = request.include_deadlines === true;
    const values: GetResponse[] = new Array(keys.length);
    const deadlines: (string | number)[] = new Array(keys.length).fill(0);
    const fill = (indices: readonly number[], response: MGetResponse) => {
      indices.forEach((index, i) => {
        values[index] = response.values[i];
        if (withDeadlines) deadlines[index] = response.expires_at_ms?.[i] ?? 0;
      });
    };
    await this.#withTopology(async (topology) => {
      const stable = new Map<string, number[]>();
      const moving: number[] = [];
      keys.forEach((key, index) => {
        const { from, to } = topology.route(key);
        if (from === to) pushTo(stable, to, index);
        else moving.push(index);
      });
      const calls = [...stable].map(async ([name, indices]) => {
        const response = await this.#shard(name).call<MGetResponse>(
          "MGet",
          { keys: indices.map((index) => keys[index]), include_deadlines: withDeadlines },
          context,
        );
        fill(indices, response);
      });
      if (moving.length > 0) calls.push(this.#mgetMoving(topology, keys, moving, withDeadlines, context, fill));
      await Promise.all(calls);
    });
    // Each shard's part fits a message; together they may not fit the router's.
    validateMGetAnswer(values.map((value) => value.found ? value.value : undefined), withDeadlines, this.#limits);
    return { values, expires_at_ms: withDeadlines ? deadlines : [] };
  }

  /**
   * MSet: validated whole here, then one MSet per owner in parallel. Each shard applies
   * its part all or nothing; across shards a failure (a shard unreachable) can leave the
   * other shards' parts applied, and the call then fails naming the shard.
   */
  async mset(request: MSetRequest, context: CallContext): Promise<MSetResponse> {
    const entries = request.entries;
    validateBatchSize(entries.length, "write");
    const nowMs = this.#clock();
    for (const entry of entries) {
      validateKey(entry.key, "set", this.#limits);
      validateValue(entry.key, entry.value, this.#limits);
      validateEntryDeadline(
        { key: entry.key, expiresAtMs: int64Given(entry.expires_at_ms), ttlMs: int64Given(entry.ttl_ms) },
        nowMs,
        this.#limits,
      );
    }
    const onlyIfAbsent = request.only_if_absent === true;
    let count = 0;
    await this.#withTopology(async (topology) => {
      const byShard = new Map<string, WireEntry[]>();
      const moving = new Map<string, { from: string; to: string; keys: string[] }>();
      for (const entry of entries) {
        const { from, to } = topology.route(entry.key);
        pushTo(byShard, to, entry);
        if (from !== to) {
          const group = moving.get(`${from}\n${to}`) ?? { from, to, keys: [] };
          group.keys.push(entry.key);
          moving.set(`${from}\n${to}`, group);
        }
      }
      const movingKeys = [...moving.values()].flatMap((group) => group.keys);
      if (movingKeys.length > 0) await this.#drainedBefore(topology);
      const release = movingKeys.length === 0 ? null : await this.#locks.lock(movingKeys);
      try {
        await Promise.all([...moving.values()].map(({ from, to, keys }) => this.settle(from, to, keys, context)));
        // Every part is waited for, so that a failure can say what the other shards took.
        const parts = [...byShard];
        const outcomes = await Promise.allSettled(
          parts.map(([name, part]) =>
            this.#shard(name).call<MSetResponse>("MSet", { entries: part, only_if_absent: onlyIfAbsent }, context)
          ),
        );
        const failure = partialWriteFailure(parts.map(([, part]) => part.length), outcomes);
        if (failure !== null) throw failure;
        count = outcomes.reduce(
          (sum, outcome) => sum + (outcome.status === "fulfilled" ? Number(outcome.value.count) : 0),
          0,
        );
      } finally {
        release?.();
      }
    });
    return { success: true, count };
  }

  // ---- Scan --------------------------------------------------------------------

  /**
   * Scan: the shards in scan order, each from its own cursor; a page continues on the
   * next shard when one is exhausted, so it holds up to `limit` keys. Keys are filtered
   * to those the shard owns or is handing over (Topology.scanKeeps).
   */
  async scan(request: ScanRequest, context: CallContext): Promise<ScanResponse> {
    const limit = validateScanLimit(request.limit);
    return await this.#withTopology(async (topology) => {
      const order = topology.scanOrder();
      const position = request.cursor === ""
        ? { index: 0, shardCursor: "" }
        : this.#scanPosition(decodeClusterCursor(request.cursor), topology.membership);
      if (position === null) {
        throw invalidArgument(
          `scan: Cursor ${quote(request.cursor)} belongs to an earlier shape of the cluster (since it was handed ` +
            `out, a shard's removal began, a shard was forgotten or the router restarted, and going on could miss ` +
            `keys); start again with an empty cursor`,
        );
      }
      let { index, shardCursor } = position;
      const entries: WireEntry[] = [];
      // Each shard bounds its page's bytes; the router's page joins whole shard pages, so
      // it goes on to another shard only while a full page more would still fit the
      // router's own message limit (the largest key and value, and then some).
      const withValues = request.include_values === true;
      const roomBytes = this.#limits.keyBytesMax + this.#limits.valueBytesMax - scanPageBytesMax(this.#limits);
      let bytes = 0;
      while (index < order.length && entries.length < limit && bytes <= roomBytes) {
        const name = order[index];
        const page = await this.#shard(name).call<ScanResponse>("Scan", {
          cursor: shardCursor,
          prefix: request.prefix,
          limit: limit - entries.length,
          include_values: request.include_values,
        }, { ...context, readFrom: "master" });
        for (const entry of page.entries) {
          if (!topology.scanKeeps(name, entry.key)) continue;
          entries.push(entry);
          bytes += scanEntryBytes(entry.key, entry.value, withValues);
        }
        if (page.cursor !== "") {
          // The shard has more; its page may have stopped short (a prefix skipping many
          // keys), so answer now rather than make the caller wait on more shard calls.
          shardCursor = page.cursor;
          break;
        }
        index++;
        shardCursor = "";
      }
      return {
        entries,
        cursor: index >= order.length ? "" : encodeClusterCursor({ epoch: topology.epoch, index, shardCursor }),
      };
    });
  }

  /**
   * Where a scan whose cursor is `cursor` goes on under `current`: the cursor's own
   * position if it was handed out under `current`, or that position carried through
   * every change since (see carryScanPosition: across the start of an add and the end of
   * a rebalancing, never missing a key). Null when it cannot go on: a change that could
   * make it miss keys, a membership forgotten (older than the last
   * SCAN_CARRY_EPOCHS_MAX, or before a restart of the router), or a cursor that is not
   * one of ours.
   */
  #scanPosition(cursor: ClusterCursor, current: Membership): ScanPosition | null {
    const position = { index: cursor.index, shardCursor: cursor.shardCursor };
    if (cursor.epoch === current.epoch) return position.index < scanOrderOf(current).length ? position : null;
    const first = this.#memberships.findIndex((membership) => membership.epoch === cursor.epoch);
    const last = this.#memberships.indexOf(current);
    if (first === -1 || last === -1 || first > last) return null;
    if (position.index >= scanOrderOf(this.#memberships[first]).length) return null;
    let carried: ScanPosition | null = position;
    for (let i = first; i < last && carried !== null; i++) {
      carried = carryScanPosition(this.#memberships[i], this.#memberships[i + 1], carried);
    }
    return carried;
  }

  // ---- Migration -----------------------------------------------------------------

  /**
   * Moves `keys` from shard `from` to shard `to` (see the protocol above). The caller
   * holds the keys' locks. Resolves with how many keys `from` held (and so were moved,
   * or found already moved). Safe to repeat after a failure.
   */
  async settle(from: string, to: string, keys: readonly string[], context: CallContext): Promise<number> {
    const master = { ...context, readFrom: "master" as const };
    const entries: WireEntry[] = [];
    await callInParts(keys, this.#readBounds, keyBytes, async (part) => {
      const found = await this.#shard(from).call<MGetResponse>("MGet", { keys: part, include_deadlines: true }, master);
      found.values.forEach((value, i) => {
        if (!value.found) return;
        entries.push({ key: part[i], value: value.value, expires_at_ms: found.expires_at_ms?.[i] ?? 0, ttl_ms: 0 });
      });
    });
    if (entries.length === 0) return 0;
    await callInParts(entries, this.#writeBounds(), entryBytes, async (part) => {
      await this.#shard(to).call<MSetResponse>("MSet", { entries: part, only_if_absent: true, fsync: true }, master);
    });
    const deletions = entries.map((entry) => ({
      key: entry.key,
      value: "",
      expires_at_ms: DELETE_DEADLINE_MS,
      ttl_ms: 0,
    }));
    await callInParts(deletions, this.#writeBounds(), entryBytes, async (part) => {
      await this.#shard(from).call<MSetResponse>("MSet", { entries: part, fsync: true }, master);
      this.#keysMoved += part.length;
    });
    return entries.length;
  }

  /**
   * For the mover: settles those of `keys` (found on shard `from`) that the current
   * migration moves, under their locks. Resolves with the number moved.
   */
  async moveFound(from: string, keys: readonly string[], context: CallContext): Promise<number> {
    return await this.#withTopology(async (topology) => {
      const byTarget = new Map<string, string[]>();
      for (const key of keys) {
        const route = topology.route(key);
        if (route.from === from && route.to !== from) pushTo(byTarget, route.to, key);
      }
      if (byTarget.size === 0) return 0;
      await this.#drainedBefore(topology);
      const release = await this.#locks.lock([...byTarget.values()].flat());
      try {
        const moved = await Promise.all([...byTarget].map(([to, group]) => this.settle(from, to, group, context)));
        return moved.reduce((sum, count) => sum + count, 0);
      } finally {
        release();
      }
    });
  }

  // ---- Internals -----------------------------------------------------------------

  async #read<Response>(
    rpc: string,
    request: KeyRequest,
    context: CallContext,
    absent: (response: Response) => boolean,
  ): Promise<Response> {
    return await this.#withTopology(async (topology) => {
      const { from, to } = topology.route(request.key);
      if (from === to) return await this.#shard(to).call<Response>(rpc, request, context);
      const master = { ...context, readFrom: "master" as const };
      const release = await this.#locks.lock([request.key]);
      try {
        const answer = await this.#shard(to).call<Response>(rpc, request, master);
        if (!absent(answer)) return answer;
        return await this.#shard(from).call<Response>(rpc, request, master);
      } finally {
        release();
      }
    });
  }

  async #write<Response>(rpc: string, request: KeyRequest, context: CallContext): Promise<Response> {
    return await this.#withTopology(async (topology) => {
      const { from, to } = topology.route(request.key);
      if (from === to) return await this.#shard(to).call<Response>(rpc, request, context);
      await this.#drainedBefore(topology);
      const release = await this.#locks.lock([request.key]);
      try {
        await this.settle(from, to, [request.key], context);
        return await this.#shard(to).call<Response>(rpc, request, context);
      } finally {
        release();
      }
    });
  }

  async #mgetMoving(
    topology: Topology,
    keys: readonly string[],
    moving: readonly number[],
    withDeadlines: boolean,
    context: CallContext,
    fill: (indices: readonly number[], response: MGetResponse) => void,
  ): Promise<void> {
    const master = { ...context, readFrom: "master" as const };
    const release = await this.#locks.lock(moving.map((index) => keys[index]));
    try {
      const byTo = new Map<string, number[]>();
      for (const index of moving) pushTo(byTo, topology.route(keys[index]).to, index);
      const missing = new Map<string, number[]>();
      await Promise.all([...byTo].map(async ([name, indices]) => {
        const response = await this.#shard(name).call<MGetResponse>(
          "MGet",
          { keys: indices.map((index) => keys[index]), include_deadlines: withDeadlines },
          master,
        );
        fill(indices, response);
        indices.forEach((index, i) => {
          if (!response.values[i].found) pushTo(missing, topology.route(keys[index]).from, index);
        });
      }));
      await Promise.all([...missing].map(async ([name, indices]) => {
        const response = await this.#shard(name).call<MGetResponse>(
          "MGet",
          { keys: indices.map((index) => keys[index]), include_deadlines: withDeadlines },
          master,
        );
        fill(indices, response);
      }));
    } finally {
      release();
    }
  }

  /** Runs `work` with the current topology, counted as in flight under it. */
  async #withTopology<T>(work: (topology: Topology) => Promise<T>): Promise<T> {
    const topology = this.#topology;
    this.#inflight.set(topology, (this.#inflight.get(topology) ?? 0) + 1);
    try {
      return await work(topology);
    } finally {
      const left = this.#inflight.get(topology)! - 1;
      if (left > 0) {
        this.#inflight.set(topology, left);
      } else {
        this.#inflight.delete(topology);
        if (this.#drainWaiters.length > 0) this.#drainedAll(topology);
      }
    }
  }

  /** Resolves once every call that started under a topology earlier than `topology` has
   * finished. */
  #drainedBefore(topology: Topology): Promise<void> {
    return this.#earlierDrained.get(topology) ?? RESOLVED;
  }

  /** Notes that no call runs under `topology` any more, resolving the waits it ends. */
  #drainedAll(topology: Topology): void {
    this.#drainWaiters = this.#drainWaiters.filter((waiter) => {
      waiter.waitingFor.delete(topology);
      if (waiter.waitingFor.size > 0) return true;
      waiter.resolve();
      return false;
    });
  }

  #shard(name: string): ShardApi {
    return this.#shards(name);
  }

  /** Bounds for a settle write: its entries' sizes are known, so only bytes bound it. */
  #writeBounds(): PartBounds {
    return { itemsMax: Infinity, bytesMax: this.#callBytesMax };
  }
}

/**
 * The error of a write split across shards (`sizes[i]` entries went to the shard whose
 * call ended with `outcomes[i]`), or null when every shard took its part: the first
 * shard's error, and, when other shards took theirs, a word that they did. Each shard
 * applies its part all or nothing, but the write as a whole was then applied in part, so
 * its outcome is unknown to the client (KvError.outcomeUnknown): read it back.
 */
export function partialWriteFailure(
  sizes: readonly number[],
  outcomes: readonly PromiseSettledResult<unknown>[],
): unknown {
  const failed = outcomes.find((outcome) => outcome.status === "rejected");
  if (failed === undefined) return null;
  const error = (failed as PromiseRejectedResult).reason;
  const note = partialWriteNote(sizes, outcomes);
  if (note === null || !(error instanceof KvError)) return error;
  return new KvError(
    error.code,
    `${error.message}; ${note}`,
    { outcomeUnknown: true },
  );
}

/**
 * Makes `call` on every item of `items`, in order, in parts within `bounds` (sizes by
 * `bytesOf`; an item larger than `bounds.bytesMax` goes alone). A part the shard refuses
 * as too large (RESOURCE_EXHAUSTED: a message past its limit, as an answer of large
 * values is) is made again in halves, and `bounds.itemsMax` keeps the smaller size for
 * the rest; a single item refused is the caller's error. Used by settle, whose calls may
 * be repeated (copies only if absent, deletions), so a part that failed half-applied is
 * safe to make again.
 */
export async function callInParts<T>(
  items: readonly T[],
  bounds: PartBounds,
  bytesOf: (item: T) => number,
  call: (part: T[]) => Promise<void>,
): Promise<void> {
  let start = 0;
  while (start < items.length) {
    let end = start;
    let bytes = 0;
    while (end < items.length && end - start < bounds.itemsMax) {
      const size = bytesOf(items[end]);
      if (end > start && bytes + size > bounds.bytesMax) break;
      bytes += size;
      end++;
    }
    const part = items.slice(start, end);
    try {
      await call(part);
    } catch (error) {
      const tooLarge = error instanceof KvError && error.code === "RESOURCE_EXHAUSTED";
      if (!tooLarge || part.length === 1) throw error;
      bounds.itemsMax = Math.ceil(part.length / 2);
      continue;
    }
    start = end;
  }
}

function keyBytes(key: string): number {
  return utf8ByteLength(key) + ENTRY_OVERHEAD_BYTES;
}

function entryBytes(entry: WireEntry): number {
  return utf8ByteLength(entry.key) + utf8ByteLength(entry.value) + ENTRY_OVERHEAD_BYTES;
}

/** An int64 field of a decoded message (a decimal string) as a number, or undefined
 * when it is 0, proto3's "not given". */
function int64Given(value: string | number): number | undefined {
  const number = Number(value);
  return number === 0 ? undefined : number;
}

function pushTo<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else list.push(value);
}
