/**
 * TypeScript shapes of the messages in proto/kvstore.proto, as proto-loader decodes
 * them with the options in proto.ts: field names as in the .proto, int64 fields as
 * decimal strings, enums by name, absent fields filled with their defaults.
 *
 * @module
 */

export interface KeyRequest {
  key: string;
}

export interface GetResponse {
  found: boolean;
  value: string;
}

export interface SetRequest {
  key: string;
  value: string;
}

export interface SetResponse {
  success: boolean;
}

export interface ContainsResponse {
  exists: boolean;
}

export interface DeleteResponse {
  success: boolean;
  found: boolean;
}

export interface ExpireRequest {
  key: string;
  seconds: number;
}

export interface ExpireResponse {
  success: boolean;
}

export interface TtlResponse {
  seconds: number;
}

export type CommandType = "SET" | "DELETE" | "EXPIRE";

export interface ReplicationCommand {
  type: CommandType;
  key: string;
  value: string;
  seconds: number;
  /** int64 as a decimal string. */
  sequence_id: string;
}

export interface ReplicationResponse {
  success: boolean;
  /** int64 as a decimal string. */
  last_applied_sequence: string;
}

export interface ReplicationStreamRequest {
  /** int64 as a decimal string. */
  start_sequence: string;
  replica_id: string;
}

export type InfoRequest = Record<string, never>;

export interface InfoResponse {
  role: string;
  version: string;
  address: string;
  /** int64 fields as decimal strings on the wire; numbers are accepted when sending. */
  uptime_ms: string | number;
  keys: string | number;
  expiring_keys: string | number;
  expired_keys: string | number;
  dataset_bytes: string | number;
  rss_bytes: string | number;
  replid: string;
  last_seq: string | number;
  master_address: string;
  /** Cluster: set by a router only (null from a node). */
  cluster?: ClusterStatusResponse | null;
}

export interface MGetRequest {
  keys: string[];
  /** Cluster: also return each key's deadline. */
  include_deadlines?: boolean;
}

export interface MGetResponse {
  values: GetResponse[];
  /** Cluster: with include_deadlines, each key's deadline (unix ms, 0 for none). */
  expires_at_ms?: (string | number)[];
}

/** Entry as decoded: int64 fields are decimal strings. When sending, numbers do too. */
export interface WireEntry {
  key: string;
  value: string;
  expires_at_ms: string | number;
  ttl_ms: string | number;
}

export interface MSetRequest {
  entries: WireEntry[];
  /** Cluster: write only entries whose key does not exist. */
  only_if_absent?: boolean;
}

export interface MSetResponse {
  success: boolean;
  count: string | number;
}

export interface ScanRequest {
  cursor: string;
  prefix: string;
  limit: number;
  include_values: boolean;
}

export interface ScanResponse {
  entries: WireEntry[];
  cursor: string;
}

// Cluster.

export type ClusterStatusRequest = Record<string, never>;

export interface ShardStatus {
  name: string;
  master: string;
  replicas: string[];
  /** "serving", "joining" or "leaving". */
  state: string;
  reachable: boolean;
  error: string;
  keys: string | number;
  dataset_bytes: string | number;
  ring_share: number;
}

export interface MigrationStatus {
  /** "add" or "remove". */
  kind: string;
  shard: string;
  started_at_ms: string | number;
  /** "moving", "waiting" or "done". */
  state: string;
  error: string;
  keys_moved: string | number;
  keys_to_move: string | number;
  keys_scanned: string | number;
  keys_to_scan: string | number;
  finished_at_ms: string | number;
}

export interface ClusterStatusResponse {
  epoch: string | number;
  vnodes: number;
  shards: ShardStatus[];
  /** null when no rebalancing is under way. */
  migration: MigrationStatus | null;
}

export interface ClusterChangeRequest {
  shard: string;
  force: boolean;
  forget: boolean;
}
