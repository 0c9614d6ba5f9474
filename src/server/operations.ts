/**
 * The services every node serves beside kvstore.KeyValueStore, for operators and their
 * tools: grpc.health.v1.Health (load balancers, Kubernetes probes, `kvstore health`) and
 * gRPC server reflection v1 and v1alpha (grpcurl, Postman, evans); and the Info fields
 * that describe the process, which a node and a router report alike.
 *
 * @module
 */

import { formatAddress } from "../config/address.ts";
import type { MetricsServer } from "../metrics/http.ts";
import { reflectionHandler, ReflectionIndex } from "../transport/reflection.ts";
import type { InfoResponse } from "../transport/messages.ts";
import {
  addService,
  countConnections,
  type grpc,
  healthServiceDefinition,
  PROTO_FILES,
  reflectionServiceDefinitions,
  serviceNames,
} from "../transport/grpc.ts";
import { type Health, healthHandlers } from "./health.ts";
import type { RpcMetrics } from "./node_metrics.ts";

let reflectionIndex: ReflectionIndex | undefined;

/** Adds health and reflection to `server`. Reflection lists every service added through
 * transport/grpc.ts's addService, whenever it was added. */
export function addOperationsServices(server: grpc.Server, health: Health): void {
  addService(server, healthServiceDefinition(), healthHandlers(health));
  reflectionIndex ??= new ReflectionIndex(PROTO_FILES);
  const index = reflectionIndex;
  for (const definition of reflectionServiceDefinitions()) {
    addService(server, definition, {
      ServerReflectionInfo: reflectionHandler(index, () => serviceNames(server)),
    });
  }
}

/** What {@linkcode processInfo} reports on. */
export interface ProcessParts {
  readonly server: grpc.Server;
  readonly health: Health;
  readonly metricsServer: MetricsServer | null;
  readonly rpcMetrics: RpcMetrics;
  readonly startedAtMs: number;
  readonly configFile: string | null;
}

export type ProcessInfo = Pick<
  InfoResponse,
  | "uptime_ms"
  | "rss_bytes"
  | "pid"
  | "runtime"
  | "started_at_ms"
  | "connections"
  | "heap_used_bytes"
  | "health"
  | "metrics_address"
  | "calls_total"
  | "config_file"
>;

/** Info's fields about the process (its memory, connections, health and calls), the same
 * for a node and a router. */
export function processInfo(parts: ProcessParts): ProcessInfo {
  const memory = Deno.memoryUsage();
  return {
    uptime_ms: Date.now() - parts.startedAtMs,
    rss_bytes: memory.rss,
    pid: Deno.pid,
    runtime: `deno ${Deno.version.deno}`,
    started_at_ms: parts.startedAtMs,
    connections: countConnections(parts.server),
    heap_used_bytes: memory.heapUsed,
    health: parts.health.status(""),
    metrics_address: parts.metricsServer === null ? "" : formatAddress(parts.metricsServer.address),
    calls_total: parts.rpcMetrics.total,
    config_file: parts.configFile ?? "",
  };
}
