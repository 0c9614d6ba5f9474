/**
 * Which failed calls are the connection failing rather than a server answering, in one
 * place for every client of ours: KvClient and what is built on it (the health and
 * cluster clients, the CLI), and a replica's or a push link's calls to its peer.
 *
 * grpc-js reports a broken connection under several statuses, depending on when it
 * breaks and how the peer went away (grpc-js 1.14, src/subchannel-call.ts,
 * src/picker.ts, src/load-balancing-call.ts):
 *
 * - never sent: UNAVAILABLE `No connection established. Last error: ... ECONNREFUSED ...`,
 *   `Name resolution failed for target ...`, `Stream refused by server` (refused unread);
 *   INTERNAL `Failed to start HTTP/2 stream with error ...`;
 * - cut off mid-call: UNAVAILABLE `Connection dropped`, `read ECONNRESET`, `Write failed
 *   with error ...`; INTERNAL `Received RST_STREAM with code 2 triggered by internal
 *   client error: write EPIPE` (or `This socket has been ended by the other party`: the
 *   peer closed its socket, killed), `Received RST_STREAM with code 0 (Call ended without
 *   gRPC status)` or `... code 2 (Internal server error)` (the stream reset without a
 *   status); CANCELLED `Call cancelled` that the caller did not ask for (the server's
 *   session destroyed, as in a forced shutdown).
 *
 * All of them are UNAVAILABLE to our callers: the node could not be reached, or stopped
 * being reachable. What matters next is whether the request may have taken effect:
 * "unreached" when it was never sent (retrying anything is safe), "lost" when the
 * connection broke after it was sent (a read can be retried; a write may or may not have
 * been applied). A kvstore server's own statuses name their subsystem ("server: Cannot
 * set key ...") and are answers, never transport failures.
 *
 * Pure: it reads a status code and its details.
 *
 * @module
 */

/** How a call failed at the transport: never sent, or cut off after it was sent. */
export type TransportFailure = "unreached" | "lost";

/** gRPC status codes read here (grpc.status, without importing the transport). */
const CANCELLED = 1;
const INTERNAL = 13;
const UNAVAILABLE = 14;

/** The start of a kvstore server's own messages: a subsystem and a colon. */
const FROM_KVSTORE = /^[a-z][a-z0-9-]*: /;

/** Whether `details` is a kvstore server's (or router's) own message, which starts with
 * its subsystem ("router: The call's deadline passed before shard ..."), rather than
 * grpc-js's ("Deadline exceeded after 2.001s"). */
export function isServerMessage(details: string): boolean {
  return FROM_KVSTORE.test(details);
}

/** grpc-js's details for calls that never reached the server. */
const UNREACHED =
  /^(No connection established|Name resolution failed|Stream refused by server|Failed to start HTTP\/2 stream|Channel closed before call started|Subchannel not ready)/;

/** grpc-js's INTERNAL details for a stream the connection's end cut off. */
const CUT_OFF =
  /RST_STREAM|EPIPE|ECONNRESET|ETIMEDOUT|socket has been ended|Session closed|ERR_HTTP2_|Write error|write after end/i;

/**
 * Whether a call that failed with `code` and `details` failed at the transport, and how;
 * null when a server answered with that status. `cancelledByCaller`: the caller
 * cancelled the call itself (an abort signal, an iteration ended early), so a CANCELLED
 * is its own doing, not the connection's.
 */
export function transportFailureOf(code: number, details: string, cancelledByCaller = false): TransportFailure | null {
  if (isServerMessage(details)) return null;
  if (code === UNAVAILABLE) return UNREACHED.test(details) ? "unreached" : "lost";
  if (code === INTERNAL) {
    if (/^Failed to start HTTP\/2 stream/.test(details)) return "unreached";
    return CUT_OFF.test(details) ? "lost" : null;
  }
  if (code === CANCELLED && !cancelledByCaller) return "lost";
  return null;
}

/** gRPC's status names, by code. */
const STATUS_NAMES = [
  "OK",
  "CANCELLED",
  "UNKNOWN",
  "INVALID_ARGUMENT",
  "DEADLINE_EXCEEDED",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "ABORTED",
  "OUT_OF_RANGE",
  "UNIMPLEMENTED",
  "INTERNAL",
  "UNAVAILABLE",
  "DATA_LOSS",
  "UNAUTHENTICATED",
];

/**
 * A failed call in one line for a log or a link's error (`kvstore info`'s link_error):
 * `STATUS: details`, with a transport failure as UNAVAILABLE, and one cut off mid-call
 * said to be (so "INTERNAL: Received RST_STREAM ..." from a peer that was killed does
 * not read as a bug). A CANCELLED is taken as the caller's own doing, as it is for the
 * replication links, which cancel their calls when they time out or stop.
 */
export function describeStatus(code: number, details: string): string {
  const failure = transportFailureOf(code, details, true);
  if (failure === "lost") return `UNAVAILABLE: Connection lost mid-call (${details})`;
  if (failure === "unreached") return `UNAVAILABLE: ${details}`;
  return `${STATUS_NAMES[code] ?? `STATUS_${code}`}: ${details}`;
}

/**
 * A trailer (gRPC metadata sent with the status) by which a server says that the write
 * it failed may or may not have been applied: a router whose call to a shard was cut off
 * after it was sent sets it to {@linkcode OUTCOME_UNKNOWN}, and KvClient reads it into
 * KvClientError.outcomeUnknown, as it would for a connection of its own cut off mid-call.
 */
export const OUTCOME_METADATA_KEY = "kvstore-outcome";
export const OUTCOME_UNKNOWN = "unknown";

/** The rpcs that change nothing on the node: one cut off can be sent again as is. */
export const RPCS_WITHOUT_EFFECT: ReadonlySet<string> = new Set([
  "Get",
  "Contains",
  "TTL",
  "MGet",
  "Scan",
  "Info",
  "Digest",
  "Wait",
  "ClusterStatus",
  "StreamReplication",
  "Check",
  "Watch",
]);
