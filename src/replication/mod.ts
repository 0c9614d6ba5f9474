/**
 * Replication: asynchronous master -> replica, with a bounded backlog, partialSync and
 * fullSync, compatibility push mode, manual failover and Wait.
 *
 * The node creates one {@linkcode Replication}, adds its handlers to the gRPC service and
 * starts it once listening. The pure parts (backlog, sync decision, the replica's
 * ordering rules, link state, the registry of replicas, wire forms) are exported for
 * tests and for the health and metrics code that reads replication's state.
 *
 * @module
 */

export { Replication, type ReplicationOptions } from "./replication.ts";
export { Backlog, type BacklogEntry } from "./backlog.ts";
export { type MasterPosition, planSync, type ReplicaPosition, type SyncPlan } from "./sync_plan.ts";
export { type ApplyVerdict, FOREIGN_REPLID, ReplicaApplier } from "./replica_applier.ts";
export { type LinkState, LinkStatus } from "./link_status.ts";
export { type ReplicaMode, ReplicaRegistry, type ReplicaStatus } from "./replica_registry.ts";
export { commandFromWire, commandToWire } from "./wire.ts";
