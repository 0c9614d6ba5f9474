/**
 * The typed client library: a promise for every rpc, a deadline on every call. (Sync,
 * the protocol between our nodes, is the replication follower's; a router's cluster
 * rpcs are ClusterClient's, cluster_client.ts.)
 *
 * ```ts
 * const client = new KvClient("127.0.0.1:50051");
 * await client.set("greeting", "hello");
 * console.log(await client.get("greeting")); // "hello"
 * client.close();
 * ```
 *
 * A failed call rejects with a {@linkcode KvClientError} carrying the gRPC status name
 * and the server's message. Every call has a deadline (`deadlineMs`, 5 s unless given):
 * a call that has no answer by then rejects with DEADLINE_EXCEEDED. A broken connection
 * is reopened by grpc-js on its own, after 1 s and then backing off to at most 5 s
 * between attempts (transport/grpc.ts); calls made while it is down fail fast with
 * UNAVAILABLE rather than queueing past their deadline. For a master with replicas,
 * with failover and reads spread over replicas, see replica_set_client.ts.
 *
 * @module
 */

import { CLIENT_CALL_DEADLINE_MS_DEFAULT } from "../config/limits.ts";
import { CLIENT_TRANSPORT_LIMITS, createKvstoreClient, grpc, type TransportLimits } from "../transport/grpc.ts";
import { int32RequestFieldsOf } from "../transport/proto.ts";
import {
  OUTCOME_METADATA_KEY,
  OUTCOME_UNKNOWN,
  RPCS_WITHOUT_EFFECT,
  type TransportFailure,
  transportFailureOf,
} from "../transport/transport_failure.ts";
import type {
  CommandType,
  ContainsResponse,
  DeleteResponse,
  DigestResponse,
  ExpireResponse,
  GetResponse,
  InfoResponse,
  MGetResponse,
  MSetResponse,
  PromoteResponse,
  ReplicaOfResponse,
  ReplicationCommand,
  ReplicationResponse,
  ScanResponse,
  SetResponse,
  SnapshotResponse,
  TtlResponse,
  WaitResponse,
} from "../transport/messages.ts";

/** An entry to write with MSet: give at most one of an absolute deadline and a TTL. */
export interface EntryInput {
  readonly key: string;
  readonly value: string;
  /** Absolute deadline, unix ms. */
  readonly expiresAtMs?: number;
  /** Time to live, ms. */
  readonly ttlMs?: number;
}

/** An entry from Scan (value "" and no deadline unless values were asked for). */
export interface ScannedEntry {
  readonly key: string;
  readonly value: string;
  readonly expiresAtMs: number | null;
}

/** What to scan for with scanAll. */
export interface ScanAllOptions {
  readonly prefix?: string;
  readonly pageSize?: number;
  readonly includeValues?: boolean;
}

/** The scan of one page, as KvClient.scan and the sharded client's scan take it. */
export interface ScanPageRequest {
  cursor?: string;
  prefix?: string;
  limit?: number;
  includeValues?: boolean;
}

/** Walks a scan to its end, page after page, with any client's `scan`. */
export async function* scanPages(
  scan: (request: ScanPageRequest) => Promise<{ entries: ScannedEntry[]; cursor: string }>,
  options: ScanAllOptions,
): AsyncGenerator<ScannedEntry> {
  let cursor = "";
  do {
    const page = await scan({
      cursor,
      prefix: options.prefix,
      limit: options.pageSize,
      includeValues: options.includeValues,
    });
    yield* page.entries;
    cursor = page.cursor;
  } while (cursor !== "");
}

export interface KvClientOptions {
  /** Deadline of each call unless the call gives its own, in ms. */
  readonly deadlineMs?: number;
  readonly limits?: TransportLimits;
  /** Open a connection of its own rather than share the process's connection to this
   * address (benchmarks, which want one connection per simulated client). */
  readonly ownConnection?: boolean;
}

/**
 * A failed call: the gRPC status (number and name) and the server's message, or, when
 * the connection failed (see transport/transport_failure.ts), UNAVAILABLE with `transport` saying
 * whether the request was never sent ("unreached") or cut off after it was ("lost").
 * `outcomeUnknown` is set for a call with an effect (a write) cut off that way, or whose
 * deadline passed, or that a router failed because its own call to the shard was cut off
 * (the kvstore-outcome trailer): it may or may not have been applied.
 */
export class KvClientError extends Error {
  readonly code: grpc.status;
  readonly codeName: string;
  readonly details: string;
  /** The node that was called. */
  readonly address: string;
  readonly transport: TransportFailure | null;
  /** For a transport failure, grpc-js's own words for it ("read ECONNRESET"); "" else. */
  readonly transportDetails: string;
  readonly outcomeUnknown: boolean;

  constructor(
    code: grpc.status,
    details: string,
    address: string,
    options: { transport?: TransportFailure | null; transportDetails?: string; outcomeUnknown?: boolean } = {},
  ) {
    const codeName = grpc.status[code] ?? `STATUS_${code}`;
    super(`${codeName}: ${details} (from ${address})`);
    this.name = "KvClientError";
    this.code = code;
    this.codeName = codeName;
    this.details = details;
    this.address = address;
    this.transport = options.transport ?? null;
    this.transportDetails = options.transportDetails ?? "";
    this.outcomeUnknown = options.outcomeUnknown ?? false;
  }

  /**
   * The error for a call to `rpc` at `address` that ended with `status`: the server's
   * answer as it is, or a transport failure as UNAVAILABLE, which for a call cut off
   * says so (and, for an rpc with an effect, that its outcome is unknown).
   * `cancelledByCaller`: the caller cancelled it, so CANCELLED is no failure of the link.
   */
  static fromStatus(
    status: { code: grpc.status; details?: string; metadata?: grpc.Metadata },
    address: string,
    options: { rpc?: string; cancelledByCaller?: boolean } = {},
  ): KvClientError {
    const details = status.details ?? "";
    const transport = transportFailureOf(status.code, details, options.cancelledByCaller);
    const hasEffect = !RPCS_WITHOUT_EFFECT.has(options.rpc ?? "");
    if (transport === null) {
      // A write whose deadline passed may have been applied all the same, just not in time;
      // a router says so of a write its shard's connection cut off (the trailer).
      const outcomeUnknown = (hasEffect && status.code === grpc.status.DEADLINE_EXCEEDED) ||
        status.metadata?.get(OUTCOME_METADATA_KEY)[0] === OUTCOME_UNKNOWN;
      return new KvClientError(status.code, details, address, { outcomeUnknown });
    }
    if (transport === "unreached") {
      return new KvClientError(grpc.status.UNAVAILABLE, details, address, { transport, transportDetails: details });
    }
    return new KvClientError(
      grpc.status.UNAVAILABLE,
      `Connection lost during the call (${details})` + (hasEffect ? "; it may or may not have been applied" : ""),
      address,
      { transport, transportDetails: details, outcomeUnknown: hasEffect },
    );
  }
}

export class KvClient {
  readonly address: string;
  #client: grpc.Client;
  #deadlineMs: number;
  #ownsChannel = true;
  /** Set only while withDeadline constructs a view, to hand it the channel to share. */
  static #sharedChannel: grpc.Client | undefined;

  constructor(address: string, options: KvClientOptions = {}) {
    this.address = address;
    this.#client = KvClient.#sharedChannel ?? createKvstoreClient(address, options.limits ?? CLIENT_TRANSPORT_LIMITS, {
      ownConnection: options.ownConnection,
    });
    this.#deadlineMs = options.deadlineMs ?? CLIENT_CALL_DEADLINE_MS_DEFAULT;
  }

  /** A client on this one's connection whose calls have `deadlineMs` instead; closing
   * it leaves the connection open. Cheap: for a call with a deadline of its own. */
  withDeadline(deadlineMs: number): KvClient {
    KvClient.#sharedChannel = this.#client;
    try {
      const view = new KvClient(this.address, { deadlineMs });
      view.#ownsChannel = false;
      return view;
    } finally {
      KvClient.#sharedChannel = undefined;
    }
  }

  /** The value of `key`, or undefined when it does not exist. */
  async get(key: string): Promise<string | undefined> {
    const response = await this.call<GetResponse>("Get", { key });
    return response.found ? response.value : undefined;
  }

  /** Sets `key` to `value`, clearing any TTL; with `ttlMs`, gives it that TTL in the same
   * write (through MSet, so no reader ever sees the key without its deadline). */
  async set(key: string, value: string, options: { ttlMs?: number } = {}): Promise<boolean> {
    if (options.ttlMs !== undefined) return (await this.mset([{ key, value, ttlMs: options.ttlMs }])) === 1;
    return (await this.call<SetResponse>("Set", { key, value })).success;
  }

  async contains(key: string): Promise<boolean> {
    return (await this.call<ContainsResponse>("Contains", { key })).exists;
  }

  /** Deletes `key`; resolves with whether it existed. */
  async delete(key: string): Promise<boolean> {
    return (await this.call<DeleteResponse>("Delete", { key })).found;
  }

  /** Gives `key` a TTL; resolves with whether the key existed. */
  async expire(key: string, seconds: number): Promise<boolean> {
    return (await this.call<ExpireResponse>("Expire", { key, seconds })).success;
  }

  /** Seconds left on `key`: -1 when it has no TTL, -2 when it does not exist. */
  async ttl(key: string): Promise<number> {
    return (await this.call<TtlResponse>("TTL", { key })).seconds;
  }

  /** The values of `keys`, in order; undefined where a key does not exist. */
  async mget(keys: readonly string[]): Promise<(string | undefined)[]> {
    const response = await this.call<MGetResponse>("MGet", { keys });
    return response.values.map((value) => value.found ? value.value : undefined);
  }

  /** Writes every entry, all or none; resolves with the number written. */
  async mset(entries: readonly EntryInput[]): Promise<number> {
    const response = await this.call<MSetResponse>("MSet", {
      entries: entries.map((entry) => ({
        key: entry.key,
        value: entry.value,
        expires_at_ms: entry.expiresAtMs ?? 0,
        ttl_ms: entry.ttlMs ?? 0,
      })),
    });
    return Number(response.count);
  }

  /** One page of a scan. Pass the returned cursor to get the next; "" means done. */
  async scan(
    options: { cursor?: string; prefix?: string; limit?: number; includeValues?: boolean } = {},
  ): Promise<{ entries: ScannedEntry[]; cursor: string }> {
    const response = await this.call<ScanResponse>("Scan", {
      cursor: options.cursor ?? "",
      prefix: options.prefix ?? "",
      limit: options.limit ?? 0,
      include_values: options.includeValues ?? false,
    });
    return {
      cursor: response.cursor,
      entries: response.entries.map((entry) => ({
        key: entry.key,
        value: entry.value,
        expiresAtMs: Number(entry.expires_at_ms) === 0 ? null : Number(entry.expires_at_ms),
      })),
    };
  }

  /** Every key (with values when asked) with `prefix`, page by page. */
  scanAll(options: ScanAllOptions = {}): AsyncGenerator<ScannedEntry> {
    return scanPages((scan) => this.scan(scan), options);
  }

  info(): Promise<InfoResponse> {
    return this.call<InfoResponse>("Info", {});
  }

  /**
   * Waits until `numReplicas` replicas acknowledged every write the master had committed
   * when the call arrived (Redis's WAIT), or `timeoutMs` passed (0: up to an hour).
   * Resolves with how many had, and the master's seq they were asked for. Call it on the
   * master after writes that must not be lost if the master fails.
   */
  async wait(
    numReplicas: number,
    timeoutMs: number,
    options: { deadlineMs?: number; signal?: AbortSignal } = {},
  ): Promise<{ replicas: number; seq: number }> {
    const response = await this.call<WaitResponse>(
      "Wait",
      { num_replicas: numReplicas, timeout_ms: timeoutMs },
      options.deadlineMs ?? timeoutMs + this.#deadlineMs,
      options.signal,
    );
    return { replicas: response.replicas, seq: Number(response.seq) };
  }

  /** Turns the replica at this address into a master that keeps its data and starts a
   * new history (a master answers `promoted: false`). */
  promote(): Promise<PromoteResponse> {
    return this.call<PromoteResponse>("Promote", {});
  }

  /** Makes the node at this address a replica of `masterAddress` (its data is replaced
   * by that master's). */
  replicaOf(masterAddress: string): Promise<ReplicaOfResponse> {
    return this.call<ReplicaOfResponse>("ReplicaOf", { master_address: masterAddress });
  }

  /** Asks the node to write a snapshot now; resolves once it is durable. Snapshots of
   * large datasets take a while: pass a deadline to suit. */
  snapshot(deadlineMs?: number): Promise<SnapshotResponse> {
    return this.call<SnapshotResponse>("Snapshot", {}, deadlineMs);
  }

  /** The order-independent hash of the node's live entries, with its key count, seq and
   * replid. */
  digest(): Promise<DigestResponse> {
    return this.call<DigestResponse>("Digest", {});
  }

  /**
   * Sends one write to a replica the way the C++ store's master pushes them
   * (ReplicateCommand, for replicas of a master started with --replicas). Resolves with
   * whether the replica applied it and the last seq it has applied; a master refuses it.
   */
  async replicateCommand(command: {
    type: CommandType;
    key: string;
    value?: string;
    seconds?: number;
    seq: number;
  }): Promise<{ success: boolean; lastAppliedSeq: number }> {
    const response = await this.call<ReplicationResponse>("ReplicateCommand", {
      type: command.type,
      key: command.key,
      value: command.value ?? "",
      seconds: command.seconds ?? 0,
      sequence_id: String(command.seq),
    });
    return { success: response.success, lastAppliedSeq: Number(response.last_applied_sequence) };
  }

  /**
   * Follows a master's writes from `startSeq` the way the C++ store's pull clients do
   * (StreamReplication): yields each command as the master sends it, those in its
   * backlog first, then each new write. The stream has no deadline: it lasts while it
   * is read, and ending the iteration cancels it. It is read as it is consumed, so a
   * slow reader holds the master back rather than growing a buffer here. Fails with a
   * KvClientError (FAILED_PRECONDITION when the backlog no longer reaches `startSeq`).
   */
  async *streamReplication(startSeq: number, replicaId = ""): AsyncGenerator<ReplicationCommand> {
    const method = (this.#client as unknown as Record<string, StreamMethod<ReplicationCommand>>).StreamReplication;
    const call = method.call(
      this.#client,
      { start_sequence: String(startSeq), replica_id: replicaId },
      new grpc.Metadata(),
      {},
    );
    try {
      for await (const command of call) yield command as ReplicationCommand;
    } catch (error) {
      const status = error as Partial<grpc.ServiceError>;
      if (typeof status.code !== "number") throw error;
      throw KvClientError.fromStatus({ code: status.code, details: status.details ?? String(error) }, this.address, {
        rpc: "StreamReplication",
      });
    } finally {
      call.cancel();
    }
  }

  /** Makes a unary call by rpc name; the building block of the methods above. Rejects
   * with INVALID_ARGUMENT, sending nothing, when an int32 field of the request holds a
   * number it cannot carry. Aborting `signal` cancels the call (it rejects CANCELLED). */
  call<Response>(
    rpc: string,
    request: object,
    deadlineMs = this.#deadlineMs,
    signal?: AbortSignal,
  ): Promise<Response> {
    const method = (this.#client as unknown as Record<string, UnaryMethod<Response>>)[rpc];
    if (typeof method !== "function") {
      return Promise.reject(new Error(`client: Unknown rpc ${JSON.stringify(rpc)}`));
    }
    const outOfRange = int32Problem(rpc, request as Record<string, unknown>);
    if (outOfRange !== undefined) {
      return Promise.reject(new KvClientError(grpc.status.INVALID_ARGUMENT, outOfRange, this.address));
    }
    if (signal?.aborted) {
      return Promise.reject(
        new KvClientError(grpc.status.CANCELLED, "client: Cancelled before it was sent", this.address),
      );
    }
    return new Promise((resolve, reject) => {
      const cancel = () => call.cancel();
      const call = method.call(
        this.#client,
        request,
        new grpc.Metadata(),
        { deadline: Date.now() + deadlineMs },
        (error: grpc.ServiceError | null, response?: Response) => {
          signal?.removeEventListener("abort", cancel);
          if (error !== null) {
            reject(KvClientError.fromStatus(error, this.address, { rpc, cancelledByCaller: signal?.aborted }));
          } else {
            resolve(response!);
          }
        },
      );
      signal?.addEventListener("abort", cancel, { once: true });
    });
  }

  /** Waits until the channel is connected, or rejects after `timeoutMs`. */
  waitForReady(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#client.waitForReady(Date.now() + timeoutMs, (error) => error ? reject(error) : resolve());
    });
  }

  close(): void {
    if (this.#ownsChannel) this.#client.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** The range of a proto3 int32. */
export const INT32_MIN = -(2 ** 31);
export const INT32_MAX = 2 ** 31 - 1;

/** The int32 request fields of each rpc, looked up once. */
const int32FieldsByRpc = new Map<string, readonly string[]>();

/**
 * Why `request` cannot be sent as `rpc`'s request, or undefined when it can. protobufjs
 * encodes an int32 field as the low 32 bits of the number it is given, so Expire with
 * 4294967296 seconds would arrive as 0 seconds, which deletes the key, and 1.5 as 1:
 * those are refused here instead of being sent as something else.
 */
function int32Problem(rpc: string, request: Readonly<Record<string, unknown>>): string | undefined {
  let fields = int32FieldsByRpc.get(rpc);
  if (fields === undefined) int32FieldsByRpc.set(rpc, fields = int32RequestFieldsOf(rpc));
  for (const field of fields) {
    const value = request[field];
    if (value === undefined || value === null) continue;
    const number = Number(value);
    if (Number.isInteger(number) && number >= INT32_MIN && number <= INT32_MAX) continue;
    return `client: Cannot call ${rpc}: ${field} ${String(value)} is not a whole number from ` +
      `${INT32_MIN} to ${INT32_MAX}, the range of its int32 field`;
  }
  return undefined;
}

type StreamMethod<Response> = (
  request: object,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
) => grpc.ClientReadableStream<Response>;

type UnaryMethod<Response> = (
  request: object,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, response?: Response) => void,
) => grpc.ClientUnaryCall;
