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

// Persistence.

/** Seconds between automatic snapshots (flag --snapshot-interval-seconds; 0 turns them
 * off). Each snapshot walks the whole dataset and writes its size to disk; the log holds
 * at most about one interval of writes beyond the snapshot. */
export const SNAPSHOT_INTERVAL_SECONDS_DEFAULT = 60;

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

/** Bytes of encoding buffer the write path keeps between batches. A batch of large
 * values grows the buffer to its size; past this, the memory is given back afterwards
 * rather than held for good. */
export const LOG_ENCODER_RETAINED_BYTES_MAX = 4 * MIB;

/** Fixes one `kvstore repair` run makes before it gives up. Each fix removes one problem
 * and there are only a few kinds, so needing more means repair itself is stuck. */
export const REPAIR_FIXES_MAX = 8;
