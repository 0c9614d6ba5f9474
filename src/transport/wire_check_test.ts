import assert from "node:assert/strict";
import { Buffer, isUtf8 } from "node:buffer";
import { findWireProblem, WIRE_NESTING_DEPTH_MAX, type WireSchema } from "./wire_check.ts";
import { kvstoreServiceDefinition, reflectionServiceDefinitions } from "./grpc.ts";
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
  assert.match(check([0x02, 0])!, /field number 0/);
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
  assert.match(check(deepGroups)!, /^field 15 is a group whose field 15 nests groups more than 100 deep$/);
  const deepCut = [...Array(60).fill(0x7b), 0x7d, 1];
  assert.equal(check(deepCut), "field 15 is a group whose field 15 runs past the end of the message", "one line");
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

const NUMBERS: WireSchema = {
  name: "test.Numbers",
  fields: new Map([
    [1, { name: "seconds", kind: "other", wireTypes: [0], varint32: "int32" }],
    [2, { name: "fsync", kind: "other", wireTypes: [0], varint32: "bool" }],
    [3, { name: "seq", kind: "other", wireTypes: [0] }],
    [4, { name: "flags", kind: "other", wireTypes: [0, 2], varint32: "bool" }],
  ]),
};

const CHOICE: WireSchema = {
  name: "test.Choice",
  fields: new Map([
    [1, { name: "name", kind: "string", wireTypes: [2], oneof: "pick" }],
    [2, { name: "symbol", kind: "string", wireTypes: [2], oneof: "pick" }],
    [3, { name: "entry", kind: "message", wireTypes: [2], message: () => ENTRY, singular: true }],
  ]),
};

Deno.test("tags and lengths protobufjs's 32-bit reader would misread are refused", () => {
  // Field 1's tag in 5 bytes whose last carries bit 32: a 32-bit reader sees field 1
  // ("key"), a 64-bit one field 2^29 + 1; the key's bytes are not UTF-8.
  assert.match(check([0x8a, 0x80, 0x80, 0x80, 0x10, 1, 0xc3])!, /^the field tag at byte 0 is over 5 bytes or 32 bits/);
  // Field 1's tag in 6 bytes: protobufjs skips 5 bytes after the 5th, whatever they are.
  assert.match(check([0x8a, 0x80, 0x80, 0x80, 0x80, 0x00, 1, K])!, /^the field tag at byte 0 is over 5 bytes/);
  assert.equal(check([0x8a, 0x80, 0x80, 0x80, 0x00, 1, K]), null, "an overlong tag of 5 bytes reads the same");
  assert.match(check([0x0a, 0x81, 0x80, 0x80, 0x80, 0x80, 0x00, K])!, /^field 1 "key" has its length written in 6/);
  assert.match(
    check([0x7b, 0x8a, 0x80, 0x80, 0x80, 0x80, 0x00, 0x7c])!,
    /^field 15 is a group whose field tag is over/,
  );
  assert.match(check([0x7b, 0x02, 0x00, 0x7c])!, /^field 15 is a group whose field tag is of field number 0/);
});

Deno.test("32-bit numbers in 6 to 9 bytes, and bools whose low 32 bits are 0, are refused", () => {
  assert.equal(check([0x08, 0xff, 0xff, 0xff, 0xff, 0x07], NUMBERS), null, "int32's largest, 5 bytes");
  assert.equal(check([0x08, ...Array(9).fill(0xff), 0x01], NUMBERS), null, "-1, sign-extended to 10 bytes");
  assert.match(
    check([0x08, 0x8a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00], NUMBERS)!,
    /^field 1 "seconds" is a 32-bit number written in 7 bytes \(at most 5, or 10 for a negative one\)/,
  );
  assert.equal(check([0x18, 0x8a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00], NUMBERS), null, "an int64 reads any width");
  assert.equal(check([0x10, 0x02], NUMBERS), null, "a bool of 2 is true to every reader");
  assert.match(check([0x10, 0x80, 0x80, 0x80, 0x80, 0x10], NUMBERS)!, /^field 2 "fsync" is a bool whose low 32 bits/);
  assert.match(
    check([0x22, 7, 0x01, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00], NUMBERS)!,
    /^field 4 "flags" holds a packed number that is a 32-bit number written in 6 bytes/,
  );
  assert.match(
    check([0x22, 2, 0x01, 0x80], NUMBERS)!,
    /^field 4 "flags" holds a packed number that runs past the end of the field/,
  );
  assert.equal(check([0x22, 2, 0x01, 0x00], NUMBERS), null);
});

Deno.test("a message may give one member of a oneof, and a singular message once", () => {
  assert.equal(check([...field(1, [K]), ...field(1, [K])], CHOICE), null, "the same member twice: the last counts");
  assert.match(
    check([...field(1, [K]), ...field(2, [K])], CHOICE)!,
    /^field 2 "symbol" is given with field 1, but both are members of oneof pick: give one/,
  );
  assert.equal(check(field(3, field(1, [K])), CHOICE), null);
  assert.match(check([...field(3, []), ...field(3, [])], CHOICE)!, /^field 3 "entry" is a message given twice/);
});

Deno.test("streamed requests (Sync, reflection) are checked and marked too, not thrown on", () => {
  const { Sync } = kvstoreServiceDefinition();
  const garbage = Sync.requestDeserialize(Buffer.from([0xff, 0xff, 0xff]));
  assert.match(malformedRequestProblem(garbage)!, /runs past the end of the message/);
  const truncated = Sync.requestDeserialize(Buffer.from([0x0a, 50, K]));
  assert.match(malformedRequestProblem(truncated)!, /field 1 "replica_id" runs past the end/);
  const [reflection] = reflectionServiceDefinitions();
  const twoQuestions = reflection.ServerReflectionInfo.requestDeserialize(
    Buffer.from([...field(3, [K]), ...field(7, [])]),
  );
  assert.match(malformedRequestProblem(twoQuestions)!, /both are members of oneof message_request/);
});
