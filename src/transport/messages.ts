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
}

export interface MGetResponse {
  values: GetResponse[];
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
