/**
 * Strict checks of a request's protobuf bytes, made before protobufjs decodes them.
 *
 * protobufjs decodes leniently where the C++ protobuf runtime (which the C++ store and
 * its clients use) refuses to parse:
 *
 * - a `string` field that is not valid UTF-8 becomes U+FFFD replacement characters, so
 *   a client that puts binary bytes in a value would get back other bytes than it
 *   wrote, after a Set that answered success;
 * - a length that runs past the end of the message is cut short, so a truncated Set
 *   stores a truncated key or value;
 * - a known field sent with another wire type is read as if it had the expected one,
 *   which yields garbage;
 * - its 32-bit varint reader (tags, lengths, int32, uint32, enums, bools) keeps the
 *   first 5 bytes of a varint and skips the next 5 unread, whatever they hold: a tag or
 *   a length written in 6 to 9 bytes (overlong) shifts every field after it, and one
 *   whose 5th byte carries bits past 32 is read as another, smaller number, so a field
 *   this check took for unknown (number 2^29 + 1) is decoded as field 1, unchecked; a
 *   bool of 2^32 reads as false where the C++ runtime reads true;
 * - two members of a oneof are both kept (the spec keeps the last one given), and a
 *   message field given twice is the last one (the spec merges them).
 *
 * {@linkcode findWireProblem} walks the bytes once against the message's schema and
 * says what is wrong, so the call can be refused with INVALID_ARGUMENT rather than
 * served with data the client never sent. Against the last point it refuses, beyond the
 * spec, what no encoder writes: a tag or a length in more than 5 bytes or past 32 bits
 * (field numbers end at 2^29 - 1 anyway), a 32-bit number in 6 to 9 bytes (a negative
 * one takes 10, which protobufjs reads right), a bool whose low 32 bits are all 0 but
 * not its value, two members of one oneof, and a message field (not repeated) given
 * twice.
 *
 * The wire format: a message is a sequence of fields, each a varint tag (field number
 * << 3 | wire type) followed by its payload: wire type 0 a varint (at most 10 bytes), 1
 * eight bytes, 2 a varint length and that many bytes (strings, bytes, messages, packed
 * repeated numbers), 5 four bytes, 3 and 4 the start and end of a group (proto2; skipped
 * as a whole). Fields the schema does not know are skipped, as proto3 requires. For
 * example `0a 01 6b 12 01 76` is SetRequest{key (1) = "k", value (2) = "v"}.
 *
 * @module
 */

/** Nesting of messages and groups a message may hold (the C++ runtime's default
 * recursion limit); a deeper one is refused rather than walked. */
export const WIRE_NESTING_DEPTH_MAX = 100;

/** Bytes a varint may take (a 64-bit number), and a tag, a length or a 32-bit number
 * (see the module doc). */
const VARINT_BYTES_MAX = 10;
const VARINT32_BYTES_MAX = 5;

/** Wire types, as the tag's low three bits carry them. */
const VARINT = 0;
const FIXED64 = 1;
const LENGTH_DELIMITED = 2;
export { LENGTH_DELIMITED as WIRE_TYPE_LENGTH_DELIMITED };
const START_GROUP = 3;
const END_GROUP = 4;
const FIXED32 = 5;

/** What the check needs to know of a message type: its fields by number. */
export interface WireSchema {
  /** The message's full name, for error messages ("kvstore.SetRequest"). */
  readonly name: string;
  readonly fields: ReadonlyMap<number, WireField>;
}

/** One field of a {@linkcode WireSchema}. */
export interface WireField {
  readonly name: string;
  /** `string` payloads must be UTF-8; `message` payloads are checked against `message`. */
  readonly kind: "string" | "message" | "other";
  /** The wire types the field may arrive with (a repeated number: its own or packed). */
  readonly wireTypes: readonly number[];
  /** The schema of a `message` field, looked up when needed (types may refer to each
   * other). */
  readonly message?: () => WireSchema;
  /** A number protobufjs reads with its 32-bit varint reader: "int32" (int32, uint32,
   * sint32, an enum) or "bool" (see the module doc). Absent for other fields. */
  readonly varint32?: "int32" | "bool";
  /** The oneof the field is a member of; a message may give only one of its members. */
  readonly oneof?: string;
  /** A message field that is not repeated, which a message may give only once. */
  readonly singular?: boolean;
}

/** The wire type a field of protobuf type `type` (as written in a .proto: "string",
 * "int32", "fixed64", an enum's or a message's name) is encoded with. */
export function wireTypeOf(type: string, isMessage: boolean): number {
  if (isMessage) return LENGTH_DELIMITED;
  switch (type) {
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
      // int32, int64, uint32, uint64, sint32, sint64, bool and enums.
      return VARINT;
  }
}

/**
 * Checks `bytes` as an encoding of `schema`'s message. Returns null when a strict
 * protobuf parser would accept it, else what is wrong, naming the field:
 * `field 2 "value" is not valid UTF-8`. `isUtf8` tells valid UTF-8 (node:buffer's
 * isUtf8, which is native).
 */
export function findWireProblem(
  bytes: Uint8Array,
  schema: WireSchema,
  isUtf8: (bytes: Uint8Array) => boolean,
): string | null {
  return new WireWalker(bytes, isUtf8).message(0, bytes.length, schema, 0);
}

/** Notes that field `number` was given, in `given`; returns why it may not be if it is
 * the second member of its oneof, or a singular message given again. */
function givenTwice(given: Map<string | number, number>, number: number, field: WireField): string | null {
  if (field.oneof !== undefined) {
    const earlier = given.get(field.oneof);
    if (earlier !== undefined && earlier !== number) {
      return `is given with field ${earlier}, but both are members of oneof ${field.oneof}: give one`;
    }
    given.set(field.oneof, number);
  }
  if (field.singular === true) {
    if (given.has(number)) return "is a message given twice (readers disagree on what that means): give it once";
    given.set(number, number);
  }
  return null;
}

class WireWalker {
  #bytes: Uint8Array;
  #isUtf8: (bytes: Uint8Array) => boolean;
  #offset = 0;
  /** The width in bytes and the low 32 bits of the varint #varint read last. */
  #width = 0;
  #low32 = 0;

  constructor(bytes: Uint8Array, isUtf8: (bytes: Uint8Array) => boolean) {
    this.#bytes = bytes;
    this.#isUtf8 = isUtf8;
  }

  /** Checks the fields from `start` to `end` against `schema`; returns what is wrong,
   * naming the field, or null. */
  message(start: number, end: number, schema: WireSchema, depth: number): string | null {
    if (depth > WIRE_NESTING_DEPTH_MAX) return `messages are nested more than ${WIRE_NESTING_DEPTH_MAX} deep`;
    this.#offset = start;
    // The oneof members and singular messages given so far, made only for a message that
    // gives one (most requests have none).
    let given: Map<string | number, number> | null = null;
    while (this.#offset < end) {
      const tagOffset = this.#offset;
      const tag = this.#tag(end);
      if (typeof tag === "string") return `the field tag at byte ${tagOffset} ${tag}`;
      const number = tag >>> 3;
      const wireType = tag & 7;
      const field = schema.fields.get(number);
      const label = field === undefined ? `field ${number}` : `field ${number} "${field.name}"`;
      if (field !== undefined && !field.wireTypes.includes(wireType)) {
        return `${label} has wire type ${wireType}, but its type is encoded with wire type ${field.wireTypes[0]}`;
      }
      if (field?.oneof !== undefined || field?.singular === true) {
        given ??= new Map();
        const problem = givenTwice(given, number, field);
        if (problem !== null) return `${label} ${problem}`;
      }
      const problem = wireType === LENGTH_DELIMITED
        ? this.#lengthDelimited(end, field, depth)
        : wireType === VARINT && field?.varint32 !== undefined
        ? this.#varint32(end, field.varint32)
        : this.#skip(wireType, number, end, depth);
      if (problem !== null) return `${label} ${problem}`;
    }
    return null;
  }

  /** Checks a length-delimited payload: within the message, UTF-8 for a string, a valid
   * message for a message field. Returns what is wrong with the field, or null. */
  #lengthDelimited(end: number, field: WireField | undefined, depth: number): string | null {
    const length = this.#varint(end);
    if (length === null || length > end - this.#offset) {
      return "runs past the end of the message (it is truncated, or not of the type the rpc takes)";
    }
    if (this.#width > VARINT32_BYTES_MAX) return `has its length written in ${this.#width} bytes (at most 5)`;
    const start = this.#offset;
    const stop = start + length;
    if (field !== undefined && field.wireTypes[0] !== LENGTH_DELIMITED) return this.#packed(stop, field);
    if (field?.kind === "string" && !this.#isUtf8(this.#bytes.subarray(start, stop))) {
      return "is not valid UTF-8 (proto3 string fields carry UTF-8 text; encode binary data, for example as base64)";
    }
    if (field?.kind === "message" && field.message !== undefined) {
      const problem = this.message(start, stop, field.message(), depth + 1);
      if (problem !== null) return `holds a message whose ${problem}`;
    }
    this.#offset = stop;
    return null;
  }

  /** Checks the numbers of a packed repeated field, up to `stop`: each must end within
   * it, and be what {@linkcode WireField.varint32} allows. */
  #packed(stop: number, field: WireField): string | null {
    const elementBytes = field.wireTypes[0] === FIXED64 ? 8 : field.wireTypes[0] === FIXED32 ? 4 : 0;
    if (elementBytes > 0) {
      if ((stop - this.#offset) % elementBytes !== 0) return `holds packed numbers that do not fill it`;
      this.#offset = stop;
      return null;
    }
    while (this.#offset < stop) {
      const problem = field.varint32 === undefined
        ? (this.#varint(stop) === null ? "runs past the end of the message" : null)
        : this.#varint32(stop, field.varint32);
      if (problem !== null) return `holds a packed number that ${problem.replace("the message", "the field")}`;
    }
    return null;
  }

  /** Reads a varint that protobufjs reads with its 32-bit reader (see the module doc);
   * returns what is wrong with it, or null. */
  #varint32(end: number, kind: "int32" | "bool"): string | null {
    const value = this.#varint(end);
    if (value === null) return "runs past the end of the message";
    if (this.#width > VARINT32_BYTES_MAX && this.#width < VARINT_BYTES_MAX) {
      return `is a 32-bit number written in ${this.#width} bytes (at most 5, or 10 for a negative one)`;
    }
    if (kind === "bool" && value !== 0 && this.#low32 === 0) {
      return `is a bool whose low 32 bits are all 0 but not its value, which readers disagree on (send 0 or 1)`;
    }
    return null;
  }

  /** Skips a payload of wire type 0, 1 or 5, or a whole group. Returns what is wrong
   * with the field, or null. */
  #skip(wireType: number, number: number, end: number, depth: number): string | null {
    switch (wireType) {
      case VARINT:
        return this.#varint(end) === null ? "runs past the end of the message" : null;
      case FIXED64:
        return this.#advance(8, end);
      case FIXED32:
        return this.#advance(4, end);
      case START_GROUP:
        return this.#group(number, end, depth + 1);
      default:
        return `has wire type ${wireType}, which cannot start a field (the message is damaged)`;
    }
  }

  /** Skips a group's fields up to its END_GROUP tag, which must carry the group's number. */
  #group(number: number, end: number, depth: number): string | null {
    if (depth > WIRE_NESTING_DEPTH_MAX) return `nests groups more than ${WIRE_NESTING_DEPTH_MAX} deep`;
    while (this.#offset < end) {
      const tag = this.#tag(end);
      if (typeof tag === "string") return `is a group whose field tag ${tag}`;
      const inner = tag >>> 3;
      const wireType = tag & 7;
      if (wireType === END_GROUP) return inner === number ? null : "is a group that ends with another field's number";
      const problem = wireType === LENGTH_DELIMITED
        ? this.#lengthDelimited(end, undefined, depth)
        : this.#skip(wireType, inner, end, depth);
      // Only the innermost group is named: a message says what is wrong in a line, not a
      // hundred nested groups' worth of "is a group whose field 99 is a group whose ...".
      if (problem !== null) {
        return problem.startsWith("is a group whose") ? problem : `is a group whose field ${inner} ${problem}`;
      }
    }
    return "is a group with no end";
  }

  #advance(count: number, end: number): string | null {
    if (count > end - this.#offset) return "runs past the end of the message";
    this.#offset += count;
    return null;
  }

  /** Reads a field's tag: a varint of at most 5 bytes, within 32 bits, whose field
   * number is not 0. Returns it, or what is wrong with it. */
  #tag(end: number): number | string {
    const tag = this.#varint(end);
    if (tag === null) return "runs past the end of the message";
    if (this.#width > VARINT32_BYTES_MAX || tag > 0xffffffff) {
      return `is over 5 bytes or 32 bits (field numbers go up to ${2 ** 29 - 1}; the message is damaged)`;
    }
    if (tag < 8) return "is of field number 0, which protobuf does not allow";
    return tag;
  }

  /** Reads a varint of at most 10 bytes that ends before `end`, as a number (exact up to
   * 2^53, enough for any tag or length), noting its width in bytes and its low 32 bits
   * (exact); null if it does not end in time. */
  #varint(end: number): number | null {
    let value = 0;
    let scale = 1;
    let low32 = 0;
    for (let i = 0; i < VARINT_BYTES_MAX && this.#offset < end; i++) {
      const byte = this.#bytes[this.#offset++];
      value += (byte & 0x7f) * scale;
      // Past the 5th byte, a shift by 35 or more would wrap around: those bits are above 32.
      if (i < VARINT32_BYTES_MAX) low32 = (low32 | ((byte & 0x7f) << (7 * i))) >>> 0;
      if ((byte & 0x80) === 0) {
        this.#width = i + 1;
        this.#low32 = low32;
        return value;
      }
      scale *= 128;
    }
    return null;
  }
}
