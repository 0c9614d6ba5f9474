import assert from "node:assert/strict";
import { Buffer, isUtf8 } from "node:buffer";
import { findWireProblem, WIRE_NESTING_DEPTH_MAX, type WireSchema } from "./wire_check.ts";
import { kvstoreServiceDefinition } from "./grpc.ts";
import { malformedRequestProblem } from "./proto.ts";

const ENTRY: WireSchema = {
  name: "test.Entry",
  fields: new Map([
    [1, { name: "key", kind: "string", wireTypes: [2] }],
    [2, { name: "value", kind: "string", wireTypes: [2] }],
    [3, { name: "expires_at_ms", kind: "other", wireTypes: [0] }],
  ]),
};

const BATCH: WireSchema = {
  name: "test.Batch",
  fields: new Map([
    [1, { name: "entries", kind: "message", wireTypes: [2], message: () => ENTRY }],
    [2, { name: "counts", kind: "other", wireTypes: [0, 2] }],
  ]),
};

function check(bytes: number[], schema: WireSchema = ENTRY): string | null {
  return findWireProblem(Uint8Array.from(bytes), schema, isUtf8);
}

/** A length-delimited field: tag, length, payload. */
function field(number: number, payload: number[]): number[] {
  return [(number << 3) | 2, payload.length, ...payload];
}

const K = 0x6b; // "k"

Deno.test("well-formed messages pass, including the empty message and multi-byte UTF-8", () => {
  assert.equal(check([]), null);
  assert.equal(check([...field(1, [K]), ...field(2, [0xc3, 0xa9, 0xf0, 0x9f, 0x98, 0x80]), 0x18, 0x96, 0x01]), null);
  assert.equal(check(field(1, [...field(1, [K]), ...field(2, [])]), BATCH), null);
  assert.equal(check([...field(2, [1, 2, 3]), 0x10, 7], BATCH), null, "a repeated number, packed or not");
});

Deno.test("a string field that is not valid UTF-8 is refused, naming the field", () => {
  assert.match(check([...field(1, [K]), ...field(2, [0xff, 0xfe])])!, /^field 2 "value" is not valid UTF-8/);
  assert.match(check(field(1, [0xed, 0xa0, 0x80]))!, /field 1 "key" is not valid UTF-8/, "an encoded surrogate");
  assert.match(check(field(1, field(2, [0x80])), BATCH)!, /^field 1 "entries" holds a message whose field 2 "value"/);
  assert.equal(check(field(9, [0xff])), null, "an unknown field's bytes are not ours to judge");
});

Deno.test("a field that runs past the end of the message is refused", () => {
  assert.match(check([0x0a, 50, K])!, /^field 1 "key" runs past the end of the message/);
  assert.match(check([0x18, 0x96])!, /^field 3 "expires_at_ms" runs past the end/, "a varint cut short");
  assert.match(check([0x0a])!, /^field 1 "key" runs past the end/, "a length missing");
  assert.match(check([0x99])!, /the field tag at byte 0 runs past the end/);
  assert.match(check([0x09, 1, 2, 3])!, /^field 1 "key" has wire type 1/);
  assert.match(check([0x79, 1, 2, 3])!, /^field 15 runs past the end/, "a fixed64 cut short");
  assert.match(check([0x7d, 1, 2, 3])!, /^field 15 runs past the end/, "a fixed32 cut short");
});

Deno.test("a known field with the wrong wire type, field number 0 and undefined wire types are refused", () => {
  assert.match(check([0x08, 5])!, /^field 1 "key" has wire type 0, but its type is encoded with wire type 2/);
  assert.match(check([0x02, 0])!, /numbered 0/);
  assert.match(check([0x7e])!, /^field 15 has wire type 6/);
  assert.match(check([0x7c])!, /^field 15 has wire type 4/, "a group's end without its start");
});

Deno.test("unknown fields of every wire type are skipped, groups whole", () => {
  const unknown = [
    0x78,
    0xff,
    0xff,
    0x01, // field 15, varint
    0x79,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8, // field 15, fixed64
    0x7d,
    1,
    2,
    3,
    4, // field 15, fixed32
    ...field(15, [0xff]), // length-delimited
    0x7b,
    0x08,
    1,
    0x12,
    1,
    0xff,
    0x7c, // field 15, a group holding a varint and bytes
  ];
  assert.equal(check([...unknown, ...field(1, [K])]), null);
  assert.match(check([0x7b, 0x08, 1])!, /^field 15 is a group with no end/);
  assert.match(check([0x7b, 0x74])!, /^field 15 is a group that ends with another field's number/);
});

Deno.test("nesting is bounded", () => {
  const deepGroups = [...Array(WIRE_NESTING_DEPTH_MAX + 1).fill(0x7b), ...Array(WIRE_NESTING_DEPTH_MAX + 1).fill(0x7c)];
  assert.match(check(deepGroups)!, /nests groups more than 100 deep/);
  const fine = [...Array(10).fill(0x7b), ...Array(10).fill(0x7c)];
  assert.equal(check(fine), null);
});

Deno.test("kvstore's request deserializers mark malformed requests instead of decoding garbage", () => {
  const { Set, Get, MSet } = kvstoreServiceDefinition();
  const good = Set.requestDeserialize(Buffer.from([...field(1, [K]), ...field(2, [0x76])]));
  assert.deepEqual(good, { key: "k", value: "v" });
  assert.equal(malformedRequestProblem(good), null);

  const binary = Set.requestDeserialize(Buffer.from([...field(1, [K]), ...field(2, [0xff, 0x00, 0x80])]));
  assert.match(malformedRequestProblem(binary)!, /field 2 "value" is not valid UTF-8/);
  assert.deepEqual(binary, { key: "", value: "" }, "no field of a malformed request is trusted");

  const truncated = Get.requestDeserialize(Buffer.from([0x0a, 50, K]));
  assert.match(malformedRequestProblem(truncated)!, /field 1 "key" runs past the end/);

  const nested = MSet.requestDeserialize(Buffer.from(field(1, field(2, [0xc3]))));
  assert.match(malformedRequestProblem(nested)!, /field 1 "entries" holds a message whose field 2 "value"/);
});
