/**
 * What the router's core needs from one shard: unary rpcs of kvstore.KeyValueStore by
 * name, with a deadline, on the master or (for reads, when asked) a replica.
 *
 * The gRPC implementation is shard_link.ts; tests use memory_shard.ts. Keeping the core
 * behind this seam lets its routing and migration rules be tested with thousands of
 * interleavings in milliseconds, without processes.
 *
 * @module
 */

import type { ShardSpec } from "./shard_spec.ts";

/** Where a read may be served: the shard's master (always current) or one of its
 * replicas (may lag behind the master). Writes always go to the master. */
export type ReadFrom = "master" | "replica";

export const READ_FROM_CHOICES: readonly ReadFrom[] = ["master", "replica"];

/** gRPC metadata key a client sets to "replica" to let the router serve its reads from
 * replicas (e.g. `grpcurl -H 'kvstore-read-from: replica' ...`). */
export const READ_FROM_METADATA_KEY = "kvstore-read-from";

export interface CallContext {
  /** Absolute deadline of the call, unix ms. */
  readonly deadlineMs: number;
  /** Where reads go. Ignored by writes. */
  readonly readFrom: ReadFrom;
}

export interface ShardApi {
  readonly spec: ShardSpec;

  /**
   * Makes the unary rpc `rpc` on the shard and resolves with its response. Rejects with
   * a KvError: UNAVAILABLE or DEADLINE_EXCEEDED naming the shard when it cannot be
   * reached in time, or the shard's own status and message when it refused the call.
   * With `readFrom: "replica"` the call goes to a replica if the shard has one that
   * answers, else to the master; only read rpcs may ask for that.
   */
  call<Response>(rpc: string, request: object, context: CallContext): Promise<Response>;

  /** Closes the shard's connections. */
  close(): void;
}
