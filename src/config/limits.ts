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

/** The largest gRPC message a node (or router) sends or takes, in bytes: the largest key
 * and value its limits allow, and MESSAGE_OVERHEAD_BYTES_MAX for the rest. Answers that
 * gather many values (MGet) are checked against it before they are sent. */
export function messageBytesMaxFor(keyBytesMax: number, valueBytesMax: number): number {
  return keyBytesMax + valueBytesMax + MESSAGE_OVERHEAD_BYTES_MAX;
}

/** The longest message a gRPC status carries, in characters (longer ones are cut). It
 * travels in an HTTP/2 header: tens of KiB there make the answer undeliverable (grpc-js's
 * client reports the connection lost, the call's outcome unknown), and a person reads a
 * line or two. Messages quote what a client sent shortened (errors.ts quote); this is the
 * backstop. */
export const STATUS_DETAILS_CHARS_MAX = 4 * KIB;

/** The longest replica id a master takes from a Sync handshake or a StreamReplication
 * request, in characters (ours are 16 hex digits). The id shows in Info, /metrics and
 * the log for as long as the stream lasts, each stream's own. */
export const REPLICA_ID_CHARS_MAX = 128;

/** Largest config file (--config) read, in bytes. A config file holds a few dozen
 * settings (a few KiB); the bound keeps a wrong path (`--config /dev/zero`, a data file)
 * from filling memory before the mistake is reported. Costs its size once, at start-up. */
export const CONFIG_FILE_BYTES_MAX = 1 * MIB;

/** Period of the active expiry sweep, in milliseconds (10 Hz, like Redis's default hz). */
export const EXPIRY_SWEEP_INTERVAL_MS = 100;

/** Keys sampled from the expiring set per sweep round (Redis: 20). */
export const EXPIRY_SAMPLE_KEYS = 20;

/** A sweep tick runs another round while more than this share of a sample had expired
 * (Redis: 25%), so a burst of expiries is reclaimed quickly without scanning everything. */
export const EXPIRY_REPEAT_RATIO = 0.25;

/** Most keys a sweep tick examines, bounding the tick's time (about 1 ms at this size). */
export const EXPIRY_KEYS_PER_TICK_MAX = 2000;

/** Client connections a node keeps open at once (flag --max-connections; Redis's
 * maxclients default). A connection past this is closed as soon as it is accepted, and
 * its client sees UNAVAILABLE. Each costs a file descriptor and an HTTP/2 session (a few
 * KiB idle; more while its calls carry large values). */
export const CONNECTIONS_MAX_DEFAULT = 10_000;

/** File descriptors kept out of the connection limit: 128 for the node's files, its links
 * to replicas or a master, the metrics endpoint and the runtime's own, and 512 for a burst
 * of connections, which the runtime accepts (up to the listen backlog, 511) before it
 * closes those over the limit (bursts of 100-230 measured on Deno 2.9.3). The connection
 * limit is lowered to the open-file limit less this: a node that runs out of descriptors
 * while accepting never accepts again (Deno's node:net stops its accept loop at the first
 * EMFILE), so it must never get there. Costs nothing where the hard limit is large (systemd
 * and Docker give 524288 or more); with 1024 it leaves 384 connections. */
export const FDS_RESERVED = 640;

/** File descriptors a router keeps out of its connection limit on top of FDS_RESERVED: one
 * per link to a shard's node (master or replica), for clusters of up to 128 nodes counting
 * the links of shards that left the ring and are still in their grace period. With an
 * open-file limit of 1024, it leaves a router 256 client connections. */
export const ROUTER_LINK_FDS_RESERVED = 128;

/** Least time between two log lines about writes the log keeps failing to take, in ms.
 * While the disk is full, every batch fails, expiry deletions included (ten a second),
 * so the first failure is logged at once and then one summary per interval. */
export const WRITE_FAILURE_REPORT_INTERVAL_MS = 10_000;

/** Time graceful shutdown waits for in-flight calls before closing connections, in ms. */
export const SHUTDOWN_GRACE_MS = 5000;

/** Longest a node shutting down waits on its disk at each step, in ms (flag
 * --shutdown-disk-wait-ms): for the writes under way to reach the log, for the snapshot,
 * for the log's last fsync and close. Past it the disk is taken to be stalled (an fsync
 * or a write that hangs) and the step is given up rather than waited for until a second
 * signal: writes still waiting are not acknowledged (their clients hear that they may or
 * may not have been applied) and the node exits with status 1, its files left as a crash
 * would leave them; a snapshot is abandoned (the next start replays the log instead). A
 * healthy disk takes a batch in milliseconds and a million keys' snapshot in about a
 * second, so the cost is only that a shutdown snapshot of ten million keys or more is
 * given up. */
export const SHUTDOWN_DISK_WAIT_MS_DEFAULT = 10_000;

/** Least and most --shutdown-disk-wait-ms accepts, in ms: a stalled disk takes some
 * time to tell from a slow one, and an hour outlasts any service manager's stop timeout. */
export const SHUTDOWN_DISK_WAIT_MS_MIN = 100;
export const SHUTDOWN_DISK_WAIT_MS_MAX = 60 * 60 * 1000;

/** Longest a master shutting down waits, once it takes no more writes, for its replicas
 * to acknowledge its last seq, in ms (flag --shutdown-replica-wait-ms; Redis's
 * shutdown-timeout is 10 s too). A replica that has every write resumes with a
 * partialSync after the master's restart, and may be promoted losing nothing; the cost
 * is a shutdown that takes up to this long when a replica is slow or gone. */
export const SHUTDOWN_REPLICA_WAIT_MS_DEFAULT = 10_000;

/** Most the --shutdown-replica-wait-ms flag accepts, in ms (an hour): longer would outlast
 * any service manager's stop timeout. */
export const SHUTDOWN_REPLICA_WAIT_MS_MAX = 60 * 60 * 1000;

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

/** Most bytes of keys (and values, when a scan asks for them) one Scan page holds: a
 * page ends early rather than pass it, and an entry larger than this alone is a page of
 * its own. Keeps a page of large values within the message limit (a node also caps it
 * at --max-key-bytes plus --max-value-bytes); smaller costs more calls per scan. */
export const SCAN_PAGE_BYTES_MAX = 4 * MIB;

/** Keys a Scan page may examine for each key it returns, bounding the work of a prefix
 * scan over a large keyspace with few matches. */
export const SCAN_EXAMINED_PER_RETURNED_MAX = 10;

/** Scan cursors open at once; the least recently used is dropped beyond this. */
export const SCAN_CURSORS_MAX = 1024;

/** How long an idle Scan cursor lives, in ms. */
export const SCAN_CURSOR_IDLE_MS = 60_000;

// Operations: metrics, health, the command-line tools.

/** Label combinations one metric may hold; more are dropped (and counted), so a label fed
 * from outside cannot grow the registry without bound. Each series costs about 100 bytes
 * (a histogram's, about 200). */
export const METRIC_SERIES_MAX = 1000;

/** Health Watch streams open at once; more are refused with RESOURCE_EXHAUSTED. Each
 * costs a stream and a listener; a load balancer opens one per node it checks. */
export const HEALTH_WATCHERS_MAX = 1000;

/** First reconnect delay of a broken gRPC channel, in ms (grpc's default). */
export const GRPC_RECONNECT_BACKOFF_INITIAL_MS = 1000;

/** Longest reconnect delay of a broken gRPC channel, in ms. grpc's default, 120 s, would
 * leave a client or replica idle for minutes after a brief outage; 5 s costs at most a
 * connection attempt every 5 s per channel to a node that stays down. */
export const GRPC_RECONNECT_BACKOFF_MAX_MS = 5000;

/** How long a replica-set client skips an endpoint after a call to it failed, in ms: it
 * is tried again after that (or sooner, when every other endpoint failed too). */
export const CLIENT_ENDPOINT_DOWN_MS = 2000;

/** Deadline of one attempt at one endpoint by a replica-set client, in ms: a node that
 * does not answer costs a call at most this before the next endpoint is tried. */
export const CLIENT_ATTEMPT_DEADLINE_MS = 2000;

/** Least time between two role discoveries (Info to every endpoint) of a replica-set
 * client, in ms, so a failing group is not flooded with Info calls. */
export const CLIENT_DISCOVERY_INTERVAL_MS_MIN = 250;

/** Age after which a replica-set client rediscovers roles on its next call, in ms, to
 * follow a promotion even when nothing failed. */
export const CLIENT_ROLES_MAX_AGE_MS = 30_000;

/** How long a sharded client or a router trusts what a replica's Info said about its
 * first sync, in ms, before asking again on the next read it sends there. Costs one Info per replica
 * per this much time (about 0.3 ms on a local network, before the read it clears); a
 * replica that restarts (and answers from its own old copy until it syncs again) may
 * be read from for up to this long. */
export const CLIENT_REPLICA_SYNC_CHECK_MS = 1000;

/** Lines `kvstore shell` keeps in its history file (redis-cli keeps about as many). */
export const SHELL_HISTORY_LINES_MAX = 1000;

/** Longest line `kvstore shell` reads from a pipe, in characters: a command with the
 * largest default value, quoted, fits. */
export const SHELL_LINE_CHARS_MAX = 64 * MIB;

/** How often a progress bar is redrawn on a terminal, in ms. */
export const PROGRESS_BAR_REDRAW_MS = 100;

/** How often a progress line is written when stderr is not a terminal, in ms: often
 * enough to show life in a CI log, rare enough not to flood it. */
export const PROGRESS_LINE_INTERVAL_MS = 2000;

/** Calls `kvstore del` and `kvstore exists` keep in flight, one key each. All at once,
 * the calls for thousands of keys (`kvstore scan | xargs kvstore del`) would share one
 * deadline and the last ones would miss it; this many keep the connection busy. */
export const CLI_KEY_CALLS_IN_FLIGHT_MAX = 64;

/** Entries per MSet call of `kvstore import` unless --batch-size says otherwise. */
export const IMPORT_BATCH_ENTRIES_DEFAULT = 1000;

/** Bytes of keys and values per MSet call of `kvstore import` (a batch closes before it
 * passes this, or holds one larger entry alone): far below the transport's message
 * limit, and small enough that a failed batch names a short range of lines. */
export const IMPORT_BATCH_BYTES_MAX = 4 * MIB;

/** MSet calls `kvstore import` keeps in flight unless --pipeline says otherwise: enough
 * to overlap the network with the server's work; more buys little on one connection. */
export const IMPORT_PIPELINE_DEFAULT = 4;

/** Most MSet calls --pipeline may keep in flight. */
export const IMPORT_PIPELINE_MAX = 64;

/** Longest line `kvstore import` reads, in characters: the largest value (512 MiB, the
 * --max-value-bytes ceiling) cannot be imported in one line past this; the default value
 * limit (16 MiB) fits even with every character escaped. */
export const IMPORT_LINE_CHARS_MAX = 128 * MIB;

/** Keys per Scan page of `kvstore export` unless --page-size says otherwise. */
export const EXPORT_PAGE_KEYS_DEFAULT = 1000;

/** Most requests one `kvstore bench` test may make: every latency is kept for exact
 * percentiles, 8 bytes each, so this bounds the run's memory to 80 MB. */
export const BENCH_REQUESTS_MAX = 10_000_000;

/** Most simulated clients (each its own connection) of `kvstore bench`. */
export const BENCH_CLIENTS_MAX = 1000;

/** Most requests in flight per client of `kvstore bench` (--pipeline). */
export const BENCH_PIPELINE_MAX = 1000;
// Replication.

/** Bytes of recent commands the master keeps for replicas that reconnect (flag
 * --backlog-bytes). A replica whose next command is still here resyncs with a partialSync
 * of what it missed; one further behind needs a fullSync of the whole dataset. Costs that
 * much memory on the master, whether or not replicas are attached. */
export const BACKLOG_BYTES_DEFAULT = 32 * MIB;

/** Bytes charged per backlog entry beyond its key and value: the entry object, the
 * command object, their numbers (seq, commit time, deadline), the two strings' headers
 * and the array slot, so that --backlog-bytes is what the backlog really takes, tiny
 * commands included. Measured on Deno 2.9.3 (bench/backlog_memory.ts, checked by
 * tests/backlog_memory_test.ts): 145 to 198 bytes by kind of command, the most for a SET
 * with a deadline; 80, charged before, let a backlog of small writes take twice its bound. */
export const BACKLOG_ENTRY_OVERHEAD_BYTES = 208;

/** How long a replica waits without hearing from its master before it drops the link and
 * reconnects, in ms (flag --repl-timeout-ms). The master pings idle links every
 * REPLICATION_PING_INTERVAL_MS, so a healthy idle link never trips it. */
export const REPLICATION_TIMEOUT_MS_DEFAULT = 10_000;

/** How long a replica whose link timer ran out still waits for a message before it drops
 * the link, in ms. Timers run before pending reads, so after the replica itself was
 * paused (a stop signal, a long stall) the timer is overdue while the master's messages
 * sit unread; this lets them in. Adds this much to --repl-timeout-ms. */
export const REPLICATION_TIMEOUT_CONFIRM_MS = 100;

/** Period of the master's pings on an idle Sync stream, and of a replica's repeated
 * acknowledgement when nothing new was applied, in ms. Shorter finds dead links sooner and
 * refreshes lag figures more often, at one small message per period per replica. */
export const REPLICATION_PING_INTERVAL_MS = 1000;

/** Shortest --repl-timeout-ms accepted, in ms: two ping periods. A replica whose timeout
 * is shorter than the master's pings would drop and reopen a healthy idle link again and
 * again; twice the period leaves room for one late ping. */
export const REPLICATION_TIMEOUT_MS_MIN = 2 * REPLICATION_PING_INTERVAL_MS;

/** First delay before a replica reconnects to its master after a failure, in ms; it
 * doubles after each failed attempt up to REPLICA_RECONNECT_DELAY_MS_MAX. */
export const REPLICA_RECONNECT_DELAY_MS_MIN = 100;

/** Longest delay between a replica's reconnection attempts, in ms: the longest a replica
 * stays behind after its master comes back. */
export const REPLICA_RECONNECT_DELAY_MS_MAX = 2000;

/** Distinct reasons one outage of a replica's link logs ("Link to master still down:
 * ..."); a master that fails in turns (refused, reset, closed) logs each once, and past
 * this the outage goes on silently until the link is up (Info's link_error has the last). */
export const LINK_OUTAGE_REASONS_LOGGED_MAX = 8;

/** How soon a replication channel (a replica's link to its master, a master's push link
 * to a replica) retries a lost connection, in ms: first after this, doubling up to
 * REPLICATION_CHANNEL_RECONNECT_MS_MAX. A channel whose peer is down keeps reconnecting
 * on its own (gRPC's pick_first stays in TRANSIENT_FAILURE and retries), and a call made
 * while it waits fails at once without trying; the follower's and the push link's own
 * backoff (REPLICA_RECONNECT_DELAY_MS_*) paces those calls. With grpc's default channel
 * backoff (GRPC_RECONNECT_BACKOFF_*, 1 s growing to 5 s) a replica rejoined a master that
 * came back up to 7 s late; at a fixed 100 ms, a replica of a master that is down for
 * hours opened ten connections a second. */
export const REPLICATION_CHANNEL_RECONNECT_MS_MIN = REPLICA_RECONNECT_DELAY_MS_MIN;

/** The longest pause between a replication channel's reconnection attempts, in ms: at
 * most one connection a second to a peer that is down, and a replica rejoins a master
 * that is back within about this plus REPLICA_RECONNECT_DELAY_MS_MAX. */
export const REPLICATION_CHANNEL_RECONNECT_MS_MAX = 1000;

/** How long a master waits for a new Sync stream's handshake, in ms, before it closes it. */
export const SYNC_HANDSHAKE_TIMEOUT_MS = 10_000;

/** Most bytes of commands or snapshot entries in one Sync message (one command or entry
 * always goes, however large). Larger messages amortize framing; smaller ones keep a
 * single message from holding the event loop or the link for long. */
export const SYNC_MESSAGE_BYTES_MAX = 1 * MIB;

/** Most commands or snapshot entries in one Sync message. */
export const SYNC_MESSAGE_ITEMS_MAX = 4096;

/** Bytes of Sync messages a master may have sent to one replica that the replica has not
 * yet reported handled; it sends more once the replica catches up. Bounds what a slow or
 * paused replica costs its master (the transport does not: see send_window.ts) to this
 * plus one message, per replica. Larger lets a replica on a long link apply at full speed
 * (bandwidth times round trip); a replica that does not keep up falls out of the backlog
 * and resyncs. */
export const SYNC_UNHANDLED_BYTES_MAX = 4 * MIB;

/** Streams a master serves at once for replicas (Sync and StreamReplication together);
 * each holds a cursor into the backlog and, during a fullSync, an iterator over the store. */
export const REPLICA_STREAMS_MAX = 64;

/** How long a pushed command that arrives ahead of its turn (a gap) waits on a replica
 * for the commands before it, in ms, before the push is answered with the replica's last
 * applied seq so the master resends. Covers pushes that overtake each other in flight. */
export const PUSH_GAP_WAIT_MS = 2000;

/** Pushed commands that may wait for their turn at once on a replica; more are answered
 * at once with the replica's last applied seq. */
export const PUSH_WAITERS_MAX = 1024;

/** Deadline of one ReplicateCommand push from a master to a replica, in ms. */
export const PUSH_CALL_DEADLINE_MS = 5000;

/** Wait calls that may be blocked at once on a master; more are refused. */
export const WAITERS_MAX = 10_000;

/** Longest a Wait call may block, in ms (one hour); Wait with timeout 0 waits this long. */
export const WAIT_TIMEOUT_MS_MAX = 60 * 60 * 1000;
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

/** How long before a client's deadline the router gives up on a shard, in ms (at most
 * a tenth of the time the call has): the router then answers DEADLINE_EXCEEDED naming
 * the shard while the client still listens, rather than the client timing out with an
 * error that names nothing. Costs the call that much of its time on the shard. */
export const ROUTER_DEADLINE_MARGIN_MS_MAX = 500;

/** Reconnect backoff of the router's links to shards, in ms: first retry and cap. The
 * cap bounds how long a shard that came back stays unused (grpc-js's own cap is 120 s). */
export const ROUTER_RECONNECT_BACKOFF_MS_INITIAL = 100;
export const ROUTER_RECONNECT_BACKOFF_MS_MAX = 1000;

/** Deadline of each shard's Info when the router describes the cluster, in ms; a shard
 * slower than this is reported as unreachable rather than holding up the answer. */
export const ROUTER_SHARD_INFO_DEADLINE_MS = 2000;

/** Pause between two rounds of the router's probes of its shards (an Info to each
 * master, with the deadline above), in ms, for kvstore_router_shard_up and the log lines
 * saying a shard stopped answering or is back. Bounds how stale both are; costs each
 * shard one small call per pause. */
export const ROUTER_SHARD_PROBE_INTERVAL_MS = 2000;

/** Time a removed shard's link stays open after the ring no longer names it, in ms, so
 * calls that started before the change finish. */
export const ROUTER_RETIRED_LINK_GRACE_MS = ROUTER_FORWARD_DEADLINE_MS;

/** Changes of the ring a router remembers (memberships, a few hundred bytes each) so
 * that a scan cursor handed out before them can go on where that is safe, as across
 * the end of a rebalancing (see carryScanPosition in src/cluster/topology.ts). A cursor
 * older than that is refused, and the scan starts again. */
export const SCAN_CARRY_EPOCHS_MAX = 16;

/** Keys a rebalancing scan asks a shard for per page. */
export const MIGRATION_SCAN_PAGE_KEYS = 2000;

/** Keys moved per step of a rebalancing (read, copy, delete under one lock; router flag
 * --migration-batch-keys). Client calls on those keys wait for the step, so this bounds
 * their added latency (a step of 500 keys takes a few ms on a local network). */
export const MIGRATION_BATCH_KEYS = 500;

/** Most bytes of keys and values one call of a rebalancing step carries (a read of the
 * keys to move, their copy onto the new shard, their deletion from the old one). A step
 * of large values is made in several calls, each far below a shard's message limit (at
 * least --max-value-bytes plus 64 KiB); smaller calls cost more round trips. The router
 * also keeps each call within its own --max-key-bytes plus --max-value-bytes. */
export const MIGRATION_CALL_BYTES_MAX = 4 * MIB;

/** Pause between steps of a rebalancing, in ms (router flag --migration-pause-ms): 0
 * moves keys as fast as the shards take them; a pause leaves the shards more room for
 * client traffic while a big move runs. */
export const MIGRATION_PAUSE_MS_DEFAULT = 0;

/** Pause before a rebalancing step that failed (a shard unreachable) is tried again, ms. */
export const MIGRATION_RETRY_MS = 1000;

/** Most often a rebalancing reports progress to watchers, in ms; also the heartbeat of
 * the progress stream while nothing moves. */
export const MIGRATION_PROGRESS_INTERVAL_MS = 250;
// Persistence.

/** Seconds between automatic snapshots (flag --snapshot-interval-seconds; 0 turns the
 * timed ones off). Each snapshot walks the whole dataset and writes its size to disk; the
 * log holds at most about one interval of writes beyond the snapshot, and never much
 * more than --log-rewrite-min-bytes or the snapshot's size, whichever is larger. */
export const SNAPSHOT_INTERVAL_SECONDS_DEFAULT = 60;

/** Size past which the log is cut by a snapshot whatever --snapshot-interval-seconds
 * says, in bytes, once the log is also larger than the last snapshot (flag
 * --log-rewrite-min-bytes, 0 to turn it off; Redis's auto-aof-rewrite-min-size, 64mb,
 * and auto-aof-rewrite-percentage, 100): a long interval, or none (0), under steady
 * writes would otherwise let the log, and the replay at the next start, grow without
 * bound. Costs at most one snapshot per this much writing (or per the dataset's size,
 * when larger): a snapshot writes the dataset once. */
export const LOG_REWRITE_BYTES_MIN_DEFAULT = 64 * MIB;

/** How often the log's size is compared with --log-rewrite-min-bytes and the snapshot, in
 * ms. A check reads two numbers. */
export const LOG_SIZE_CHECK_INTERVAL_MS = 1000;

/** Least time between two snapshots the log's size asks for after one failed, in ms (a
 * full or failing disk): each walks the whole dataset, so a failure is not retried every
 * check. */
export const LOG_REWRITE_RETRY_MS = 60_000;

/** Period of the log's fsync under --appendfsync everysec, in ms (Redis: one second).
 * A power cut loses up to about this much acknowledged writing. */
export const LOG_SYNC_INTERVAL_MS = 1000;

/** Entry bytes per snapshot frame. The writer hands each frame to the OS and so yields
 * to the event loop between frames; one frame takes about 0.25 ms to encode. A request
 * passes through many event-loop turns, each of which may wait behind one frame, so the
 * frame size sets how much a snapshot slows requests down: with 1 MiB frames a lone Get
 * took 20-200 ms during a snapshot of a million keys, with 64 KiB frames it stays near
 * its usual time. The cost is more write calls: 64 KiB each. */
export const SNAPSHOT_CHUNK_BYTES = 64 * KIB;

/** Bytes a snapshot (and the new log a cut copies after it) writes between fsyncs of
 * its file, as Redis's rdb-save-incremental-fsync does every 4 MB. Left to one fsync at
 * the end, a snapshot of a million keys (~120 MiB) reaches the disk in one burst, and a
 * log fsync under --appendfsync always queues behind it; in steps of this size, it waits
 * behind at most about this much (~40 ms at 100 MB/s). Smaller steps cost more fsyncs
 * (30 for 120 MiB at 4 MiB) and a slower snapshot; none holds up requests. */
export const SNAPSHOT_FSYNC_INTERVAL_BYTES = 4 * MIB;

/** Payload bytes per log frame when a large batch is split. Bigger frames cost fewer
 * headers; a batch torn between its frames is dropped whole either way. */
export const LOG_FRAME_TARGET_BYTES = 1 * MIB;

/** Largest frame payload a reader accepts, in bytes: a frame closes once it passes its
 * target size, so it holds at most the target plus one record, and the largest record is
 * the largest value --max-value-bytes allows plus a key of up to 1 MiB. A header that
 * declares more is corruption, and the reader says so rather than allocating it. */
export const FRAME_PAYLOAD_BYTES_MAX = VALUE_BYTES_MAX_CEILING + 4 * MIB;

/** Bytes read at a time when the snapshot and log are loaded, and when the log is cut. */
export const PERSISTENCE_READ_CHUNK_BYTES = 1 * MIB;

/** Period of the progress lines of a long start-up load, in ms. */
export const LOAD_PROGRESS_INTERVAL_MS = 2000;

/** Keys examined per step when, after start-up, a master deletes the keys whose deadline
 * passed while it was down; it yields between steps so serving goes on. */
export const EXPIRED_AFTER_LOAD_KEYS_PER_STEP = 10_000;

/** How long `kvstore snapshot` waits for the snapshot by default, in ms: a snapshot of a
 * large dataset takes seconds to minutes (--timeout-ms overrides it). */
export const SNAPSHOT_CALL_DEADLINE_MS_DEFAULT = 10 * 60_000;

/** Bytes of client writes that may wait for the log at once (staged, not yet durable;
 * each call also charged WRITE_CALL_OVERHEAD_BYTES).
 * Past it, new client writes are refused with UNAVAILABLE until the log catches up, so a
 * disk that stalls (an fsync that hangs under --appendfsync always) cannot let waiting
 * writes, and the retries of clients that gave up on them, fill memory. Costs up to this
 * much memory (plus one call) while the disk is slow; it is also about the largest single
 * write of the log. */
export const WRITE_QUEUE_BYTES_MAX = 256 * MIB;

/** Bytes charged against WRITE_QUEUE_BYTES_MAX for each client write call waiting for
 * the log, beyond its commands: the call's own state (its HTTP/2 stream, the gRPC call,
 * the handler waiting for the commit) stays in memory until the log answers, whether or
 * not its client still waits. Measured on Deno 2.9.3 with the disk stalled: 60,000 calls
 * of one small SET each, their clients gone after 5 s, held 390 MiB (about 7 KB a call),
 * when their commands were charged 5 MiB. So while the disk stalls, at most about 32,000
 * calls wait (the limit over this), and the limit bounds what they hold. */
export const WRITE_CALL_OVERHEAD_BYTES = 8 * KIB;

/** Bytes of encoding buffer the write path keeps between batches. A batch of large
 * values grows the buffer to its size; past this, the memory is given back afterwards
 * rather than held for good. */
export const LOG_ENCODER_RETAINED_BYTES_MAX = 4 * MIB;

/** Fixes one `kvstore repair` run makes before it gives up. Each fix removes one problem
 * and there are only a few kinds, so needing more means repair itself is stuck. */
export const REPAIR_FIXES_MAX = 8;
