import assert from "node:assert/strict";
import type { ReplicationCommand } from "../transport/messages.ts";
import {
  checkReplicaNaming,
  commandFromWire,
  commandToWire,
  entryFromWire,
  entryToWire,
  WIRE_SEQ_MAX,
} from "./wire.ts";

const NOW = 1_700_000_000_000;
const R = "9f".repeat(20);

Deno.test("our commands survive a round trip through the wire form", () => {
  const commands = [
    { kind: "set", key: "k", value: "v", expiresAtMs: null },
    { kind: "set", key: "k", value: "v", expiresAtMs: NOW + 60_000 },
    { kind: "delete", key: "k" },
    { kind: "expireAt", key: "k", expiresAtMs: NOW + 1500 },
  ] as const;
  for (const [i, command] of commands.entries()) {
    const wire = commandToWire(i + 1, command, R, NOW);
    assert.equal(wire.replid, R);
    assert.deepEqual(commandFromWire(wire, NOW + 999_999), { seq: i + 1, command }, "the deadline stays absolute");
  }
});

Deno.test("relative seconds are filled for the C++ store, rounded up", () => {
  assert.equal(commandToWire(1, { kind: "expireAt", key: "k", expiresAtMs: NOW + 1500 }, R, NOW).seconds, 2);
  assert.equal(commandToWire(1, { kind: "set", key: "k", value: "v", expiresAtMs: NOW + 60_000 }, R, NOW).seconds, 60);
  assert.equal(commandToWire(1, { kind: "set", key: "k", value: "v", expiresAtMs: null }, R, NOW).seconds, 0);
});

function cpp(fields: Partial<ReplicationCommand>): ReplicationCommand {
  return { type: "SET", key: "k", value: "", seconds: 0, sequence_id: "0", ...fields };
}

Deno.test("a C++ master's EXPIRE counts its seconds from when it is applied; seconds <= 0 deletes", () => {
  assert.deepEqual(commandFromWire(cpp({ type: "EXPIRE", seconds: 10, sequence_id: "3" }), NOW), {
    seq: 3,
    command: { kind: "expireAt", key: "k", expiresAtMs: NOW + 10_000 },
  });
  assert.deepEqual(commandFromWire(cpp({ type: "EXPIRE", seconds: 0 }), NOW).command, { kind: "delete", key: "k" });
  assert.deepEqual(commandFromWire(cpp({ type: "EXPIRE", seconds: -5 }), NOW).command, { kind: "delete", key: "k" });
});

Deno.test("a C++ master's SET carries no TTL, whatever its seconds", () => {
  assert.deepEqual(commandFromWire(cpp({ value: "v", seconds: 30 }), NOW).command, {
    kind: "set",
    key: "k",
    value: "v",
    expiresAtMs: null,
  });
});

Deno.test("bad commands are refused with a message naming the problem", () => {
  assert.throws(() => commandFromWire(cpp({ key: "" }), NOW), /INVALID|the key is empty/);
  assert.throws(() => commandFromWire(cpp({ sequence_id: "-1" }), NOW), /must not be negative/);
  assert.throws(() => commandFromWire(cpp({ sequence_id: "99999999999999999999" }), NOW), /not a whole number/);
  assert.throws(() => commandFromWire(cpp({ type: "INCR" as "SET" }), NOW), /unknown type "INCR"/);
  assert.throws(() => commandFromWire(cpp({ expires_at_ms: "-4" }), NOW), /Invalid expires_at_ms -4/);
});

Deno.test("snapshot entries keep their deadlines", () => {
  const wire = entryToWire("k", { value: "v", expiresAtMs: NOW });
  assert.deepEqual(entryFromWire(wire), { kind: "set", key: "k", value: "v", expiresAtMs: NOW });
  assert.deepEqual(entryFromWire(entryToWire("k", { value: "v", expiresAtMs: null })).kind, "set");
  assert.equal(
    (entryFromWire(entryToWire("k", { value: "v", expiresAtMs: null })) as { expiresAtMs: null }).expiresAtMs,
    null,
  );
  assert.throws(() => entryFromWire({ key: "", value: "", expires_at_ms: 0, ttl_ms: 0 }), /key is empty/);
});

Deno.test("a replica's id and address, which Info, /metrics and the log show, are bounded and printable", () => {
  assert.equal(checkReplicaNaming("0123456789abcdef", "0.0.0.0:50052", "Sync"), "0.0.0.0:50052");
  assert.equal(checkReplicaNaming("", "", "StreamReplication"), "");
  assert.equal(checkReplicaNaming("cpp replica 1", "[::1]:7000", "Sync"), "[::1]:7000");
  assert.throws(
    () => checkReplicaNaming("x".repeat(1_000_000), "", "Sync"),
    /^KvError: replication: Cannot serve Sync to replica "x{64}\.\.\.": a replica id is at most 128 characters/,
  );
  assert.throws(() => checkReplicaNaming("a\u001b[31m", "", "StreamReplication"), /no control characters/);
  assert.throws(
    () => checkReplicaNaming("r", `a\n${"x".repeat(1_000_000)}:1`, "Sync"),
    (error: Error) => /Invalid address/.test(error.message) && error.message.length < 300,
  );
});

Deno.test("a sequence_id the log could not record is refused before anything is staged", () => {
  const command = { type: "SET", key: "k", value: "v", seconds: 0, replid: "" } as ReplicationCommand;
  assert.equal(commandFromWire({ ...command, sequence_id: String(WIRE_SEQ_MAX) }, NOW).seq, WIRE_SEQ_MAX);
  assert.throws(
    () => commandFromWire({ ...command, sequence_id: String(WIRE_SEQ_MAX + 1) }, NOW),
    /^KvError: replication: Invalid sequence_id 9007199254740991: over 9007199254740990, the largest a replica records$/,
  );
});
