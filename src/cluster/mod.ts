/**
 * Sharding: the consistent-hash ring, routing by it, the router process and the
 * rebalancing that moves keys when shards come and go.
 *
 * Pure core: hash.ts (xxHash32), ring.ts (HashRing), shard_spec.ts, membership.ts,
 * topology.ts, key_locks.ts, scan_cursor.ts, router_core.ts (routing and the migration
 * protocol), migrator.ts, cluster_admin.ts, router_metrics.ts (the router's own
 * metrics). Shells: shard_link.ts (gRPC to a shard),
 * state_file.ts (the router's state on disk), router_service.ts, router.ts and
 * run_router.ts (the `kvstore router` process).
 *
 * @module
 */

export { hashString, xxHash32 } from "./hash.ts";
export { HashRing } from "./ring.ts";
export { findConflict, formatShardSpec, parseShardList, parseShardSpec, type ShardSpec } from "./shard_spec.ts";
export {
  completeMigration,
  initialMembership,
  type Membership,
  type Migration,
  type MigrationKind,
  startAdd,
  startRemove,
} from "./membership.ts";
export { type KeyRoute, Topology } from "./topology.ts";
export { type ClusterCursor, decodeClusterCursor, encodeClusterCursor } from "./scan_cursor.ts";
export {
  type CallContext,
  READ_FROM_CHOICES,
  READ_FROM_METADATA_KEY,
  type ReadFrom,
  type ShardApi,
} from "./shard_api.ts";
export { RouterCore } from "./router_core.ts";
export { type RouterConfig, routerUsage } from "./router_flags.ts";
export { Router } from "./router.ts";
export { runRouter } from "./run_router.ts";
export { STATE_FILE_NAME } from "./state_file.ts";
