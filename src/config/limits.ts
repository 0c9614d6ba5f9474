/**
 * Every limit kvstore enforces, in one place, named with its unit.
 *
 * A limit that a user may need to move has a flag (named beside it); the rest are
 * internal bounds that keep one request, one timer tick or one queue from taking the
 * whole process. Each line says what the bound costs when it is raised.
 *
 * @module
 */

const KIB = 1024;
const MIB = 1024 * KIB;

/** Largest key, in UTF-8 bytes (flag --max-key-bytes). Keys are held twice (map and
 * expiry index), so long keys cost twice their size. */
export const KEY_BYTES_MAX_DEFAULT = 64 * KIB;

/** Largest value, in UTF-8 bytes (flag --max-value-bytes). A value travels whole in one
 * gRPC message and is held whole in memory; raising it raises peak memory per request. */
export const VALUE_BYTES_MAX_DEFAULT = 16 * MIB;

/** Upper bound the --max-value-bytes flag accepts: 512 MiB, Redis's own string limit. */
export const VALUE_BYTES_MAX_CEILING = 512 * MIB;

/** Longest TTL an EXPIRE may ask for, in seconds (flag --max-ttl-seconds): ten years.
 * A deadline further out is almost always a unit mistake (milliseconds sent as seconds). */
export const TTL_SECONDS_MAX_DEFAULT = 10 * 365 * 24 * 60 * 60;

/** Slack, in bytes, that a gRPC message may carry beyond its key and value (field tags,
 * lengths, other fields). Messages larger than key + value + this are refused by the
 * transport before they reach a handler. */
export const MESSAGE_OVERHEAD_BYTES_MAX = 64 * KIB;

/** Period of the active expiry sweep, in milliseconds (10 Hz, like Redis's default hz). */
export const EXPIRY_SWEEP_INTERVAL_MS = 100;

/** Keys sampled from the expiring set per sweep round (Redis: 20). */
export const EXPIRY_SAMPLE_KEYS = 20;

/** A sweep tick runs another round while more than this share of a sample had expired
 * (Redis: 25%), so a burst of expiries is reclaimed quickly without scanning everything. */
export const EXPIRY_REPEAT_RATIO = 0.25;

/** Most keys a sweep tick examines, bounding the tick's time (about 1 ms at this size). */
export const EXPIRY_KEYS_PER_TICK_MAX = 2000;

/** Time graceful shutdown waits for in-flight calls before closing connections, in ms. */
export const SHUTDOWN_GRACE_MS = 5000;

/** Keepalive ping period of the gRPC transport, in ms; finds dead peers on idle links. */
export const GRPC_KEEPALIVE_TIME_MS = 30_000;

/** How long a keepalive ping may go unanswered before the link is closed, in ms. */
export const GRPC_KEEPALIVE_TIMEOUT_MS = 10_000;

/** Deadline of a client call unless the caller gives one, in ms. */
export const CLIENT_CALL_DEADLINE_MS_DEFAULT = 5000;

/** Most keys one MGet or MSet may carry. Each call is answered (or made durable) in one
 * piece, so this bounds the memory and the event-loop time one call can take. */
export const BATCH_KEYS_MAX = 10_000;

/** Keys a Scan page returns unless the caller asks otherwise. */
export const SCAN_PAGE_KEYS_DEFAULT = 100;

/** Most keys a Scan page may return. */
export const SCAN_PAGE_KEYS_MAX = 10_000;

/** Keys a Scan page may examine for each key it returns, bounding the work of a prefix
 * scan over a large keyspace with few matches. */
export const SCAN_EXAMINED_PER_RETURNED_MAX = 10;

/** Scan cursors open at once; the least recently used is dropped beyond this. */
export const SCAN_CURSORS_MAX = 1024;

/** How long an idle Scan cursor lives, in ms. */
export const SCAN_CURSOR_IDLE_MS = 60_000;

// Cluster: the hash ring, the router and rebalancing.

/** Virtual nodes per shard on the hash ring (router flag --vnodes, fixed once a cluster
 * is created). The busiest of N shards holds about 1 + 1.5/sqrt(vnodes) times the mean:
 * with 512 about 1.07x (rarely over 1.11x with 10 shards), with 128 about 1.13x. More
 * costs ring memory (8 bytes a vnode) and build time, not lookup time (binary search). */
export const VNODES_PER_SHARD_DEFAULT = 512;

/** Most vnodes per shard the --vnodes flag accepts. */
export const VNODES_PER_SHARD_MAX = 4096;

/** Most shards one cluster may hold. Each costs the router a channel and `vnodes` ring
 * entries; Redis Cluster recommends at most about 1000 masters. */
export const CLUSTER_SHARDS_MAX = 1024;

/** How long the router waits for a shard's connection before answering UNAVAILABLE, in
 * ms (router flag --connect-timeout-ms). A shard that is down fails calls this fast. */
export const ROUTER_CONNECT_TIMEOUT_MS_DEFAULT = 1000;

/** Deadline of a call the router forwards to a shard, in ms, when the client gave none
 * or a longer one: a shard that accepted the call but hangs cannot hold it longer. */
export const ROUTER_FORWARD_DEADLINE_MS = 10_000;

/** Reconnect backoff of the router's links to shards, in ms: first retry and cap. The
 * cap bounds how long a shard that came back stays unused (grpc-js's own cap is 120 s). */
export const ROUTER_RECONNECT_BACKOFF_MS_INITIAL = 100;
export const ROUTER_RECONNECT_BACKOFF_MS_MAX = 1000;

/** Deadline of each shard's Info when the router describes the cluster, in ms; a shard
 * slower than this is reported as unreachable rather than holding up the answer. */
export const ROUTER_SHARD_INFO_DEADLINE_MS = 2000;

/** Time a removed shard's link stays open after the ring no longer names it, in ms, so
 * calls that started before the change finish. */
export const ROUTER_RETIRED_LINK_GRACE_MS = ROUTER_FORWARD_DEADLINE_MS;

/** Keys a rebalancing scan asks a shard for per page. */
export const MIGRATION_SCAN_PAGE_KEYS = 2000;

/** Keys moved per step of a rebalancing (read, copy, delete under one lock; router flag
 * --migration-batch-keys). Client calls on those keys wait for the step, so this bounds
 * their added latency (a step of 500 keys takes a few ms on a local network). */
export const MIGRATION_BATCH_KEYS = 500;

/** Pause between steps of a rebalancing, in ms (router flag --migration-pause-ms): 0
 * moves keys as fast as the shards take them; a pause leaves the shards more room for
 * client traffic while a big move runs. */
export const MIGRATION_PAUSE_MS_DEFAULT = 0;

/** Pause before a rebalancing step that failed (a shard unreachable) is tried again, ms. */
export const MIGRATION_RETRY_MS = 1000;

/** Most often a rebalancing reports progress to watchers, in ms; also the heartbeat of
 * the progress stream while nothing moves. */
export const MIGRATION_PROGRESS_INTERVAL_MS = 250;
