/**
 * A client that talks to a sharded cluster's masters directly, routing each key to its
 * owner on the same hash ring the router uses, so it saves the router's hop.
 *
 * ```ts
 * const client = new ShardedClient("127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003");
 * await client.set("user:1", "ada");          // goes to owner("user:1")
 * await client.mget(["user:1", "user:2"]);    // one MGet per owning shard, merged in order
 * client.close();
 * ```
 *
 * Shards are written as for the router (`[NAME=]MASTER[+REPLICA...]`) and must be the
 * cluster's exact membership, with the same names and vnode count, or keys are looked
 * for on the wrong shards. {@linkcode ShardedClient.fromRouter} reads them from a router.
 *
 * Rebalancing: this client does not take part in a router's migration protocol. While
 * a router is adding or removing a shard, use the router, and make a new ShardedClient
 * (fromRouter) once the change is done; fromRouter refuses while one is under way.
 *
 * Replica reads (`readFrom: "replica"`): each read goes to the shard's replicas in turn,
 * but never to one that has not finished its first sync (it would answer "not found"
 * for keys that exist): the client asks a replica's Info before reading from it, at most
 * once per CLIENT_REPLICA_SYNC_CHECK_MS, and reads from the master while no replica of
 * the shard has synced. A replica that cannot be reached, or hangs, leaves the read to
 * the master too.
 *
 * Batches: MGet and MSet are split into one call per owning shard, made in parallel.
 * Each shard applies its part of an MSet all or nothing; if one shard fails, the others'
 * parts may have been applied, and the call rejects with that shard's error, saying so
 * (with outcomeUnknown set) when they were.
 *
 * @module
 */

import {
  BATCH_KEYS_MAX,
  CLIENT_CALL_DEADLINE_MS_DEFAULT,
  CLIENT_REPLICA_SYNC_CHECK_MS,
  SCAN_PAGE_KEYS_DEFAULT,
  VNODES_PER_SHARD_DEFAULT,
} from "../config/limits.ts";
import { partialWriteNote } from "../cluster/partial_write.ts";
import { HashRing } from "../cluster/ring.ts";
import { decodeClusterCursor, encodeClusterCursor } from "../cluster/scan_cursor.ts";
import type { ReadFrom } from "../cluster/shard_api.ts";
import { findConflict, parseShardList, parseShardSpec, type ShardSpec } from "../cluster/shard_spec.ts";
import type { TransportLimits } from "../transport/grpc.ts";
import type { ClusterStatusResponse, InfoResponse, MGetResponse } from "../transport/messages.ts";
import {
  type EntryInput,
  KvClient,
  KvClientError,
  type ScanAllOptions,
  type ScannedEntry,
  scanPages,
} from "./client.ts";
import { ReplicaSyncCache, syncVerdict } from "../cluster/replica_sync.ts";

export interface ShardedClientOptions {
  /** Virtual nodes per shard: the cluster's (default 512, the router's default). */
  readonly vnodes?: number;
  /** Deadline of each call, in ms; a read from a replica that falls back to the master
   * keeps to it too. */
  readonly deadlineMs?: number;
  /** Where reads go unless a call says otherwise (default master). */
  readonly readFrom?: ReadFrom;
  readonly limits?: TransportLimits;
}

/** Per-call choice of where a read goes. */
export interface ReadOptions {
  readonly readFrom?: ReadFrom;
}

interface Shard {
  readonly spec: ShardSpec;
  readonly master: KvClient;
  readonly replicas: KvClient[];
  nextReplica: number;
}

export class ShardedClient {
  readonly ring: HashRing;
  readonly shards: readonly ShardSpec[];
  #byName = new Map<string, Shard>();
  #readFrom: ReadFrom;
  #deadlineMs: number;
  #replicaSync = new ReplicaSyncCache({ clock: Date.now, checkMs: CLIENT_REPLICA_SYNC_CHECK_MS });

  /** A client for `shards`: a comma-separated text, or a list of texts or specs. */
  constructor(shards: string | readonly (string | ShardSpec)[], options: ShardedClientOptions = {}) {
    const specs = typeof shards === "string"
      ? parseShardList(shards, "shards")
      : shards.map((shard) => typeof shard === "string" ? parseShardSpec(shard, "shards") : shard);
    const conflict = findConflict(specs);
    if (conflict !== null) throw new Error(`client: Invalid shards: ${conflict}`);
    if (specs.length === 0) throw new Error("client: A sharded client needs at least one shard");
    this.shards = specs;
    this.ring = new HashRing(specs.map((spec) => spec.name), options.vnodes ?? VNODES_PER_SHARD_DEFAULT);
    this.#readFrom = options.readFrom ?? "master";
    this.#deadlineMs = options.deadlineMs ?? CLIENT_CALL_DEADLINE_MS_DEFAULT;
    const clientOptions = { deadlineMs: this.#deadlineMs, limits: options.limits };
    for (const spec of specs) {
      this.#byName.set(spec.name, {
        spec,
        master: new KvClient(spec.master, clientOptions),
        replicas: spec.replicas.map((address) => new KvClient(address, clientOptions)),
        nextReplica: 0,
      });
    }
  }

  /** A client for the shards a router serves, with the router's vnode count. Rejects
   * while the router is moving keys between shards (use the router until it is done). */
  static async fromRouter(
    address: string,
    options: Omit<ShardedClientOptions, "vnodes"> = {},
  ): Promise<ShardedClient> {
    using router = new KvClient(address, { deadlineMs: options.deadlineMs, limits: options.limits });
    const status = await router.call<ClusterStatusResponse>("ClusterStatus", {});
    if (status.migration !== null) {
      throw new Error(
        `client: Cannot route by ${address}'s ring now: it is ${
          status.migration.kind === "add" ? "adding" : "removing"
        } ` +
          `shard ${JSON.stringify(status.migration.shard)}; use the router until that completes`,
      );
    }
    const specs = status.shards.map((shard) => ({ name: shard.name, master: shard.master, replicas: shard.replicas }));
    return new ShardedClient(specs, { ...options, vnodes: status.vnodes });
  }

  /** The shard that owns `key`. */
  owner(key: string): ShardSpec {
    return this.#shard(key).spec;
  }

  async get(key: string, options: ReadOptions = {}): Promise<string | undefined> {
    return await this.#read(this.#shard(key), options, (client) => client.get(key));
  }

  /** Sets `key` on its owner, clearing any TTL; with `ttlMs`, gives it that TTL in the
   * same write (see KvClient.set). */
  set(key: string, value: string, options: { ttlMs?: number } = {}): Promise<boolean> {
    return this.#shard(key).master.set(key, value, options);
  }

  contains(key: string, options: ReadOptions = {}): Promise<boolean> {
    return this.#read(this.#shard(key), options, (client) => client.contains(key));
  }

  /** Deletes `key`; resolves with whether it existed. */
  delete(key: string): Promise<boolean> {
    return this.#shard(key).master.delete(key);
  }

  expire(key: string, seconds: number): Promise<boolean> {
    return this.#shard(key).master.expire(key, seconds);
  }

  ttl(key: string, options: ReadOptions = {}): Promise<number> {
    return this.#read(this.#shard(key), options, (client) => client.ttl(key));
  }

  /** The values of `keys`, in order; one MGet per owning shard, in parallel. */
  async mget(keys: readonly string[], options: ReadOptions = {}): Promise<(string | undefined)[]> {
    refuseLargeBatch(keys.length, "read");
    const values: (string | undefined)[] = new Array(keys.length);
    const groups = this.#group(keys.map((key, index) => ({ key, index })));
    await Promise.all([...groups].map(async ([shard, items]) => {
      const response = await this.#read(
        shard,
        options,
        (client) => client.call<MGetResponse>("MGet", { keys: items.map((item) => item.key) }),
      );
      items.forEach((item, i) => values[item.index] = response.values[i].found ? response.values[i].value : undefined);
    }));
    return values;
  }

  /** Writes every entry; one MSet per owning shard, in parallel (see the module notes on
   * what a failure leaves). Resolves with the number written. If a shard fails, rejects
   * with its error once every shard answered; when other shards took their part, the
   * error says so and has outcomeUnknown set, as the router's does. */
  async mset(entries: readonly EntryInput[]): Promise<number> {
    refuseLargeBatch(entries.length, "write");
    const groups = [...this.#group(entries)];
    const outcomes = await Promise.allSettled(groups.map(([shard, part]) => shard.master.mset(part)));
    const failed = outcomes.find((outcome) => outcome.status === "rejected");
    if (failed !== undefined) {
      throw partialWriteFailure(failed.reason, groups.map(([, part]) => part.length), outcomes);
    }
    return outcomes.reduce((sum, outcome) => sum + (outcome.status === "fulfilled" ? outcome.value : 0), 0);
  }

  /** One page of a scan over every shard in turn. Pass the returned cursor to continue;
   * "" means done. Keys a shard holds but does not own are skipped. */
  async scan(
    options: { cursor?: string; prefix?: string; limit?: number; includeValues?: boolean } = {},
  ): Promise<{ entries: ScannedEntry[]; cursor: string }> {
    let { index, shardCursor } = options.cursor ? decodeClusterCursor(options.cursor) : { index: 0, shardCursor: "" };
    if (index >= this.shards.length) {
      throw new Error(`client: Scan cursor ${JSON.stringify(options.cursor)} is past the last shard`);
    }
    // 0 (or less) asks for the default page, as it does of one node; taken as is, it
    // would make a page of nothing with a cursor that never moves, and scanAll would
    // loop forever.
    const limit = options.limit !== undefined && options.limit > 0 ? options.limit : SCAN_PAGE_KEYS_DEFAULT;
    const entries: ScannedEntry[] = [];
    while (index < this.shards.length && entries.length < limit) {
      const shard = this.#byName.get(this.shards[index].name)!;
      const page = await shard.master.scan({
        cursor: shardCursor,
        prefix: options.prefix,
        limit: limit - entries.length,
        includeValues: options.includeValues,
      });
      entries.push(...page.entries.filter((entry) => this.ring.owner(entry.key) === shard.spec.name));
      if (page.cursor !== "") {
        shardCursor = page.cursor;
        break;
      }
      index++;
      shardCursor = "";
    }
    return {
      entries,
      cursor: index >= this.shards.length ? "" : encodeClusterCursor({ epoch: 0, index, shardCursor }),
    };
  }

  /** Every key (with values when asked) with `prefix`, shard after shard. */
  scanAll(options: ScanAllOptions = {}): AsyncGenerator<ScannedEntry> {
    return scanPages((scan) => this.scan(scan), options);
  }

  /** Each shard's Info, by shard name. */
  async info(): Promise<Map<string, InfoResponse>> {
    const infos = await Promise.all(this.shards.map((spec) => this.#byName.get(spec.name)!.master.info()));
    return new Map(this.shards.map((spec, i) => [spec.name, infos[i]]));
  }

  close(): void {
    for (const shard of this.#byName.values()) {
      shard.master.close();
      for (const replica of shard.replicas) replica.close();
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #shard(key: string): Shard {
    return this.#byName.get(this.ring.owner(key))!;
  }

  #group<T extends { key: string }>(items: readonly T[]): Map<Shard, T[]> {
    const groups = new Map<Shard, T[]>();
    for (const item of items) {
      const shard = this.#shard(item.key);
      const group = groups.get(shard);
      if (group === undefined) groups.set(shard, [item]);
      else group.push(item);
    }
    return groups;
  }

  /** Runs a read on a replica when asked (and the shard has one that has synced and
   * answers), else on the master. The whole read keeps to one deadline: a replica gets
   * half of it (its Info check included), so one that hangs leaves the master the other
   * half (as the router's replica reads do). */
  async #read<T>(shard: Shard, options: ReadOptions, read: (client: KvClient) => Promise<T>): Promise<T> {
    if ((options.readFrom ?? this.#readFrom) !== "replica" || shard.replicas.length === 0) {
      return await read(shard.master);
    }
    const deadlineAtMs = Date.now() + this.#deadlineMs;
    const replicaDeadlineAtMs = deadlineAtMs - Math.floor(this.#deadlineMs / 2);
    const address = this.#replicaSync.choose(shard.spec.replicas, shard.nextReplica++);
    const replica = shard.replicas.find((client) => client.address === address);
    try {
      if (replica !== undefined && await this.#synced(replica, replicaDeadlineAtMs)) {
        return await read(replica.withDeadline(Math.max(1, replicaDeadlineAtMs - Date.now())));
      }
    } catch (error) {
      const unreachable = error instanceof KvClientError &&
        (error.codeName === "UNAVAILABLE" || error.codeName === "DEADLINE_EXCEEDED");
      if (!unreachable) throw error;
    }
    return await read(shard.master.withDeadline(Math.max(1, deadlineAtMs - Date.now())));
  }

  /** Whether `replica` has finished its first sync, asking its Info when what the client
   * knows is too old. False when the Info call fails, however it fails: the read is the
   * master's then, and the replica is asked again on the next one. */
  async #synced(replica: KvClient, deadlineAtMs: number): Promise<boolean> {
    let verdict = this.#replicaSync.known(replica.address);
    if (verdict === undefined) {
      try {
        verdict = syncVerdict(await replica.withDeadline(Math.max(1, deadlineAtMs - Date.now())).info());
      } catch {
        return false;
      }
      this.#replicaSync.record(replica.address, verdict);
    }
    return verdict === "synced";
  }
}

/** `error`, a shard's failure of its part of a write, saying what the other shards took
 * when they took theirs (`sizes[i]` entries went to the shard whose call ended with
 * `outcomes[i]`): the write as a whole was then applied in part. */
function partialWriteFailure(
  error: unknown,
  sizes: readonly number[],
  outcomes: readonly PromiseSettledResult<unknown>[],
): unknown {
  const note = partialWriteNote(sizes, outcomes);
  if (note === null || !(error instanceof KvClientError)) return error;
  return new KvClientError(
    error.code,
    `${error.details}; ${note}`,
    error.address,
    { transport: error.transport, transportDetails: error.transportDetails, outcomeUnknown: true },
  );
}

function refuseLargeBatch(count: number, action: string): void {
  if (count > BATCH_KEYS_MAX) {
    throw new Error(
      `client: Cannot ${action} ${count} keys in one call: the limit is ${BATCH_KEYS_MAX}; split the batch`,
    );
  }
}
