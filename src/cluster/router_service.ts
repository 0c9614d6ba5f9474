/**
 * The router's gRPC handlers: kvstore.KeyValueStore as a node serves it, each call
 * carried out on the shards by the {@linkcode RouterCore}, plus the cluster rpcs.
 *
 * Every forwarded call keeps the client's deadline, a little earlier so the router's
 * answer naming a shard that did not answer reaches the client in time (and capped at
 * ROUTER_FORWARD_DEADLINE_MS, so a hung shard cannot hold a call forever), and reads
 * honour the metadata `kvstore-read-from: replica|master`, else the router's
 * --read-from.
 *
 * AddShard and RemoveShard stream the change's progress: the current status at once,
 * then every update (at most every MIGRATION_PROGRESS_INTERVAL_MS, and at least that
 * often as a heartbeat), ending after the "done" message. A caller that goes away stops
 * watching; the change goes on.
 *
 * @module
 */

import {
  MIGRATION_PROGRESS_INTERVAL_MS,
  ROUTER_DEADLINE_MARGIN_MS_MAX,
  ROUTER_FORWARD_DEADLINE_MS,
} from "../config/limits.ts";
import { UsageError } from "../config/usage_error.ts";
import { invalidArgument, KvError, quote } from "../errors.ts";
import type { Logger } from "../logging/logger.ts";
import { toServiceError, unaryHandler } from "../server/status.ts";
import type { grpc } from "../transport/grpc.ts";
import type {
  ClusterChangeRequest,
  ClusterStatusResponse,
  ContainsResponse,
  DeleteResponse,
  DigestResponse,
  ExpireRequest,
  ExpireResponse,
  GetResponse,
  InfoRequest,
  InfoResponse,
  KeyRequest,
  MGetRequest,
  MGetResponse,
  MigrationStatus,
  MSetRequest,
  MSetResponse,
  ReplicationCommand,
  ReplicationResponse,
  ScanRequest,
  ScanResponse,
  SetRequest,
  SetResponse,
  TtlResponse,
} from "../transport/messages.ts";
import type { ClusterAdmin } from "./cluster_admin.ts";
import type { RouterCore } from "./router_core.ts";
import { type CallContext, READ_FROM_METADATA_KEY, type ReadFrom } from "./shard_api.ts";
import { parseShardSpec } from "./shard_spec.ts";

export interface RouterServiceParts {
  readonly core: RouterCore;
  readonly admin: ClusterAdmin;
  readonly readFrom: ReadFrom;
  /** What the Info rpc answers, asking the shards until `deadlineMs` (unix ms) at most. */
  readonly info: (deadlineMs: number) => Promise<InfoResponse>;
  readonly logger: Logger;
}

/** grpc-js handlers by rpc name. */
export type Handlers = Record<string, grpc.UntypedHandleCall>;

export function routerHandlers(parts: RouterServiceParts): Handlers {
  const { core, admin, logger } = parts;
  const context = (call: grpc.ServerUnaryCall<unknown, unknown>) => callContext(call, parts.readFrom);
  return {
    Get: unaryHandler<KeyRequest, GetResponse>("Get", logger, (request, call) => core.get(request, context(call))),
    Set: unaryHandler<SetRequest, SetResponse>("Set", logger, (request, call) => core.set(request, context(call))),
    Contains: unaryHandler<KeyRequest, ContainsResponse>(
      "Contains",
      logger,
      (request, call) => core.contains(request, context(call)),
    ),
    Delete: unaryHandler<KeyRequest, DeleteResponse>(
      "Delete",
      logger,
      (request, call) => core.delete(request, context(call)),
    ),
    Expire: unaryHandler<ExpireRequest, ExpireResponse>(
      "Expire",
      logger,
      (request, call) => core.expire(request, context(call)),
    ),
    TTL: unaryHandler<KeyRequest, TtlResponse>("TTL", logger, (request, call) => core.ttl(request, context(call))),
    MGet: unaryHandler<MGetRequest, MGetResponse>("MGet", logger, (request, call) => core.mget(request, context(call))),
    MSet: unaryHandler<MSetRequest, MSetResponse>("MSet", logger, (request, call) => core.mset(request, context(call))),
    Scan: unaryHandler<ScanRequest, ScanResponse>("Scan", logger, (request, call) => core.scan(request, context(call))),
    // Info and ClusterStatus ask every shard: within the caller's deadline (less the
    // margin callDeadlineMs keeps), so the answer arrives while the caller still listens.
    Info: unaryHandler<InfoRequest, InfoResponse>("Info", logger, (_, call) => parts.info(callDeadlineMs(call))),
    ReplicateCommand: unaryHandler<ReplicationCommand, ReplicationResponse>("ReplicateCommand", logger, () => {
      throw notForRouter("ReplicateCommand");
    }),
    StreamReplication: (call: grpc.ServerWritableStream<unknown, unknown>) => {
      call.emit("error", toServiceError(notForRouter("StreamReplication"), "StreamReplication", logger));
    },
    Sync: (call: grpc.ServerDuplexStream<unknown, unknown>) => {
      call.emit("error", toServiceError(notForRouter("Sync"), "Sync", logger));
    },
    Digest: unaryHandler<Record<string, never>, DigestResponse>("Digest", logger, () => admin.digest()),
    Snapshot: unaryHandler("Snapshot", logger, () => {
      throw perShard("Snapshot", "kvstore snapshot");
    }),
    Promote: unaryHandler("Promote", logger, () => {
      throw perShard("Promote", "kvstore promote");
    }),
    ReplicaOf: unaryHandler("ReplicaOf", logger, () => {
      throw perShard("ReplicaOf", "kvstore replicaof");
    }),
    Wait: unaryHandler("Wait", logger, () => {
      throw perShard("Wait", "kvstore wait");
    }),
    ClusterStatus: unaryHandler<Record<string, never>, ClusterStatusResponse>(
      "ClusterStatus",
      logger,
      (_, call) => admin.status(callDeadlineMs(call)),
    ),
    AddShard: (call: grpc.ServerWritableStream<ClusterChangeRequest, MigrationStatus>) => {
      streamProgress(call, admin, logger, "AddShard", async () => {
        const shard = parseRequestShard(call.request.shard, "add");
        await admin.addShard(shard, { force: call.request.force });
        return null;
      });
    },
    RemoveShard: (call: grpc.ServerWritableStream<ClusterChangeRequest, MigrationStatus>) => {
      streamProgress(call, admin, logger, "RemoveShard", async () => {
        const reference = call.request.shard.trim();
        if (reference === "") throw invalidArgument("cluster: Cannot remove a shard: name the shard (or its master)");
        const outcome = await admin.removeShard(reference, { forget: call.request.forget });
        if (outcome === "moving") return null;
        // Forgetting moves nothing: the change is done as soon as it is recorded.
        return {
          kind: "remove",
          shard: reference,
          started_at_ms: Date.now(),
          state: "done",
          error: "",
          keys_moved: 0,
          keys_to_move: 0,
          keys_scanned: 0,
          keys_to_scan: 0,
          finished_at_ms: Date.now(),
        };
      });
    },
  };
}

/** The deadline and read preference a forwarded call carries. The deadline is the
 * client's less a margin (see ROUTER_DEADLINE_MARGIN_MS_MAX), so that a shard that does
 * not answer is named to a client that is still waiting. */
function callContext(call: grpc.ServerUnaryCall<unknown, unknown>, readFrom: ReadFrom): CallContext {
  const asked = call.metadata.get(READ_FROM_METADATA_KEY)[0];
  if (asked !== undefined && asked !== "master" && asked !== "replica") {
    throw invalidArgument(
      `router: Invalid metadata ${READ_FROM_METADATA_KEY} ${quote(String(asked))}: expected master or replica`,
    );
  }
  return { deadlineMs: callDeadlineMs(call), readFrom: (asked as ReadFrom | undefined) ?? readFrom };
}

/** How long the router may spend on a call's shards (unix ms): the client's deadline less
 * a margin to answer in, capped at ROUTER_FORWARD_DEADLINE_MS from now. */
function callDeadlineMs(call: grpc.ServerUnaryCall<unknown, unknown>): number {
  const deadline = call.getDeadline();
  const nowMs = Date.now();
  let clientMs = deadline instanceof Date ? deadline.getTime() : Number(deadline);
  if (Number.isFinite(clientMs)) clientMs -= Math.min(ROUTER_DEADLINE_MARGIN_MS_MAX, (clientMs - nowMs) / 10);
  const capMs = nowMs + ROUTER_FORWARD_DEADLINE_MS;
  return Number.isFinite(clientMs) ? Math.min(clientMs, capMs) : capMs;
}

function parseRequestShard(text: string, action: string) {
  try {
    return parseShardSpec(text, "shard");
  } catch (error) {
    if (error instanceof UsageError) throw invalidArgument(`cluster: Cannot ${action} a shard: ${error.message}`);
    throw error;
  }
}

/** The refusal of an operation that belongs to each shard's nodes, not to the router. */
function perShard(rpc: string, command: string): KvError {
  return new KvError(
    "UNIMPLEMENTED",
    `router: ${rpc} acts on one node: run ${command} --endpoint HOST:PORT on each shard's node ` +
      "(kvstore cluster status lists them)",
  );
}

function notForRouter(rpc: string): KvError {
  return new KvError(
    "UNIMPLEMENTED",
    `router: ${rpc} is not served by a router; replicas follow a shard's master directly`,
  );
}

/**
 * Runs `start` (which records a change), then streams the change's progress until it is
 * done. `start` may resolve with a final status (a change that moved nothing).
 */
function streamProgress(
  call: grpc.ServerWritableStream<ClusterChangeRequest, MigrationStatus>,
  admin: ClusterAdmin,
  logger: Logger,
  rpc: string,
  start: () => Promise<MigrationStatus | null>,
): void {
  let finished = false;
  let lastWriteMs = 0;
  let heartbeat: ReturnType<typeof setInterval> | undefined;
  const write = (status: MigrationStatus) => {
    if (finished) return;
    lastWriteMs = Date.now();
    call.write(status);
    if (status.state === "done") finish(null);
  };
  const finish = (error: unknown) => {
    if (finished) return;
    finished = true;
    unsubscribe();
    clearInterval(heartbeat);
    if (error === null) call.end();
    else call.emit("error", toServiceError(error, rpc, logger));
  };
  // Watch before starting, so no update between the start and the first write is lost.
  const unsubscribe = admin.watch(write);
  call.on("cancelled", () => {
    finished = true;
    unsubscribe();
    clearInterval(heartbeat);
  });
  start().then((final) => {
    // The caller may have gone while the change was checked and recorded.
    if (finished) return;
    if (final !== null) return write(final);
    const current = admin.current();
    // No change running: it finished before this call could watch it.
    if (current === null) return finish(null);
    write(current);
    if (finished) return; // a "done" status ends the stream at once
    heartbeat = setInterval(() => {
      const status = admin.current();
      if (status === null) {
        // The change stopped without finishing: the router is shutting down (it resumes
        // the change when it starts again), or its shard was forgotten.
        finish(
          new KvError(
            "UNAVAILABLE",
            "cluster: The change stopped before it was done (the router is stopping, or the shard was forgotten); " +
              "see kvstore cluster status",
          ),
        );
      } else if (Date.now() - lastWriteMs >= MIGRATION_PROGRESS_INTERVAL_MS) {
        write(status);
      }
    }, MIGRATION_PROGRESS_INTERVAL_MS);
  }, finish);
}
