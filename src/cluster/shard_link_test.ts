import assert from "node:assert/strict";
import type { KvError } from "../errors.ts";
import { shardCallFailure } from "./shard_link.ts";

const UNAVAILABLE = 14;
const INTERNAL = 13;
const CANCELLED = 1;
const DEADLINE_EXCEEDED = 4;
const INVALID_ARGUMENT = 3;

const SHARD = 'shard "a" at 127.0.0.1:7101';

function failure(rpc: string, code: number, details: string): KvError {
  return shardCallFailure("a", "127.0.0.1:7101", rpc, { code, details }, 42);
}

Deno.test("a call that never reached its shard cannot reach it, and claims nothing about the write", () => {
  const error = failure(
    "Set",
    UNAVAILABLE,
    "No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:7101.",
  );
  assert.equal(error.code, "UNAVAILABLE");
  assert.match(error.message, new RegExp(`^router: Cannot reach ${SHARD}: No connection established`));
  assert.doesNotMatch(error.message, /may or may not/);
  assert.equal(error.outcomeUnknown, false);
});

Deno.test("a write cut off mid-call, whatever grpc-js calls it, may or may not have been applied on its shard", () => {
  for (
    const [code, details] of [
      [UNAVAILABLE, "read ECONNRESET"],
      [UNAVAILABLE, "Connection dropped"],
      [INTERNAL, "Received RST_STREAM with code 2 triggered by internal client error: write EPIPE"],
      [CANCELLED, "Call cancelled"],
    ] as const
  ) {
    for (const rpc of ["Set", "Delete", "Expire", "MSet"]) {
      const error = failure(rpc, code, details);
      assert.equal(error.code, "UNAVAILABLE", `${rpc} ${details}`);
      assert.equal(error.outcomeUnknown, true, "the client hears it in the kvstore-outcome trailer");
      assert.equal(
        error.message,
        `router: Connection to ${SHARD} lost during the call (${details}); the write may or may not have been ` +
          "applied on that shard (read it back to know)",
      );
    }
  }
});

Deno.test("a read cut off mid-call says the connection was lost, and nothing of a write", () => {
  for (const rpc of ["Get", "Contains", "TTL", "MGet", "Scan", "Info"]) {
    const error = failure(rpc, UNAVAILABLE, "read ECONNRESET");
    assert.equal(error.code, "UNAVAILABLE");
    assert.match(
      error.message,
      new RegExp(`^router: Connection to ${SHARD} lost during the call \\(read ECONNRESET\\)`),
    );
    assert.doesNotMatch(error.message, /may or may not/, rpc);
    assert.equal(error.outcomeUnknown, false);
  }
});

Deno.test("a shard's own answers pass through; its UNAVAILABLE names it; a passed deadline names it", () => {
  const refused = failure("Set", INVALID_ARGUMENT, 'store: Cannot set key "": the key is empty');
  assert.equal(refused.code, "INVALID_ARGUMENT");
  assert.equal(refused.message, 'store: Cannot set key "": the key is empty');
  const closing = failure("Set", UNAVAILABLE, 'server: Cannot set key "k": this node is shutting down');
  assert.equal(closing.code, "UNAVAILABLE");
  assert.equal(
    closing.message,
    `router: Shard "a" at 127.0.0.1:7101 cannot take the call now: server: Cannot set key "k": this node is shutting down`,
  );
  const late = failure("Set", DEADLINE_EXCEEDED, "Deadline exceeded after 5.002s");
  assert.equal(late.code, "DEADLINE_EXCEEDED");
  assert.equal(
    late.message,
    `router: The call's deadline passed before ${SHARD} answered (waited 42 ms for it); the write may or may not ` +
      "have been applied on that shard (read it back to know)",
  );
  assert.equal(late.outcomeUnknown, true);
  const lateRead = failure("Get", DEADLINE_EXCEEDED, "Deadline exceeded after 5.002s");
  assert.equal(lateRead.message, `router: The call's deadline passed before ${SHARD} answered (waited 42 ms for it)`);
  assert.equal(lateRead.outcomeUnknown, false);
  const bug = failure("Get", INTERNAL, "server: Get failed: boom (this is a bug; see the server log)");
  assert.equal(bug.code, "INTERNAL");
  assert.equal(bug.message, "server: Get failed: boom (this is a bug; see the server log)");
});
