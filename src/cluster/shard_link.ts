/**
 * The router's connection to one shard: a gRPC channel to its master and one to each
 * replica, made through src/transport/grpc.ts.
 *
 * Failing fast: a call on a channel that is not connected waits at most the connect
 * timeout (1 s by default) for the connection, then fails with UNAVAILABLE naming the
 * shard, rather than hanging until the caller's deadline. Channels reconnect with a
 * backoff capped at one second, so a shard that comes back is used again promptly.
 *
 * Replica reads: a read asked for with readFrom "replica" goes to the shard's replicas in
 * turn; if the replica chosen cannot be reached, or does not answer within half the
 * call's time, the master answers instead, since a read from a replica is an
 * optimization, not a requirement. A replica that has not finished its first sync is
 * passed over (it would say "not found" for keys that exist): its Info is asked before
 * a read goes there, at most once per CLIENT_REPLICA_SYNC_CHECK_MS.
 *
 * Errors: a shard that cannot be reached or does not answer in time becomes UNAVAILABLE
 * or DEADLINE_EXCEEDED with a message naming the shard and its address; a shard's own
 * refusal (INVALID_ARGUMENT for an empty key, and so on) passes through unchanged, so a
 * client sees through the router exactly what a node would have told it. A shard's own
 * UNAVAILABLE (loading its dataset, its log failing) stays UNAVAILABLE, named as the
 * shard's refusal rather than as a shard the router cannot reach.
 *
 * @module
 */

import {
  CLIENT_REPLICA_SYNC_CHECK_MS,
  ROUTER_RECONNECT_BACKOFF_MS_INITIAL,
  ROUTER_RECONNECT_BACKOFF_MS_MAX,
} from "../config/limits.ts";
import { type ErrorCode, isLoadingRefusal, isServerMessage, KvError, quote } from "../errors.ts";
import { createKvstoreClient, grpc, type TransportLimits } from "../transport/grpc.ts";
import type { InfoResponse } from "../transport/messages.ts";
import { ReplicaSyncCache, syncVerdict } from "./replica_sync.ts";
import type { CallContext, ShardApi } from "./shard_api.ts";
import type { ShardSpec } from "./shard_spec.ts";

/** Rpcs that only read, and so may be served by a replica. */
const READ_RPCS: ReadonlySet<string> = new Set(["Get", "Contains", "TTL", "MGet"]);

/** Statuses a shard answers with that the router passes on as they are. */
const PASSED_THROUGH: ReadonlySet<string> = new Set<ErrorCode>([
  "INVALID_ARGUMENT",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "NOT_FOUND",
  "INTERNAL",
  "UNIMPLEMENTED",
]);

export interface ShardLinkOptions {
  /** How long a call waits for a connection to the shard, in ms. */
  readonly connectTimeoutMs: number;
  readonly limits: TransportLimits;
}

interface Endpoint {
  readonly address: string;
  readonly client: grpc.Client;
}

type UnaryMethod = (
  request: object,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, response?: unknown) => void,
) => void;

export class ShardLink implements ShardApi {
  readonly spec: ShardSpec;
  #master: Endpoint;
  #replicas: Endpoint[];
  #nextReplica = 0;
  #replicaSync = new ReplicaSyncCache({ clock: Date.now, checkMs: CLIENT_REPLICA_SYNC_CHECK_MS });
  #connectTimeoutMs: number;

  constructor(spec: ShardSpec, options: ShardLinkOptions) {
    this.spec = spec;
    this.#connectTimeoutMs = options.connectTimeoutMs;
    const endpoint = (address: string): Endpoint => ({
      address,
      client: createKvstoreClient(address, options.limits, {
        reconnect: { initialMs: ROUTER_RECONNECT_BACKOFF_MS_INITIAL, maxMs: ROUTER_RECONNECT_BACKOFF_MS_MAX },
      }),
    });
    this.#master = endpoint(spec.master);
    this.#replicas = spec.replicas.map(endpoint);
  }

  async call<Response>(rpc: string, request: object, context: CallContext): Promise<Response> {
    if (context.readFrom === "replica" && this.#replicas.length > 0 && READ_RPCS.has(rpc)) {
      const address = this.#replicaSync.choose(this.spec.replicas, this.#nextReplica++);
      const replica = this.#replicas.find((endpoint) => endpoint.address === address);
      // Half the call's time (its Info check included): a replica that hangs leaves the
      // master the other half.
      const replicaDeadlineMs = Date.now() + (context.deadlineMs - Date.now()) / 2;
      try {
        if (replica !== undefined && await this.#synced(replica, replicaDeadlineMs)) {
          return await this.#callOn<Response>(replica, rpc, request, replicaDeadlineMs);
        }
      } catch (error) {
        const unreachable = error instanceof KvError &&
          (error.code === "UNAVAILABLE" || error.code === "DEADLINE_EXCEEDED");
        if (!unreachable) throw error;
      }
    }
    return await this.#callOn<Response>(this.#master, rpc, request, context.deadlineMs);
  }

  close(): void {
    this.#master.client.close();
    for (const replica of this.#replicas) replica.client.close();
  }

  /** Whether `replica` has finished its first sync, asking its Info when what the link
   * knows is too old. False when the Info call fails, however it fails: the read is
   * the master's then, and the replica is asked again on the next one. */
  async #synced(replica: Endpoint, deadlineMs: number): Promise<boolean> {
    let verdict = this.#replicaSync.known(replica.address);
    if (verdict === undefined) {
      try {
        verdict = syncVerdict(await this.#callOn<InfoResponse>(replica, "Info", {}, deadlineMs));
      } catch {
        return false;
      }
      this.#replicaSync.record(replica.address, verdict);
    }
    return verdict === "synced";
  }

  async #callOn<Response>(endpoint: Endpoint, rpc: string, request: object, deadlineMs: number): Promise<Response> {
    await this.#connected(endpoint, deadlineMs);
    const method = (endpoint.client as unknown as Record<string, UnaryMethod>)[rpc];
    if (typeof method !== "function") throw new Error(`router: Unknown rpc ${JSON.stringify(rpc)}`);
    const started = Date.now();
    return await new Promise<Response>((resolve, reject) => {
      method.call(endpoint.client, request, new grpc.Metadata(), { deadline: deadlineMs }, (error, response) => {
        if (error === null) resolve(response as Response);
        else reject(this.#failure(endpoint, error, Date.now() - started));
      });
    });
  }

  /** Resolves once `endpoint` is connected; rejects with UNAVAILABLE if that takes more
   * than the connect timeout (or the call's deadline, if sooner). */
  async #connected(endpoint: Endpoint, deadlineMs: number): Promise<void> {
    const channel = endpoint.client.getChannel();
    if (channel.getConnectivityState(true) === grpc.connectivityState.READY) return;
    const waitMs = Math.max(0, Math.min(this.#connectTimeoutMs, deadlineMs - Date.now()));
    await new Promise<void>((resolve, reject) => {
      endpoint.client.waitForReady(Date.now() + waitMs, (error) => {
        if (error === undefined || error === null) return resolve();
        reject(unavailable(
          this.spec.name,
          endpoint.address,
          `no connection within ${waitMs} ms (is it running, and is the address right?)`,
        ));
      });
    });
  }

  #failure(endpoint: Endpoint, error: grpc.ServiceError, elapsedMs: number): KvError {
    const codeName = grpc.status[error.code] ?? `STATUS_${error.code}`;
    // A kvstore server's own refusals start with their subsystem; the transport's own
    // messages do not.
    const fromShard = isServerMessage(error.details);
    if (error.code === grpc.status.UNAVAILABLE && fromShard) {
      return new KvError("UNAVAILABLE", refusedBy(this.spec.name, endpoint.address, error.details));
    }
    if (error.code === grpc.status.UNAVAILABLE || error.code === grpc.status.CANCELLED) {
      return unavailable(this.spec.name, endpoint.address, error.details);
    }
    if (error.code === grpc.status.DEADLINE_EXCEEDED) {
      return new KvError(
        "DEADLINE_EXCEEDED",
        `router: The call's deadline passed before shard ${quote(this.spec.name)} at ${endpoint.address} answered ` +
          `(waited ${elapsedMs} ms for it)`,
      );
    }
    // INTERNAL or UNKNOWN without a subsystem is the transport failing mid-call (a stream
    // reset as the shard died), which the caller should hear as the shard unreachable.
    if (!fromShard && (error.code === grpc.status.INTERNAL || error.code === grpc.status.UNKNOWN)) {
      return unavailable(this.spec.name, endpoint.address, error.details);
    }
    if (PASSED_THROUGH.has(codeName)) return new KvError(codeName as ErrorCode, error.details);
    return new KvError("INTERNAL", `router: Shard ${quote(this.spec.name)} answered ${codeName}: ${error.details}`);
  }
}

/** The message for a shard that was reached but answered UNAVAILABLE itself, with its
 * reason (which says when to retry). */
export function refusedBy(name: string, address: string, detail: string): string {
  if (isLoadingRefusal(detail)) {
    return `router: Shard ${
      quote(name)
    } at ${address} is loading its dataset, and serves its keys once loaded: ${detail}`;
  }
  return `router: Shard ${quote(name)} at ${address} cannot take the call now: ${detail}`;
}

/** The error for a shard that cannot be reached. */
export function unavailable(name: string, address: string, detail: string): KvError {
  return new KvError(
    "UNAVAILABLE",
    `router: Cannot reach shard ${quote(name)} at ${address}: ${detail}; ` +
      `the keys it owns are unavailable until it answers again`,
  );
}
