/**
 * Hostile protobuf requests, generated from a seed, for tests/wire_fuzz_test.ts; and a
 * reference parser that says what a strict protobuf parser makes of any bytes.
 *
 * ## Generation
 *
 * Every rpc of every service kvstore serves is found in the same .proto texts the node
 * serves (proto.ts's PROTO_FILES), so an rpc added later is fuzzed without a change
 * here. A case is the request bytes for one rpc (and, for a streamed request, the
 * messages that follow it), built by one of three recipes:
 *
 * - `valid`: a well-formed message of the request type whose fields take plain or
 *   extreme values (empty, over the key limit, NUL, emoji, int32 and int64 limits,
 *   varints wider than their type, bools of 2 or 2^64-1, unknown enum values, repeated
 *   fields many times), now and then a field twice or an unknown field;
 * - `extreme`: such a message, with now and then a perturbation a hostile or buggy
 *   client might send: an overlong varint or tag, a wrong wire type, invalid UTF-8, a
 *   group with no end, a tag past 32 bits, two members of a oneof;
 * - `mutated`: such a message with random bit flips, truncations, insertions, deletions
 *   and duplications;
 * - `garbage`: random bytes, or random tags with random payloads, or groups nested past
 *   any parser's depth limit.
 *
 * Everything comes from {@linkcode Random}, a small PRNG seeded per case (seed, case
 * index), so a case is the same bytes whatever ran before it, and a run is replayed by
 * its seed. Nothing reads the clock.
 *
 * ## The reference parser
 *
 * {@linkcode referenceDecode} parses bytes against a message type as the protobuf
 * encoding spec (and the C++ runtime the store's old clients use) says, with no code
 * shared with the node's own check (src/transport/wire_check.ts) or with protobufjs: the
 * fuzz test compares the node's verdict and decoding with it. Beyond the spec it refuses,
 * as the node does, encodings that no encoder writes and that protobufjs (which decodes
 * requests on the node) reads differently from the spec: a tag or a length written in
 * more than 5 bytes or past 32 bits, a varint of a 32-bit type (int32, uint32, enum,
 * bool) written in 6 to 9 bytes, a bool whose low 32 bits are zero but whose value is
 * not, two members of one oneof (protobufjs keeps both), and a message field that is not
 * repeated given twice (protobufjs keeps the last where the spec merges them).
 *
 * @module
 */

import protobuf from "protobufjs";
import { PROTO_FILES } from "../../src/transport/proto.ts";

// ---------------------------------------------------------------------------------------
// Random numbers.

/** A seeded PRNG (mulberry32): the same seed gives the same numbers everywhere. */
export class Random {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** The PRNG of case `index` of a run seeded `seed`: independent of every other case. */
  static forCase(seed: number, index: number): Random {
    return new Random(Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(index + 1, 0xc2b2ae35));
  }

  /** A number in [0, 1). */
  next(): number {
    let t = this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** A whole number in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  bytes(count: number): number[] {
    return Array.from({ length: count }, () => this.int(256));
  }
}

// ---------------------------------------------------------------------------------------
// The rpcs served.

/** One rpc of one service, with its message types. */
export interface FuzzMethod {
  /** The service's full name, "kvstore.KeyValueStore". */
  readonly service: string;
  readonly name: string;
  /** The HTTP/2 path, "/kvstore.KeyValueStore/Get". */
  readonly path: string;
  readonly requestType: protobuf.Type;
  readonly responseType: protobuf.Type;
  readonly requestStream: boolean;
  readonly responseStream: boolean;
}

let methods: FuzzMethod[] | undefined;

/** Every rpc of every service in the .proto files a node serves. */
export function fuzzMethods(): readonly FuzzMethod[] {
  if (methods !== undefined) return methods;
  methods = [];
  for (const file of PROTO_FILES) {
    const root = protobuf.parse(file.text, { keepCase: true }).root;
    root.resolveAll();
    for (const service of servicesOf(root)) {
      const serviceName = service.fullName.slice(1);
      for (const method of service.methodsArray) {
        methods.push({
          service: serviceName,
          name: method.name,
          path: `/${serviceName}/${method.name}`,
          requestType: method.resolvedRequestType!,
          responseType: method.resolvedResponseType!,
          requestStream: method.requestStream === true,
          responseStream: method.responseStream === true,
        });
      }
    }
  }
  return methods;
}

function servicesOf(namespace: protobuf.NamespaceBase): protobuf.Service[] {
  return namespace.nestedArray.flatMap((nested) =>
    nested instanceof protobuf.Service ? [nested] : nested instanceof protobuf.Namespace ? servicesOf(nested) : []
  );
}

// ---------------------------------------------------------------------------------------
// Encoding, by hand, so that anything can be written.

const VARINT = 0;
const FIXED64 = 1;
const LENGTH_DELIMITED = 2;
const START_GROUP = 3;
const END_GROUP = 4;
const FIXED32 = 5;

/** A varint of `value` (taken modulo 2^64), padded to `width` bytes when wider than it
 * needs (an overlong encoding, which parsers accept up to 10 bytes). */
export function varint(value: bigint, width = 0): number[] {
  const bytes: number[] = [];
  let rest = BigInt.asUintN(64, value);
  do {
    bytes.push(Number(rest & 0x7fn));
    rest >>= 7n;
  } while (rest > 0n);
  while (bytes.length < width) bytes.push(0);
  return bytes.map((byte, i) => (i < bytes.length - 1 ? byte | 0x80 : byte));
}

function tag(number: number, wireType: number, width = 0): number[] {
  return varint((BigInt(number) << 3n) | BigInt(wireType), width);
}

/** `parts` one after the other, in one array. */
function concat(parts: readonly ArrayLike<number>[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function lengthDelimited(number: number, payload: ArrayLike<number>, tagWidth = 0): Uint8Array {
  return concat([tag(number, LENGTH_DELIMITED, tagWidth), varint(BigInt(payload.length)), payload]);
}

function fixed(value: bigint, bytes: number): number[] {
  return Array.from({ length: bytes }, (_, i) => Number((BigInt.asUintN(bytes * 8, value) >> BigInt(8 * i)) & 0xffn));
}

const utf8 = new TextEncoder();

// ---------------------------------------------------------------------------------------
// Values.

/** Strings any field may get: empty, NUL, multi-byte and 4-byte UTF-8, the largest code
 * point, a replacement character, digits, and long ones. */
const STRINGS: readonly string[] = [
  "",
  "k",
  "fuzz",
  " ",
  "\u0000",
  "a\u0000b",
  "é",
  "😀",
  "\u{10ffff}",
  "\ufffd",
  "\ufeff",
  "-1",
  "9".repeat(30),
  "%s%n",
  "../../etc/passwd",
  "x".repeat(1000),
  // Bytes a terminal acts on, should a log show them raw.
  "\u001b[31mred\u001b[0m",
  "line\nbreak",
  "\r",
  "\u009b2J",
];

/** Strings for fields that name addresses, shards or services. */
const ADDRESS_STRINGS: readonly string[] = [
  "127.0.0.1:1",
  "127.0.0.1:0",
  "localhost:65536",
  "127.0.0.1:99999",
  ":",
  ":1",
  "host:",
  "[::1]:1",
  "[zz]:1",
  "999.1.1.1:1",
  "a=b=c",
  "name=",
  "=127.0.0.1:1",
  "127.0.0.1:1+127.0.0.1:1",
  "127.0.0.1:1+",
  `${"a".repeat(300)}:1`,
  "http://127.0.0.1:1",
  "127.0.0.1:1\n\u001b[31m",
  "kvstore.KeyValueStore",
  "grpc.health.v1.Health",
  "kvstore.proto",
  "kvstore.GetRequest",
  "*",
];

/** Invalid UTF-8: a lone byte, a cut sequence, an encoded surrogate, an overlong NUL,
 * past U+10FFFF. */
const INVALID_UTF8: readonly number[][] = [
  [0xff],
  [0x61, 0xc3],
  [0xed, 0xa0, 0x80],
  [0xc0, 0x80],
  [0xf4, 0x90, 0x80, 0x80],
  [0x80, 0x61],
];

const INT32_VALUES: readonly bigint[] = [0n, 1n, -1n, 2n, 7n, 60n, 100n, 2147483647n, -2147483648n];
/** Plain numbers, which pass the checks on ranges and so reach what lies behind them. */
const SMALL_VALUES: readonly bigint[] = [0n, 1n, 2n, 3n, 10n, 100n, 1000n, 60_000n];
/** Varints wider than 32 bits, sent for 32-bit fields (parsers keep the low 32 bits). */
const INT32_WIDE_VALUES: readonly bigint[] = [2147483648n, 4294967295n, 4294967296n + 5n, (1n << 63n) - 1n, -1n];
const INT64_VALUES: readonly bigint[] = [
  0n,
  1n,
  -1n,
  1000n,
  (1n << 53n) - 1n,
  1n << 53n,
  (1n << 53n) + 1n,
  (1n << 63n) - 1n,
  -(1n << 63n),
  (1n << 64n) - 1n,
  // Unix ms: long past, soon after the PRNG's epoch-free idea of now, past the TTL limit,
  // and past the largest JavaScript Date.
  1_000_000_000_000n,
  4_102_444_800_000n,
  8_640_000_000_000_001n,
];
const BOOL_VALUES: readonly bigint[] = [0n, 1n, 2n, 1n << 32n, (1n << 64n) - 1n];
const ENUM_VALUES: readonly bigint[] = [0n, 1n, 2n, 3n, 4n, 5n, 6n, 7n, 99n, -1n, 2147483647n];

/** How many elements a repeated field gets: mostly a few, now and then past a batch
 * limit (BATCH_KEYS_MAX is 10000). */
function repeatCount(random: Random): number {
  if (random.chance(0.01)) return 10_001;
  if (random.chance(0.05)) return 20 + random.int(200);
  return random.int(4);
}

/** Whether a field's name says it holds an address, a shard or a service name. */
function isAddressLike(name: string): boolean {
  return /address|shard|service|symbol|filename|type|host|replica_id|replid|cursor|prefix/.test(name);
}

function randomText(random: Random): string {
  const length = random.int(24);
  let text = "";
  for (let i = 0; i < length; i++) {
    text += random.chance(0.8)
      ? String.fromCharCode(0x20 + random.int(0x5f))
      : String.fromCodePoint(random.chance(0.5) ? random.int(0xd800) : 0xe000 + random.int(0x10ffff - 0xe000));
  }
  return text;
}

/** The UTF-8 bytes of a string field's value, or bytes that are not UTF-8 at all. */
function stringPayload(random: Random, field: protobuf.Field, options: GenerateOptions): ArrayLike<number> {
  const roll = random.next();
  if (roll < 0.04 && options.perturb === true) return random.pick(INVALID_UTF8);
  if (roll < 0.05 && options.largeStrings !== false) {
    // Around the key limit (64 KiB), and (values) rarely around the value limit (16 MiB).
    const huge = options.largeStrings === "value" && random.chance(0.1);
    const length = huge ? 16 * 1024 * 1024 + random.int(2) : 65536 + random.int(2);
    return utf8.encode(random.pick(["k", "a", "1", ":"]).repeat(length - 2) + random.pick([":1", "ab", "é"]));
  }
  if (roll < 0.25 && isAddressLike(field.name)) {
    return utf8.encode(random.pick([...ADDRESS_STRINGS, ...options.knownStrings]));
  }
  if (roll < 0.45) return utf8.encode(randomText(random));
  if (roll < 0.55 && options.knownStrings.length > 0) return utf8.encode(random.pick(options.knownStrings));
  return utf8.encode(random.pick(STRINGS));
}

/** What generation may use beyond the PRNG. */
export interface GenerateOptions {
  /** Whether encodings a strict parser refuses may be generated (see the recipes). */
  readonly perturb?: boolean;
  /** Strings that mean something to the node under test (its keys, addresses, shard
   * names), mixed in with the others. */
  readonly knownStrings: readonly string[];
  /** Whether strings around the key limit ("key") and the value limit too ("value", which
   * is costly) may be generated, in fields of the request itself that are not repeated. */
  readonly largeStrings: "key" | "value" | false;
}

/** The encoding of one occurrence of `field` (tag and payload), with a value drawn for
 * its type, or a wrong wire type or invalid UTF-8 now and then. */
function encodeField(random: Random, field: protobuf.Field, depth: number, options: GenerateOptions): Uint8Array {
  const number = field.id;
  const perturb = options.perturb === true;
  // Overlong tags: up to 5 bytes all parsers read alike; 6 and 7 only when perturbing.
  const tagWidth = random.chance(0.02) ? 2 + random.int(perturb ? 6 : 4) : 0;
  if (perturb && random.chance(0.015)) {
    // A wrong wire type, with a payload of that type.
    return concat([tag(number, random.pick([VARINT, FIXED64, FIXED32, LENGTH_DELIMITED])), random.bytes(8)]);
  }
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) {
    const inner = depth < 3
      ? generateMessage(random, resolved, depth + 1, { ...options, largeStrings: false as const })
      : new Uint8Array();
    return lengthDelimited(number, inner, tagWidth);
  }
  // Overlong varints: any width to 10 bytes, and 11 (too long) when perturbing; a 32-bit
  // number's in 6 to 9 bytes only when perturbing (see the reference parser).
  const overlong = random.chance(0.03);
  const varintWidth = overlong ? 1 + random.int(perturb ? 11 : 10) : 0;
  const varint32Width = overlong ? (perturb ? 1 + random.int(11) : random.pick([1, 2, 3, 4, 5, 10])) : 0;
  if (resolved instanceof protobuf.Enum) {
    return concat([tag(number, VARINT, tagWidth), varint(random.pick(ENUM_VALUES), varint32Width)]);
  }
  switch (field.type) {
    case "string":
      return lengthDelimited(number, stringPayload(random, field, options), tagWidth);
    case "bytes":
      return lengthDelimited(number, random.bytes(random.int(16)), tagWidth);
    case "bool": {
      const value = random.pick(perturb ? BOOL_VALUES : BOOL_VALUES.filter((bool) => bool !== 1n << 32n));
      return concat([tag(number, VARINT, tagWidth), varint(value, varint32Width)]);
    }
    case "int32":
    case "uint32":
    case "sint32": {
      const roll = random.next();
      const value = roll < 0.4
        ? random.pick(SMALL_VALUES)
        : roll < 0.55
        ? random.pick(INT32_WIDE_VALUES)
        : random.pick(INT32_VALUES);
      return concat([tag(number, VARINT, tagWidth), varint(value, varint32Width)]);
    }
    case "int64":
    case "uint64":
    case "sint64": {
      const value = random.chance(0.4) ? random.pick(SMALL_VALUES) : random.pick(INT64_VALUES);
      return concat([tag(number, VARINT, tagWidth), varint(value, varintWidth)]);
    }
    case "double":
    case "fixed64":
    case "sfixed64":
      return concat([tag(number, FIXED64, tagWidth), fixed(random.pick([...INT64_VALUES, 0x7ff8000000000001n]), 8)]);
    default:
      return concat([tag(number, FIXED32, tagWidth), fixed(random.pick(INT64_VALUES), 4)]);
  }
}

/** A repeated number packed into one length-delimited field. */
function encodePacked(random: Random, field: protobuf.Field, count: number): Uint8Array {
  const payload: number[] = [];
  for (let i = 0; i < count; i++) payload.push(...varint(random.pick(INT64_VALUES)));
  return lengthDelimited(field.id, payload);
}

/** An unknown field of a random wire type, well formed or not. */
function unknownField(random: Random, perturb: boolean): number[] {
  const number = random.chance(0.5) ? 1000 + random.int(1000) : random.pick([15, 16, 2047, 2048, 536870911]);
  switch (random.int(perturb ? 6 : 5)) {
    case 0:
      return [...tag(number, VARINT), ...varint(random.pick(INT64_VALUES))];
    case 1:
      return [...tag(number, FIXED64), ...random.bytes(8)];
    case 2:
      return Array.from(lengthDelimited(number, random.bytes(random.int(12))));
    case 3:
      return [...tag(number, FIXED32), ...random.bytes(4)];
    case 4:
      // A group, with its end (and, now and then, an end of another number).
      return [
        ...tag(number, START_GROUP),
        ...tag(1, VARINT),
        1,
        ...tag(!perturb || random.chance(0.9) ? number : number + 1, END_GROUP),
      ];
    default:
      // Wire types 6 and 7 do not exist; 4 with no group open is an end of nothing.
      return [...tag(number, random.pick([4, 6, 7])), ...random.bytes(2)];
  }
}

/**
 * A message of `type` whose fields take extreme values, with perturbations now and then
 * (see the module doc). `depth` counts the message fields above this one.
 */
export function generateMessage(
  random: Random,
  type: protobuf.Type,
  depth: number,
  options: GenerateOptions,
): Uint8Array {
  const fields: ArrayLike<number>[] = [];
  // One member of each oneof, or (perturbing, now and then) more.
  const oneofMembers = new Map<protobuf.OneOf, protobuf.Field>();
  for (const oneof of type.oneofsArray) oneofMembers.set(oneof, random.pick(oneof.fieldsArray));
  const perturb = options.perturb === true;
  for (const field of type.fieldsArray) {
    if (random.chance(0.3)) continue;
    if (field.partOf !== null && oneofMembers.get(field.partOf) !== field && !(perturb && random.chance(0.1))) continue;
    if (field.repeated) {
      const count = repeatCount(random);
      const packable = field.resolvedType === null && !["string", "bytes"].includes(field.type);
      if (packable && random.chance(0.5)) {
        fields.push(encodePacked(random, field, count));
        continue;
      }
      const element = { ...options, largeStrings: false as const };
      for (let i = 0; i < count; i++) fields.push(encodeField(random, field, depth, element));
      continue;
    }
    fields.push(encodeField(random, field, depth, options));
    // The same field again: the last one counts (a message given twice is refused).
    const isMessage = field.resolvedType instanceof protobuf.Type;
    if (random.chance(0.05) && (!isMessage || perturb)) fields.push(encodeField(random, field, depth, options));
  }
  if (random.chance(0.15)) fields.push(unknownField(random, perturb));
  if (random.chance(0.1)) {
    // Fields in another order than their numbers'.
    for (let i = fields.length - 1; i > 0; i--) {
      const j = random.int(i + 1);
      [fields[i], fields[j]] = [fields[j], fields[i]];
    }
  }
  if (perturb && random.chance(0.01)) {
    // A tag past 32 bits, which a 32-bit reader would take for field 1.
    fields.push([...tag(1, LENGTH_DELIMITED, 5).slice(0, 4), 0x10, 1, 0xc3]);
  }
  return concat(fields);
}

/** Random mutations of `bytes`: 1 to 4 of bit flips, byte changes, insertions,
 * deletions, duplications and truncation. */
export function mutate(random: Random, bytes: Uint8Array): Uint8Array {
  let out: Uint8Array = bytes.slice();
  const count = 1 + random.int(4);
  for (let i = 0; i < count; i++) {
    const at = random.int(out.length + 1);
    switch (random.int(6)) {
      case 0:
        if (at < out.length) out[at] ^= 1 << random.int(8);
        break;
      case 1:
        if (at < out.length) out[at] = random.pick([0x00, 0x7f, 0x80, 0xff, random.int(256)]);
        break;
      case 2:
        out = concat([out.subarray(0, at), random.bytes(1 + random.int(4)), out.subarray(at)]);
        break;
      case 3:
        out = concat([out.subarray(0, at), out.subarray(at + 1 + random.int(4))]);
        break;
      case 4:
        out = concat([out.subarray(0, at), out.subarray(at, at + 1 + random.int(8)), out.subarray(at)]);
        break;
      default:
        out = out.slice(0, at);
    }
  }
  return out;
}

/** Bytes that are not a message of any type, mostly: random bytes, random tags with
 * random payloads, groups nested past the depth limit, a varint of 11 bytes. */
export function garbage(random: Random): number[] {
  switch (random.int(5)) {
    case 0:
      return random.bytes(random.int(64));
    case 1: {
      const out: number[] = [];
      const count = 1 + random.int(6);
      for (let i = 0; i < count; i++) {
        out.push(...tag(1 + random.int(20), random.int(8)), ...random.bytes(random.int(6)));
      }
      return out;
    }
    case 2: {
      const depth = 90 + random.int(20);
      return [
        ...Array.from({ length: depth }, () => tag(99, START_GROUP)).flat(),
        ...Array.from({ length: depth }, () => tag(99, END_GROUP)).flat(),
      ];
    }
    case 3:
      return [...tag(1 + random.int(8), VARINT), ...Array.from({ length: 11 }, () => 0xff), 0x01];
    default:
      return [...tag(1, LENGTH_DELIMITED), ...varint(1n << BigInt(20 + random.int(40)))];
  }
}

/** How a case's bytes were made. */
export type Recipe = "valid" | "extreme" | "mutated" | "garbage";

/** A request (or one message of a streamed request) of `type`, by a recipe drawn at
 * random (see the module doc). */
export function generateRequest(
  random: Random,
  type: protobuf.Type,
  options: GenerateOptions,
): { recipe: Recipe; bytes: Uint8Array } {
  const roll = random.next();
  const recipe: Recipe = roll < 0.4 ? "valid" : roll < 0.6 ? "extreme" : roll < 0.9 ? "mutated" : "garbage";
  const message = recipe === "garbage"
    ? Uint8Array.from(garbage(random))
    : generateMessage(random, type, 0, { ...options, perturb: recipe !== "valid" });
  return { recipe, bytes: recipe === "mutated" ? mutate(random, message) : message };
}

// ---------------------------------------------------------------------------------------
// The reference parser.

/** Nesting of messages and groups a message may hold (the C++ runtime's default). */
const NESTING_DEPTH_MAX = 100;
/** Bytes a tag, a length or a 32-bit varint may take (5), and a 32-bit varint written
 * sign-extended, as a negative int32 is (10). */
const VARINT32_BYTES_MAX = 5;
const VARINT_BYTES_MAX = 10;

/** A decoded message: field name -> value, for the fields present (last one wins;
 * repeated fields are arrays; 64-bit integers are bigints; enums are numbers). */
export type ReferenceMessage = Map<string, unknown>;

/** What {@linkcode referenceDecode} makes of bytes. */
export type ReferenceResult = { ok: true; message: ReferenceMessage } | { ok: false; problem: string };

const fatalUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

class Malformed extends Error {}

class ReferenceReader {
  readonly bytes: Uint8Array;
  offset: number;
  end: number;

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.offset = 0;
    this.end = bytes.length;
  }

  /** A varint as an unsigned 64-bit bigint, with the number of bytes it took. */
  varint(): { value: bigint; width: number } {
    let value = 0n;
    for (let i = 0; i < VARINT_BYTES_MAX; i++) {
      if (this.offset >= this.end) throw new Malformed("a varint runs past the end");
      const byte = this.bytes[this.offset++];
      value |= BigInt(byte & 0x7f) << BigInt(7 * i);
      if ((byte & 0x80) === 0) return { value: BigInt.asUintN(64, value), width: i + 1 };
    }
    throw new Malformed("a varint is longer than 10 bytes");
  }

  /** A tag or a length: at most 5 bytes, within 32 bits. */
  varint32(what: string): number {
    const { value, width } = this.varint();
    if (width > VARINT32_BYTES_MAX || value > 0xffffffffn) throw new Malformed(`${what} is over 32 bits or 5 bytes`);
    return Number(value);
  }

  take(count: number): Uint8Array {
    if (count > this.end - this.offset) throw new Malformed("a field runs past the end");
    const slice = this.bytes.subarray(this.offset, this.offset + count);
    this.offset += count;
    return slice;
  }

  /** Skips one field's payload of `wireType` (a group to its end). */
  skip(wireType: number, number: number, depth: number): void {
    switch (wireType) {
      case VARINT:
        this.varint();
        return;
      case FIXED64:
        this.take(8);
        return;
      case LENGTH_DELIMITED:
        this.take(this.varint32("a length"));
        return;
      case FIXED32:
        this.take(4);
        return;
      case START_GROUP: {
        if (depth + 1 > NESTING_DEPTH_MAX) throw new Malformed("groups nest too deep");
        for (;;) {
          const inner = this.varint32("a tag");
          if (inner >>> 3 === 0) throw new Malformed("field number 0");
          if ((inner & 7) === END_GROUP) {
            if (inner >>> 3 !== number) throw new Malformed("a group ends with another number");
            return;
          }
          this.skip(inner & 7, inner >>> 3, depth + 1);
        }
      }
      default:
        throw new Malformed(`wire type ${wireType}`);
    }
  }
}

/** The wire type `field` is written with when not packed. */
function wireTypeOfField(field: protobuf.Field): number {
  if (field.resolvedType instanceof protobuf.Type) return LENGTH_DELIMITED;
  if (field.resolvedType instanceof protobuf.Enum) return VARINT;
  switch (field.type) {
    case "string":
    case "bytes":
      return LENGTH_DELIMITED;
    case "double":
    case "fixed64":
    case "sfixed64":
      return FIXED64;
    case "float":
    case "fixed32":
    case "sfixed32":
      return FIXED32;
    default:
      return VARINT;
  }
}

/** A scalar read for `field` at the reader's offset, as the spec gives it. */
function readScalar(reader: ReferenceReader, field: protobuf.Field): unknown {
  if (field.resolvedType instanceof protobuf.Enum) return readVarint32(reader, field, "int32");
  switch (field.type) {
    case "string":
      try {
        return fatalUtf8.decode(reader.take(reader.varint32("a length")));
      } catch (error) {
        if (error instanceof Malformed) throw error;
        throw new Malformed(`field ${field.name} is not UTF-8`);
      }
    case "bytes":
      return reader.take(reader.varint32("a length")).slice();
    case "bool": {
      const { value, width } = reader.varint();
      if (width > VARINT32_BYTES_MAX && width < VARINT_BYTES_MAX) throw new Malformed("a bool of 6 to 9 bytes");
      if (value !== 0n && BigInt.asUintN(32, value) === 0n) throw new Malformed("a bool past 32 bits");
      return value !== 0n;
    }
    case "int32":
    case "uint32":
    case "sint32":
      return readVarint32(reader, field, field.type);
    case "int64":
      return BigInt.asIntN(64, reader.varint().value);
    case "uint64":
      return reader.varint().value;
    case "sint64": {
      const value = reader.varint().value;
      return (value >> 1n) ^ -(value & 1n);
    }
    case "double":
      return new DataView(reader.take(8).slice().buffer).getFloat64(0, true);
    case "float":
      return new DataView(reader.take(4).slice().buffer).getFloat32(0, true);
    case "fixed64":
      return new DataView(reader.take(8).slice().buffer).getBigUint64(0, true);
    case "sfixed64":
      return new DataView(reader.take(8).slice().buffer).getBigInt64(0, true);
    case "fixed32":
      return new DataView(reader.take(4).slice().buffer).getUint32(0, true);
    case "sfixed32":
      return new DataView(reader.take(4).slice().buffer).getInt32(0, true);
    default:
      throw new Error(`wire_fuzz: Unknown field type ${field.type}`);
  }
}

/** A 32-bit varint (int32, uint32, sint32, enum): its low 32 bits, as the spec says;
 * refused when written in 6 to 9 bytes (see the module doc). */
function readVarint32(reader: ReferenceReader, field: protobuf.Field, type: string): number {
  const { value, width } = reader.varint();
  if (width > VARINT32_BYTES_MAX && width < VARINT_BYTES_MAX) {
    throw new Malformed(`field ${field.name}: a 32-bit varint of ${width} bytes`);
  }
  const low = BigInt.asUintN(32, value);
  if (type === "uint32") return Number(low);
  if (type === "sint32") return Number(BigInt.asIntN(32, (low >> 1n) ^ -(low & 1n)));
  return Number(BigInt.asIntN(32, low));
}

function decodeMessage(reader: ReferenceReader, type: protobuf.Type, depth: number): ReferenceMessage {
  if (depth > NESTING_DEPTH_MAX) throw new Malformed("messages nest too deep");
  const message: ReferenceMessage = new Map();
  while (reader.offset < reader.end) {
    const tagValue = reader.varint32("a tag");
    const number = tagValue >>> 3;
    const wireType = tagValue & 7;
    if (number === 0) throw new Malformed("field number 0");
    const field = type.fieldsById[number];
    if (field === undefined) {
      if (wireType === END_GROUP) throw new Malformed("a group end with no group");
      reader.skip(wireType, number, depth);
      continue;
    }
    const expected = wireTypeOfField(field);
    const packed = field.repeated && expected !== LENGTH_DELIMITED && wireType === LENGTH_DELIMITED;
    if (wireType !== expected && !packed) throw new Malformed(`field ${field.name} has wire type ${wireType}`);
    if (packed) {
      const length = reader.varint32("a length");
      if (length > reader.end - reader.offset) throw new Malformed("a packed field runs past the end");
      const outerEnd = reader.end;
      reader.end = reader.offset + length;
      const values = (message.get(field.name) as unknown[] | undefined) ?? [];
      while (reader.offset < reader.end) values.push(readScalar(reader, field));
      reader.end = outerEnd;
      message.set(field.name, values);
      continue;
    }
    let value: unknown;
    if (field.resolvedType instanceof protobuf.Type) {
      const length = reader.varint32("a length");
      if (length > reader.end - reader.offset) throw new Malformed("a message runs past the end");
      const outerEnd = reader.end;
      reader.end = reader.offset + length;
      value = decodeMessage(reader, field.resolvedType, depth + 1);
      reader.end = outerEnd;
      if (!field.repeated && message.has(field.name)) throw new Malformed(`message field ${field.name} twice`);
    } else {
      value = readScalar(reader, field);
    }
    if (field.repeated) {
      const values = (message.get(field.name) as unknown[] | undefined) ?? [];
      values.push(value);
      message.set(field.name, values);
    } else {
      for (const member of field.partOf?.fieldsArray ?? []) {
        if (member !== field && message.has(member.name)) throw new Malformed(`two members of ${field.partOf!.name}`);
      }
      message.set(field.name, value);
    }
  }
  return message;
}

/** What a strict protobuf parser makes of `bytes` as a message of `type` (see the module
 * doc for where it is stricter than the spec). */
export function referenceDecode(bytes: Uint8Array, type: protobuf.Type): ReferenceResult {
  try {
    return { ok: true, message: decodeMessage(new ReferenceReader(bytes), type, 0) };
  } catch (error) {
    if (error instanceof Malformed) return { ok: false, problem: error.message };
    throw error;
  }
}

/** The canonical encoding of a decoded message (protobufjs's encoder, which every
 * decoder reads back exactly): what was sent, written plainly. */
export function canonicalEncoding(message: ReferenceMessage, type: protobuf.Type): Uint8Array {
  return type.encode(type.fromObject(toPlainObject(message, type))).finish();
}

function toPlainObject(message: ReferenceMessage, type: protobuf.Type): Record<string, unknown> {
  const plain: Record<string, unknown> = {};
  for (const [name, value] of message) {
    const field = type.fields[name];
    const convert = (item: unknown): unknown =>
      item instanceof Map
        ? toPlainObject(item as ReferenceMessage, field.resolvedType as protobuf.Type)
        : typeof item === "bigint"
        ? item.toString()
        : item;
    plain[name] = Array.isArray(value) ? value.map(convert) : convert(value);
  }
  return plain;
}

/** Every string in a decoded message, nested ones included. */
export function stringsIn(message: ReferenceMessage): string[] {
  const strings: string[] = [];
  const visit = (value: unknown) => {
    if (typeof value === "string") strings.push(value);
    else if (Array.isArray(value)) value.forEach(visit);
    else if (value instanceof Map) { for (const inner of value.values()) visit(inner); }
  };
  visit(message);
  return strings;
}

/** `bytes` in hex, shortened, for failure messages. */
export function hex(bytes: Uint8Array, bytesMax = 96): string {
  const shown = Array.from(bytes.subarray(0, bytesMax), (byte) => byte.toString(16).padStart(2, "0")).join(" ");
  return bytes.length > bytesMax ? `${shown} ... (${bytes.length} bytes)` : shown;
}
