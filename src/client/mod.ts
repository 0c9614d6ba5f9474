/**
 * The client side of kvstore: the typed client library and the command line built on it.
 *
 * - {@linkcode KvClient}: one node, a promise per rpc, a deadline on every call.
 * - {@linkcode KvReplicaSetClient}: a master and its replicas; writes to the master,
 *   reads where asked, failover when a node is down.
 * - {@linkcode ShardedClient}: a sharded cluster without the router's hop: each key to
 *   its shard on the ring (the shard list given, or read from a router).
 * - {@linkcode ClusterClient}: a router's cluster status, and adding or removing a shard.
 * - {@linkcode HealthClient}: the standard gRPC health service of any node.
 * - ../transport/transport_failure.ts: which failed calls are the connection failing (UNAVAILABLE to
 *   callers), and whether the request may have been applied.
 * - cli.ts: the subcommands (`kvstore get`, `kvstore shell`, ...), one file each in
 *   commands/.
 *
 * @module
 */

export { type EntryInput, KvClient, KvClientError, type KvClientOptions, type ScannedEntry } from "./client.ts";
export { isConnectionFailure, KvReplicaSetClient, type ReplicaSetClientOptions } from "./replica_set_client.ts";
export { type TransportFailure, transportFailureOf } from "../transport/transport_failure.ts";
export { READ_FROM_CHOICES, type ReadFrom } from "./endpoint_table.ts";
export { type ReadOptions, ShardedClient, type ShardedClientOptions } from "./sharded_client.ts";
export { ClusterClient, type ClusterClientOptions } from "./cluster_client.ts";
export { HealthClient, type HealthWatch, type ServingStatus } from "./health_client.ts";
export { CLIENT_COMMANDS, commandsOverview, runClientCommand } from "./cli.ts";
