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
  /** Replication: absolute deadline in unix ms, 0 for none (int64 as a decimal string). */
  expires_at_ms?: string | number;
  /** Replication: the history the command belongs to; "" from the C++ store. */
  replid?: string;
}

export interface ReplicationResponse {
  success: boolean;
  /** int64 as a decimal string. */
  last_applied_sequence: string;
  /** Replication: the replica's history, and why a command was not applied. */
  replid?: string;
  detail?: string;
  /** Replication: the replica process, as in SyncRequest.replica_id. */
  replica_id?: string;
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
  // Operations (fields 60-79); a router leaves them unset.
  pid?: string | number;
  runtime?: string;
  started_at_ms?: string | number;
  connections?: string | number;
  heap_used_bytes?: string | number;
  health?: string;
  metrics_address?: string;
  calls_total?: string | number;
  config_file?: string;
  // Replication (see src/replication/status.ts for their meaning).
  link_state?: string;
  first_sync_done?: boolean;
  master_last_seq?: string | number;
  link_down_ms?: string | number;
  link_error?: string;
  replicas?: ReplicaStatusMessage[];
  backlog_bytes?: string | number;
  backlog_bytes_max?: string | number;
  backlog_first_seq?: string | number;
  previous_replid?: string;
  previous_replid_last_seq?: string | number;
  /** Cluster: set by a router only (null from a node). */
  cluster?: ClusterStatusResponse | null;
  // Persistence (fields 20-39).
  appendfsync?: string;
  log_bytes?: string | number;
  log_base_seq?: string | number;
  log_error?: string;
  last_snapshot_at_ms?: string | number;
  last_snapshot_status?: string;
  last_snapshot_duration_ms?: string | number;
  last_snapshot_keys?: string | number;
  last_snapshot_bytes?: string | number;
  last_snapshot_seq?: string | number;
  snapshot_in_progress?: boolean;
  changes_since_snapshot?: string | number;
  snapshot_interval_seconds?: string | number;
  load_duration_ms?: string | number;
  data_dir?: string;
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
  /** Cluster: answer once the log is fsynced past the call, whatever the fsync policy. */
  fsync?: boolean;
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

// Replication.

export interface SyncRequest {
  replica_id: string;
  replid: string;
  seq: string | number;
  address: string;
  acked_seq: string | number;
  /** Messages of the stream the replica has handled (see proto/kvstore.proto). */
  handled_messages?: string | number;
  /** Handshake: the replica reports handled_messages. */
  reports_handled?: boolean;
  /** Handshake: the history the replica's own continues, and where it left it. */
  previous_replid?: string;
  previous_last_seq?: string | number;
}

export type SyncMessageType =
  | "SYNC_MESSAGE_TYPE_UNSPECIFIED"
  | "SYNC_PARTIAL"
  | "SYNC_FULL"
  | "SYNC_SNAPSHOT"
  | "SYNC_FULL_END"
  | "SYNC_COMMANDS"
  | "SYNC_PING";

export interface SyncMessage {
  type: SyncMessageType;
  replid: string;
  seq: string | number;
  entries: WireEntry[];
  commands: ReplicationCommand[];
  reason: string;
  dropped: string | number;
  keys: string | number;
}

export interface ReplicaStatusMessage {
  replica_id: string;
  address: string;
  mode: string;
  state: string;
  acked_seq: string | number;
  lag_seqs: string | number;
  lag_ms: string | number;
}

export type PromoteRequest = Record<string, never>;

export interface PromoteResponse {
  promoted: boolean;
  replid: string;
  seq: string | number;
  previous_replid: string;
}

export interface ReplicaOfRequest {
  master_address: string;
}

export interface ReplicaOfResponse {
  success: boolean;
  previous_role: string;
}

export interface WaitRequest {
  num_replicas: number;
  timeout_ms: string | number;
}

export interface WaitResponse {
  replicas: number;
  seq: string | number;
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

// Persistence.

export type SnapshotRequest = Record<string, never>;

/** int64 fields are decimal strings when decoded; numbers are accepted when sending. */
export interface SnapshotResponse {
  path: string;
  seq: string | number;
  seq_end: string | number;
  keys: string | number;
  bytes: string | number;
  duration_ms: string | number;
  created_at_ms: string | number;
  log_bytes_before: string | number;
  log_bytes_after: string | number;
  log_cut: boolean;
}

export type DigestRequest = Record<string, never>;

export interface DigestResponse {
  digest: string;
  keys: string | number;
  seq: string | number;
  replid: string;
}
