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
  if (failure === "lost") return `UNAVAILABLE: Connection lost mid-call (${connectionLoss(details)})`;
  // In a few words, without grpc-js's timestamp: a link that retries compares this with
  // the reason it logged last, and logs only a new one.
  if (failure === "unreached") return `UNAVAILABLE: Cannot connect: ${connectionProblem(details)}`;
  return `${STATUS_NAMES[code] ?? `STATUS_${code}`}: ${details}`;
}

/** Why grpc-js could not connect, in a few words: its message ("No connection
 * established. Last error: Error: connect ECONNREFUSED 127.0.0.1:1. Resolution note: ")
 * repeats the address and ends in an empty note. Unknown messages pass through, with
 * the empty note cut. */
export function connectionProblem(details: string): string {
  const errno = /\bconnect (E[A-Z]+)\b/.exec(details)?.[1];
  if (errno !== undefined) return CONNECT_ERRORS[errno] ?? `cannot connect (${errno})`;
  // The server took the TCP connection, then dropped it before HTTP/2 was set up (it
  // was paused, or dying): "Last error: read ECONNRESET (2026-12-05T13:08:48.905Z)".
  if (/Last error: (Error: )?read ECONNRESET\b/.test(details)) return "the connection was reset before it was set up";
  if (/Last error: (Error: )?write EPIPE\b/.test(details)) {
    return "the server closed the connection before it was set up";
  }
  if (/^Name resolution failed/.test(details)) return "the host name does not resolve";
  return details.replace(/\s*Resolution note:\s*$/, "").replace(/\s*\(\d{4}-\d\d-\d\dT[\d:.]+Z\)$/, "")
    .replace(/\.$/, "");
}

/** How a connection broke mid-call, in a few words, from grpc-js's message ("Received
 * RST_STREAM with code 2 triggered by internal client error: write EPIPE"). */
export function connectionLoss(details: string): string {
  if (/EPIPE|socket has been ended/.test(details)) return "the server closed the connection";
  if (/ECONNRESET/.test(details)) return "the connection was reset";
  if (/ETIMEDOUT/.test(details)) return "the connection timed out";
  if (/^Connection dropped/.test(details)) return "the connection dropped";
  if (/^Call cancelled/.test(details)) return "the server cancelled the call";
  if (/RST_STREAM/.test(details)) return "the server reset the stream without an answer";
  return details;
}

const CONNECT_ERRORS: Readonly<Record<string, string>> = {
  ECONNREFUSED: "connection refused",
  ETIMEDOUT: "the connection timed out",
  EHOSTUNREACH: "no route to the host",
  ENETUNREACH: "the network is unreachable",
  ECONNRESET: "the connection was reset",
};

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
