/**
 * The services every node serves beside kvstore.KeyValueStore, for operators and their
 * tools: grpc.health.v1.Health (load balancers, Kubernetes probes, `kvstore health`) and
 * gRPC server reflection v1 and v1alpha (grpcurl, Postman, evans).
 *
 * @module
 */

import { reflectionHandler, ReflectionIndex } from "../transport/reflection.ts";
import {
  addService,
  type grpc,
  healthServiceDefinition,
  PROTO_FILES,
  reflectionServiceDefinitions,
  serviceNames,
} from "../transport/grpc.ts";
import { type Health, healthHandlers } from "./health.ts";

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
