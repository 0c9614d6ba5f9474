import assert from "node:assert/strict";
import { describeStatus, transportFailureOf } from "./transport_failure.ts";

const UNAVAILABLE = 14;
const INTERNAL = 13;
const CANCELLED = 1;
const DEADLINE_EXCEEDED = 4;

Deno.test("calls grpc-js never sent are unreached", () => {
  for (
    const details of [
      "No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:43011. Resolution note: ",
      "Name resolution failed for target dns:nosuchhost.invalid:1",
      "Stream refused by server",
    ]
  ) {
    assert.equal(transportFailureOf(UNAVAILABLE, details), "unreached", details);
  }
  assert.equal(
    transportFailureOf(INTERNAL, "Failed to start HTTP/2 stream with error The session has been destroyed"),
    "unreached",
  );
});

Deno.test("calls cut off by a node killed mid-call are lost, whatever status grpc-js gives them", () => {
  // Each as grpc-js 1.14 reported it for calls in flight when a node was killed.
  for (
    const [code, details] of [
      [INTERNAL, "Received RST_STREAM with code 2 triggered by internal client error: write EPIPE"],
      [
        INTERNAL,
        "Received RST_STREAM with code 2 triggered by internal client error: This socket has been ended by the other party",
      ],
      [INTERNAL, "Received RST_STREAM with code 0 (Call ended without gRPC status)"],
      [INTERNAL, "Received RST_STREAM with code 2 (Internal server error)"],
      [UNAVAILABLE, "read ECONNRESET"],
      [UNAVAILABLE, "Connection dropped"],
      [UNAVAILABLE, "Write failed with error write EPIPE"],
      [CANCELLED, "Call cancelled"],
    ] as const
  ) {
    assert.equal(transportFailureOf(code, details), "lost", details);
  }
});

Deno.test("a server's own statuses, and a caller's own cancel, are not transport failures", () => {
  assert.equal(transportFailureOf(UNAVAILABLE, 'server: Cannot set key "k": this node is shutting down'), null);
  assert.equal(transportFailureOf(UNAVAILABLE, "pipeline: Cannot take the write now: ..."), null);
  assert.equal(transportFailureOf(INTERNAL, "replication: Sync failed: boom (this is a bug; see the log)"), null);
  assert.equal(transportFailureOf(INTERNAL, "Failed to parse server response"), null, "a protocol mismatch");
  assert.equal(transportFailureOf(CANCELLED, "Cancelled on client", true), null);
  assert.equal(transportFailureOf(DEADLINE_EXCEEDED, "Deadline exceeded after 5.002s"), null);
});

Deno.test("a replication link's error reads as a lost connection, not as a bug of its peer", () => {
  assert.equal(
    describeStatus(INTERNAL, "Received RST_STREAM with code 2 triggered by internal client error: write EPIPE"),
    "UNAVAILABLE: Connection lost mid-call (the server closed the connection)",
  );
  assert.equal(
    describeStatus(UNAVAILABLE, "No connection established"),
    "UNAVAILABLE: Cannot connect: No connection established",
  );
  // grpc-js stamps the last error with its time; a link compares reasons to log only new ones.
  const stamped = (time: string) => `No connection established. Last error: write EPIPE (${time}). Resolution note: `;
  assert.equal(
    describeStatus(UNAVAILABLE, stamped("2026-12-05T13:54:13.123Z")),
    describeStatus(UNAVAILABLE, stamped("2026-12-05T13:54:15.001Z")),
  );
  assert.equal(
    describeStatus(UNAVAILABLE, stamped("2026-12-05T13:54:13.123Z")),
    "UNAVAILABLE: Cannot connect: the server closed the connection before it was set up",
  );
  assert.equal(describeStatus(CANCELLED, "Cancelled on client"), "CANCELLED: Cancelled on client");
  assert.equal(
    describeStatus(9, "replication: Cannot serve Sync: this node is a replica"),
    "FAILED_PRECONDITION: replication: Cannot serve Sync: this node is a replica",
  );
});
