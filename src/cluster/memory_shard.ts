/**
 * An in-memory shard behind the {@linkcode ShardApi} seam, for the cluster core's tests:
 * a Store with a node's answers to the rpcs the router uses (Redis semantics for
 * Delete/Expire/TTL, MSet's only_if_absent and past deadlines, live scan cursors).
 *
 * Each call takes a few event-loop turns, drawn from a seeded generator, so that calls
 * made concurrently interleave differently from seed to seed, as they do on a network;
 * `down` makes it refuse every call as an unreachable shard would, and
 * `messageBytesMax` refuses requests and responses larger than that with
 * RESOURCE_EXHAUSTED, as a node's transport does past its message limit.
 *
 * Durability is modelled as a node with `--appendfsync no` has it: a write is held in
 * memory until something fsyncs (an MSet with `fsync`, or the test's {@linkcode
 * MemoryShard.syncAll}, the everysec timer's tick), and {@linkcode MemoryShard.powerCut}
 * drops every write since the last fsync, as a power cut of the node's machine would.
 *
 * @module
 */

import { KvError } from "../errors.ts";
import { ScanCursors } from "../store/scan.ts";
import { Store } from "../store/store.ts";
import { utf8ByteLength } from "../store/utf8.ts";
import type { WriteCommand } from "../store/command.ts";
import type {
  ExpireRequest,
  InfoResponse,
  KeyRequest,
  MGetRequest,
  MSetRequest,
  ScanRequest,
  SetRequest,
} from "../transport/messages.ts";
import type { CallContext, ShardApi } from "./shard_api.ts";
import type { ShardSpec } from "./shard_spec.ts";

/** A deterministic pseudo-random generator (mulberry32), for reproducible interleavings. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class MemoryShard implements ShardApi {
  readonly spec: ShardSpec;
  readonly store = new Store();
  /** When true, every call fails with UNAVAILABLE. */
  down = false;
  /** The role Info reports. */
  role = "master";
  /** The replication id Info reports: a node's own, so two shards that answer with the
   * same one are one node. */
  replid: string;
  /** Calls made, by rpc name. */
  readonly calls = new Map<string, number>();
  /** Called before each rpc runs; may throw to make that call fail. */
  beforeCall: ((rpc: string, request: object) => void) | null = null;
  /** Largest request or response, counted as the UTF-8 bytes of its keys and values
   * (a node's transport refuses messages past --max-value-bytes plus a margin). */
  messageBytesMax = Infinity;
  /** MSet calls that asked for an fsync. */
  fsyncs = 0;
  /** What survives a power cut: the writes up to the last fsync. */
  #durable = new Store();
  /** Writes applied since the last fsync. */
  #unsynced: WriteCommand[] = [];
  #clock: () => number;
  #random: () => number;
  #cursors = new ScanCursors({ cursorsMax: 100, idleMs: 60_000, examinedPerReturnedMax: 10 }, "mem");

  constructor(name: string, clock: () => number, random: () => number = () => 0) {
    this.spec = { name, master: name, replicas: [] };
    this.replid = `replid-of-${name}`;
    this.#clock = clock;
    this.#random = random;
  }

  async call<Response>(rpc: string, request: object, _context: CallContext): Promise<Response> {
    for (let turns = Math.floor(this.#random() * 3); turns > 0; turns--) {
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    if (this.down) throw new KvError("UNAVAILABLE", `router: Cannot reach shard "${this.spec.name}": down`);
    this.beforeCall?.(rpc, request);
    this.calls.set(rpc, (this.calls.get(rpc) ?? 0) + 1);
    this.#checkSize(request, "Received");
    const response = this.#answer(rpc, request);
    this.#checkSize(response, "Sent");
    return response as Response;
  }

  close(): void {}

  /** Forgets every open scan cursor, as a shard that restarted has. */
  forgetCursors(): void {
    this.#cursors = new ScanCursors({ cursorsMax: 100, idleMs: 60_000, examinedPerReturnedMax: 10 }, "mem");
  }

  /** Makes every write so far durable, as the everysec timer's fsync does. */
  syncAll(): void {
    for (const command of this.#unsynced) this.#durable.apply(command);
    this.#unsynced = [];
  }

  /** Loses every write since the last fsync, and the scan cursors, as a power cut and a
   * restart of the node do. */
  powerCut(): void {
    const recovered = new Store();
    for (const [key, entry] of this.#durable.entries()) {
      recovered.apply({ kind: "set", key, value: entry.value, expiresAtMs: entry.expiresAtMs });
    }
    this.store.replaceContents(recovered);
    this.#unsynced = [];
    this.forgetCursors();
  }

  /** The live keys held, sorted. */
  keys(): string[] {
    const now = this.#clock();
    return [...this.store.entries()].filter(([key]) => this.store.get(key, now) !== undefined).map(([key]) => key)
      .sort();
  }

  /** Refuses a message whose keys and values exceed messageBytesMax, with grpc-js's
   * words for it. */
  #checkSize(message: object, verb: string): void {
    if (this.messageBytesMax === Infinity) return;
    const { key, value, keys, values, entries } = message as Record<string, unknown>;
    const texts = [key, value, ...(Array.isArray(keys) ? keys : [])];
    for (const item of [...(Array.isArray(values) ? values : []), ...(Array.isArray(entries) ? entries : [])]) {
      texts.push(item.key, item.value);
    }
    let bytes = 0;
    for (const text of texts) if (typeof text === "string") bytes += utf8ByteLength(text);
    if (bytes > this.messageBytesMax) {
      throw new KvError("RESOURCE_EXHAUSTED", `${verb} message larger than max (${bytes} vs. ${this.messageBytesMax})`);
    }
  }

  #apply(command: WriteCommand): void {
    this.store.apply(command);
    this.#unsynced.push(command);
  }

  #answer(rpc: string, request: object): object {
    const now = this.#clock();
    const live = (key: string) => this.store.get(key, now);
    switch (rpc) {
      case "Get": {
        const entry = live((request as KeyRequest).key);
        return { found: entry !== undefined, value: entry?.value ?? "" };
      }
      case "Contains":
        return { exists: live((request as KeyRequest).key) !== undefined };
      case "TTL": {
        const entry = live((request as KeyRequest).key);
        if (entry === undefined) return { seconds: -2 };
        if (entry.expiresAtMs === null) return { seconds: -1 };
        return { seconds: Math.floor((entry.expiresAtMs - now + 500) / 1000) };
      }
      case "Set": {
        const { key, value } = request as SetRequest;
        this.#apply({ kind: "set", key, value, expiresAtMs: null });
        return { success: true };
      }
      case "Delete": {
        const { key } = request as KeyRequest;
        const found = live(key) !== undefined;
        this.#apply({ kind: "delete", key });
        return { success: true, found };
      }
      case "Expire": {
        const { key, seconds } = request as ExpireRequest;
        if (live(key) === undefined) return { success: false };
        if (seconds <= 0) this.#apply({ kind: "delete", key });
        else this.#apply({ kind: "expireAt", key, expiresAtMs: now + seconds * 1000 });
        return { success: true };
      }
      case "MGet": {
        const { keys, include_deadlines } = request as MGetRequest;
        const entries = keys.map(live);
        return {
          values: entries.map((entry) => ({ found: entry !== undefined, value: entry?.value ?? "" })),
          expires_at_ms: include_deadlines ? entries.map((entry) => entry?.expiresAtMs ?? 0) : [],
        };
      }
      case "MSet": {
        const { entries, only_if_absent, fsync } = request as MSetRequest;
        let count = 0;
        for (const entry of entries) {
          if (only_if_absent && live(entry.key) !== undefined) continue;
          count++;
          const expiresAtMs = Number(entry.expires_at_ms);
          const ttlMs = Number(entry.ttl_ms);
          const deadline = expiresAtMs !== 0 ? expiresAtMs : ttlMs !== 0 ? now + ttlMs : null;
          if (deadline !== null && deadline <= now) this.#apply({ kind: "delete", key: entry.key });
          else this.#apply({ kind: "set", key: entry.key, value: entry.value, expiresAtMs: deadline });
        }
        if (fsync === true) {
          this.fsyncs++;
          this.syncAll();
        }
        return { success: true, count };
      }
      case "Scan": {
        const { cursor, prefix, limit, include_values } = request as ScanRequest;
        const page = this.#cursors.page(this.store, cursor, prefix, limit === 0 ? 100 : limit, now, {
          bytesMax: this.messageBytesMax,
          withValues: include_values === true,
        });
        return {
          cursor: page.cursor,
          entries: page.entries.map(([key, entry]) => ({
            key,
            value: include_values ? entry.value : "",
            expires_at_ms: include_values ? entry.expiresAtMs ?? 0 : 0,
            ttl_ms: 0,
          })),
        };
      }
      case "Info":
        return {
          role: this.role,
          replid: this.replid,
          keys: this.store.size,
          dataset_bytes: this.store.datasetBytes,
        } as Partial<
          InfoResponse
        >;
    }
    throw new KvError("UNIMPLEMENTED", `memory shard: ${rpc} is not served`);
  }
}
