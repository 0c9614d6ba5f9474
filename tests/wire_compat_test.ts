/**
 * Wire compatibility with the C++ store's clients, checked without our .proto file:
 * requests are protobuf bytes encoded by hand from the field numbers in DESIGN.md and
 * sent as raw gRPC over HTTP/2, and answers are decoded the same way. If a field were
 * renumbered or retyped in proto/kvstore.proto, these bytes would stop matching.
 */

import assert from "node:assert/strict";
import http2 from "node:http2";
import { Buffer } from "node:buffer";
import { startServer } from "./helpers/server_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

function varint(value: bigint): number[] {
  const bytes: number[] = [];
  let rest = BigInt.asUintN(64, value);
  do {
    let byte = Number(rest & 0x7fn);
    rest >>= 7n;
    if (rest > 0n) byte |= 0x80;
    bytes.push(byte);
  } while (rest > 0n);
  return bytes;
}

type Field = [number, string | number | boolean];

/** Encodes fields: strings as length-delimited (wire type 2), numbers and booleans as
 * varints (wire type 0), negative int32 sign-extended to 64 bits as protobuf requires. */
function encode(fields: Field[]): Uint8Array {
  const bytes: number[] = [];
  for (const [number, value] of fields) {
    if (typeof value === "string") {
      const text = new TextEncoder().encode(value);
      bytes.push(...varint(BigInt((number << 3) | 2)), ...varint(BigInt(text.length)), ...text);
    } else {
      bytes.push(...varint(BigInt(number << 3)), ...varint(BigInt(typeof value === "boolean" ? Number(value) : value)));
    }
  }
  return Uint8Array.from(bytes);
}

/** Decodes a message into field number -> last value (varints as int64 bigints). */
function decode(bytes: Uint8Array): Map<number, bigint | string> {
  const fields = new Map<number, bigint | string>();
  let offset = 0;
  const readVarint = () => {
    let result = 0n;
    let shift = 0n;
    while (true) {
      const byte = bytes[offset++];
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return BigInt.asIntN(64, result);
      shift += 7n;
    }
  };
  while (offset < bytes.length) {
    const tag = Number(readVarint());
    const wireType = tag & 7;
    if (wireType === 0) fields.set(tag >> 3, readVarint());
    else if (wireType === 2) {
      const length = Number(readVarint());
      fields.set(tag >> 3, new TextDecoder().decode(bytes.subarray(offset, offset + length)));
      offset += length;
    } else throw new Error(`unexpected wire type ${wireType}`);
  }
  return fields;
}

/** Makes one unary gRPC call with a hand-encoded request; resolves with the decoded
 * response fields and the grpc-status trailer. */
function call(
  session: http2.ClientHttp2Session,
  rpc: string,
  request: Field[] | Uint8Array,
): Promise<{ status: string; message: string; fields: Map<number, bigint | string> }> {
  return new Promise((resolve, reject) => {
    const body = request instanceof Uint8Array ? request : encode(request);
    const frame = Buffer.alloc(5 + body.length);
    frame.writeUInt8(0, 0);
    frame.writeUInt32BE(body.length, 1);
    frame.set(body, 5);
    const stream = session.request({
      ":method": "POST",
      ":path": `/kvstore.KeyValueStore/${rpc}`,
      "content-type": "application/grpc",
      te: "trailers",
    });
    const chunks: Buffer[] = [];
    let status = "";
    let message = "";
    // A call refused before any answer ends with its status in the headers (trailers-only).
    const readStatus = (headers: http2.IncomingHttpHeaders) => {
      if (headers["grpc-status"] === undefined) return;
      status = String(headers["grpc-status"]);
      message = decodeURIComponent(String(headers["grpc-message"] ?? ""));
    };
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("response", readStatus);
    stream.on("trailers", readStatus);
    stream.on("error", reject);
    stream.on("end", () => {
      const data = Buffer.concat(chunks);
      const fields = data.length >= 5 ? decode(data.subarray(5, 5 + data.readUInt32BE(1))) : new Map();
      resolve({ status, message, fields });
    });
    stream.end(frame);
  });
}

Deno.test("smoke: the seed rpcs answer hand-encoded requests with the C++ store's field numbers", opts, async () => {
  await using server = await startServer();
  const session = http2.connect(`http://${server.address}`);
  try {
    // SetRequest{key=1, value=2} -> SetResponse{success=1}
    let reply = await call(session, "Set", [[1, "wire-key"], [2, "wire-value"]]);
    assert.equal(reply.status, "0");
    assert.equal(reply.fields.get(1), 1n);

    // GetRequest{key=1} -> GetResponse{found=1, value=2}
    reply = await call(session, "Get", [[1, "wire-key"]]);
    assert.equal(reply.fields.get(1), 1n);
    assert.equal(reply.fields.get(2), "wire-value");

    // ContainsRequest{key=1} -> ContainsResponse{exists=1}
    reply = await call(session, "Contains", [[1, "wire-key"]]);
    assert.equal(reply.fields.get(1), 1n);

    // TTLRequest{key=1} -> TTLResponse{seconds=1}: -1 and -2 are negative int32s.
    reply = await call(session, "TTL", [[1, "wire-key"]]);
    assert.equal(reply.fields.get(1), -1n);
    reply = await call(session, "TTL", [[1, "no-such-key"]]);
    assert.equal(reply.fields.get(1), -2n);

    // ExpireRequest{key=1, seconds=2} -> ExpireResponse{success=1}
    reply = await call(session, "Expire", [[1, "wire-key"], [2, 600]]);
    assert.equal(reply.fields.get(1), 1n);
    reply = await call(session, "TTL", [[1, "wire-key"]]);
    assert.ok(reply.fields.get(1) === 600n || reply.fields.get(1) === 599n);

    // DeleteRequest{key=1} -> DeleteResponse{success=1, found=2}
    reply = await call(session, "Delete", [[1, "wire-key"]]);
    assert.equal(reply.fields.get(1), 1n);
    assert.equal(reply.fields.get(2), 1n);

    // A miss: found is false (absent, or an explicit 0: proto3 readers take both).
    reply = await call(session, "Get", [[1, "wire-key"]]);
    assert.equal(reply.status, "0");
    assert.equal(reply.fields.get(1) ?? 0n, 0n);
    assert.equal(reply.fields.get(2) ?? "", "");

    // A negative int32 seconds (ten varint bytes on the wire) deletes, as EXPIRE <= 0 does.
    await call(session, "Set", [[1, "neg"], [2, "v"]]);
    reply = await call(session, "Expire", [[1, "neg"], [2, -1]]);
    assert.equal(reply.fields.get(1), 1n);
    reply = await call(session, "Contains", [[1, "neg"]]);
    assert.equal(reply.fields.get(1) ?? 0n, 0n);

    // Fields a newer client adds (unknown numbers) are ignored, as proto3 requires.
    reply = await call(session, "Set", [[1, "k2"], [2, "v2"], [99, "from the future"]]);
    assert.equal(reply.status, "0");
  } finally {
    session.close();
  }
});

Deno.test("smoke: a replica takes the C++ master's hand-encoded ReplicateCommand pushes", opts, async () => {
  // A master address nobody serves: the replica waits for pushes meanwhile.
  await using replica = await startServer({ args: ["--replica", "--master-address", "127.0.0.1:1"] });
  const session = http2.connect(`http://${replica.address}`);
  try {
    // ReplicationCommand{type=1 (SET = 0, so absent), key=2, value=3, seconds=4, sequence_id=5}
    // -> ReplicationResponse{success=1, last_applied_sequence=2 (0, so absent)}
    let reply = await call(session, "ReplicateCommand", [[2, "pushed"], [3, "v"], [5, 0]]);
    assert.equal(reply.status, "0");
    assert.equal(reply.fields.get(1), 1n);
    assert.equal(reply.fields.get(2) ?? 0n, 0n);
    // EXPIRE = 2 with relative seconds.
    reply = await call(session, "ReplicateCommand", [[1, 2], [2, "pushed"], [4, 100], [5, 1]]);
    assert.equal(reply.fields.get(2), 1n);
    reply = await call(session, "TTL", [[1, "pushed"]]);
    assert.ok(reply.fields.get(1) === 100n || reply.fields.get(1) === 99n);
    // DELETE = 1.
    reply = await call(session, "ReplicateCommand", [[1, 1], [2, "pushed"], [5, 2]]);
    assert.equal(reply.fields.get(2), 2n);
    reply = await call(session, "Contains", [[1, "pushed"]]);
    assert.equal(reply.fields.get(1) ?? 0n, 0n);
    // An id the log could not record (2^53 - 1, held as 2^53) is refused, and the replica
    // goes on taking the master's pushes (it used to skip to it and then refuse them all).
    reply = await call(session, "ReplicateCommand", [[2, "far"], [3, "v"], [5, Number.MAX_SAFE_INTEGER]]);
    assert.equal(reply.status, "3");
    assert.match(reply.message, /^replication: Invalid sequence_id 9007199254740991: over 9007199254740990/);
    reply = await call(session, "ReplicateCommand", [[2, "next"], [3, "v"], [5, 3]]);
    assert.equal(reply.status, "0");
    assert.equal(reply.fields.get(2), 3n);
  } finally {
    session.close();
  }
});

Deno.test("smoke: requests a C++ server could not parse are refused, never stored altered", opts, async () => {
  await using server = await startServer();
  const session = http2.connect(`http://${server.address}`);
  try {
    // SetRequest{key="bin", value=ff 00 80}: bytes in a string field that are not UTF-8,
    // as a client that stores binary data in the value would send them. A lenient decoder
    // would store U+FFFD in their place and answer success.
    const binary = Uint8Array.from([0x0a, 3, 0x62, 0x69, 0x6e, 0x12, 3, 0xff, 0x00, 0x80]);
    let reply = await call(session, "Set", binary);
    assert.equal(reply.status, "3", "INVALID_ARGUMENT");
    assert.match(reply.message, /^transport: Cannot decode the Set request: field 2 "value" is not valid UTF-8/);
    reply = await call(session, "Contains", [[1, "bin"]]);
    assert.equal(reply.fields.get(1) ?? 0n, 0n, "nothing was stored");

    // SetRequest whose key claims 50 bytes but the message ends after one: truncated.
    reply = await call(session, "Set", Uint8Array.from([0x0a, 50, 0x62, 0x12, 1, 0x76]));
    assert.equal(reply.status, "3");
    assert.match(reply.message, /field 1 "key" runs past the end of the message/);
    reply = await call(session, "Contains", [[1, "b"]]);
    assert.equal(reply.fields.get(1) ?? 0n, 0n, "no truncated key was stored");

    // An MSet with one bad entry is refused whole.
    const entry = (
      key: string,
      value: number[],
    ) => [0x0a, key.length, ...new TextEncoder().encode(key), 0x12, value.length, ...value];
    const good = entry("m1", [0x76]);
    const bad = entry("m2", [0xc3]);
    const mset = Uint8Array.from([0x0a, good.length, ...good, 0x0a, bad.length, ...bad]);
    reply = await call(session, "MSet", mset);
    assert.equal(reply.status, "3");
    assert.match(reply.message, /field 1 "entries" holds a message whose field 2 "value" is not valid UTF-8/);
    reply = await call(session, "Contains", [[1, "m1"]]);
    assert.equal(reply.fields.get(1) ?? 0n, 0n, "no entry of the refused MSet was stored");

    // Field 1's tag in 5 bytes whose last carries bit 32 (field 2^29 + 1 to a 64-bit
    // reader, field 1 to protobufjs's 32-bit one), then a key that is not UTF-8: it would
    // be stored as U+FFFD if the check took the field for an unknown one.
    reply = await call(session, "Set", Uint8Array.from([0x8a, 0x80, 0x80, 0x80, 0x10, 2, 0xc3, 0x28, 0x12, 1, 0x76]));
    assert.equal(reply.status, "3");
    assert.match(reply.message, /the field tag at byte 0 is over 5 bytes or 32 bits/);
    // The same tag in 6 bytes: protobufjs would skip the key's length and read garbage.
    reply = await call(session, "Set", Uint8Array.from([0x8a, 0x80, 0x80, 0x80, 0x80, 0x00, 1, 0x41, 0x12, 1, 0x76]));
    assert.equal(reply.status, "3");
    reply = await call(session, "Scan", [[3, 10]]);
    assert.equal(reply.fields.get(1), undefined, "no key was stored by either");

    // A streamed request's messages are checked as well: a Sync handshake cut short is
    // refused with what is wrong, not grpc-js's INTERNAL "Error deserializing request".
    reply = await call(session, "Sync", Uint8Array.from([0x0a, 50, 0x61]));
    assert.equal(reply.status, "3");
    assert.match(reply.message, /^transport: Cannot decode the Sync request: field 1 "replica_id" runs past the end/);
    reply = await call(session, "Sync", Uint8Array.from([0xff, 0xff, 0xff]));
    assert.equal(reply.status, "3");

    // The server is up, and valid UTF-8 (here 4-byte sequences) is stored as sent.
    reply = await call(session, "Set", [[1, "emoji"], [2, "😀 ok"]]);
    assert.equal(reply.status, "0");
    reply = await call(session, "Get", [[1, "emoji"]]);
    assert.equal(reply.fields.get(2), "😀 ok");
  } finally {
    session.close();
  }
});

Deno.test(
  "smoke: a C++ replica's hand-encoded StreamReplication gets the master's writes with the seed's field numbers",
  opts,
  async () => {
    await using server = await startServer();
    const session = http2.connect(`http://${server.address}`);
    try {
      await call(session, "Set", [[1, "s"], [2, "v"]]);
      await call(session, "Expire", [[1, "s"], [2, 100]]);
      await call(session, "Delete", [[1, "s"]]);
      // ReplicationStreamRequest{start_sequence=1, replica_id="cpp"}: a stream of
      // ReplicationCommand{type=1, key=2, value=3, seconds=4, sequence_id=5}.
      const body = encode([[1, 1], [2, "cpp"]]);
      const frame = Buffer.alloc(5 + body.length);
      frame.writeUInt32BE(body.length, 1);
      frame.set(body, 5);
      const stream = session.request({
        ":method": "POST",
        ":path": "/kvstore.KeyValueStore/StreamReplication",
        "content-type": "application/grpc",
        te: "trailers",
      });
      stream.on("error", () => {});
      const commands: Map<number, bigint | string>[] = [];
      const received = new Promise<void>((resolve, reject) => {
        let pending = Buffer.alloc(0);
        const timer = setTimeout(() => reject(new Error(`got ${commands.length} of 3 commands`)), 10_000);
        stream.on("data", (chunk: Buffer) => {
          pending = Buffer.concat([pending, chunk]);
          while (pending.length >= 5 && pending.length >= 5 + pending.readUInt32BE(1)) {
            const length = pending.readUInt32BE(1);
            commands.push(decode(pending.subarray(5, 5 + length)));
            pending = pending.subarray(5 + length);
          }
          if (commands.length >= 3) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
      stream.end(frame);
      await received;
      stream.close();
      const [set, expire, del] = commands;
      assert.equal(set.get(1) ?? 0n, 0n, "SET = 0");
      assert.equal(set.get(2), "s");
      assert.equal(set.get(3), "v");
      assert.equal(set.get(5), 1n);
      assert.equal(expire.get(1), 2n, "EXPIRE = 2");
      assert.equal(expire.get(4), 100n, "seconds, as the C++ store sends them");
      assert.equal(expire.get(5), 2n);
      assert.equal(del.get(1), 1n, "DELETE = 1");
      assert.equal(del.get(2), "s");
      assert.equal(del.get(5), 3n);
    } finally {
      session.close();
    }
  },
);
