/**
 * Little-endian byte writing and reading for the on-disk formats: fixed-width integers,
 * 53-bit integers in 8 bytes, and length-prefixed UTF-8 strings.
 *
 * Layout of each field (all little-endian):
 *
 *   u8        1 byte
 *   u32       4 bytes
 *   u53       8 bytes: the low 32 bits, then the high 32 bits; the high word must be
 *             below 2^21, so every value is a safe JavaScript integer (seqs, unix ms)
 *   string8   u8 byte length, then that many UTF-8 bytes (ids: replid, log id)
 *   string32  u32 byte length, then that many UTF-8 bytes (keys and values)
 *
 * Strings are encoded with TextEncoder. The server's strings are always well-formed
 * UTF-16 (the transport decodes them from UTF-8), so a string read back equals the
 * string written; decoding is strict and refuses malformed UTF-8 as corruption.
 *
 * @module
 */

import { utf8ByteLength } from "../store/utf8.ts";

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** 2^32, to split 53-bit integers into two 32-bit words. */
const WORD = 0x1_0000_0000;

/** Strings longer than this many UTF-16 units are measured before encoding, so the
 * buffer grows by their exact size rather than by the 3-bytes-per-unit worst case. */
const MEASURE_STRING_UNITS_MIN = 64 * 1024;

/** Strings up to this many units are encoded by a plain loop, and decoded by
 * String.fromCharCode, when they are ASCII: TextEncoder and TextDecoder cost a fixed
 * ~0.5 us per call, several times the work for a typical key, and a snapshot holds two
 * strings per key. (Past ~100 units, encodeInto is the faster encoder.) */
const SHORT_STRING_UNITS_MAX = 32;

/** An error in bytes read back from disk: a field that cannot be what the writer wrote. */
export class FormatError extends Error {
  /** The byte position of the bad field within what was being decoded. */
  readonly position: number;

  constructor(message: string, position: number) {
    super(message);
    this.name = "FormatError";
    this.position = position;
  }
}

/** A growable buffer that fields are appended to. */
export class ByteWriter {
  #buffer: Uint8Array;
  #view: DataView;
  #length = 0;

  constructor(initialBytes = 64 * 1024) {
    this.#buffer = new Uint8Array(initialBytes);
    this.#view = new DataView(this.#buffer.buffer);
  }

  /** Bytes written so far. */
  get length(): number {
    return this.#length;
  }

  /** Forgets what was written, keeping the memory. */
  reset(): void {
    this.#length = 0;
  }

  /** Forgets what was written and, if the buffer grew past `bytesMax` (a batch of large
   * values), gives the memory back and starts again at `initialBytes`. */
  release(bytesMax: number, initialBytes: number): void {
    this.#length = 0;
    if (this.#buffer.length <= bytesMax) return;
    this.#buffer = new Uint8Array(initialBytes);
    this.#view = new DataView(this.#buffer.buffer);
  }

  /** The bytes from `start` to `end` (default: all written). A view, valid until the
   * next write or reset. */
  view(start = 0, end = this.#length): Uint8Array {
    return this.#buffer.subarray(start, end);
  }

  u8(value: number): void {
    this.#ensure(1);
    this.#buffer[this.#length++] = value;
  }

  u32(value: number): void {
    this.#ensure(4);
    this.#view.setUint32(this.#length, value, true);
    this.#length += 4;
  }

  u53(value: number): void {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`bytes: Cannot write ${value} as u53`);
    this.#ensure(8);
    this.#view.setUint32(this.#length, value % WORD, true);
    this.#view.setUint32(this.#length + 4, Math.floor(value / WORD), true);
    this.#length += 8;
  }

  /** Writes `value` at an earlier position without moving the end (a frame header). */
  patchU32(position: number, value: number): void {
    this.#view.setUint32(position, value, true);
  }

  /** Reserves `count` zero bytes to be patched later; returns their position. */
  reserve(count: number): number {
    this.#ensure(count);
    const position = this.#length;
    this.#buffer.fill(0, position, position + count);
    this.#length += count;
    return position;
  }

  bytes(bytes: Uint8Array): void {
    this.#ensure(bytes.length);
    this.#buffer.set(bytes, this.#length);
    this.#length += bytes.length;
  }

  string8(value: string): void {
    const start = this.#length;
    this.#ensure(1 + value.length * 3);
    const { written } = encoder.encodeInto(value, this.#buffer.subarray(start + 1));
    if (written > 255) throw new RangeError(`bytes: Cannot write a ${written}-byte string8`);
    this.#buffer[start] = written;
    this.#length += 1 + written;
  }

  string32(value: string): void {
    if (value.length <= SHORT_STRING_UNITS_MAX && this.#shortAscii32(value)) return;
    const start = this.#length;
    const bytesMax = value.length < MEASURE_STRING_UNITS_MIN ? value.length * 3 : utf8ByteLength(value);
    this.#ensure(4 + bytesMax);
    const { written } = encoder.encodeInto(value, this.#buffer.subarray(start + 4, start + 4 + bytesMax));
    this.#view.setUint32(start, written, true);
    this.#length += 4 + written;
  }

  /** Writes `value` as string32 if it is ASCII and returns true; else writes nothing. */
  #shortAscii32(value: string): boolean {
    this.#ensure(4 + value.length);
    const buffer = this.#buffer;
    const start = this.#length + 4;
    for (let i = 0; i < value.length; i++) {
      const unit = value.charCodeAt(i);
      if (unit >= 0x80) return false;
      buffer[start + i] = unit;
    }
    this.#view.setUint32(this.#length, value.length, true);
    this.#length = start + value.length;
    return true;
  }

  #ensure(extra: number): void {
    const needed = this.#length + extra;
    if (needed <= this.#buffer.length) return;
    let capacity = this.#buffer.length * 2;
    while (capacity < needed) capacity *= 2;
    const grown = new Uint8Array(capacity);
    grown.set(this.#buffer.subarray(0, this.#length));
    this.#buffer = grown;
    this.#view = new DataView(grown.buffer);
  }
}

/** Reads fields in order from bytes; any field that runs past the end, or a string that
 * is not UTF-8, throws a {@linkcode FormatError}. */
export class ByteReader {
  readonly bytes: Uint8Array;
  #view: DataView;
  #position = 0;

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get position(): number {
    return this.#position;
  }

  get remaining(): number {
    return this.bytes.length - this.#position;
  }

  u8(): number {
    this.#need(1, "u8");
    return this.bytes[this.#position++];
  }

  u32(): number {
    this.#need(4, "u32");
    const value = this.#view.getUint32(this.#position, true);
    this.#position += 4;
    return value;
  }

  u53(): number {
    this.#need(8, "u53");
    const low = this.#view.getUint32(this.#position, true);
    const high = this.#view.getUint32(this.#position + 4, true);
    if (high >= 0x20_0000) throw new FormatError(`a 64-bit integer is beyond 2^53`, this.#position);
    this.#position += 8;
    return high * WORD + low;
  }

  string8(): string {
    const length = this.u8();
    return this.#string(length);
  }

  string32(): string {
    const length = this.u32();
    return this.#string(length);
  }

  #string(length: number): string {
    this.#need(length, "string");
    const start = this.#position;
    this.#position += length;
    if (length <= SHORT_STRING_UNITS_MAX) {
      // One call over the bytes builds a flat string. Appending a character at a time
      // built a rope of up to 32 pieces (~680 heap bytes for a 32-byte key instead of
      // ~56) for every key loaded, kept until something flattened it.
      const bytes = this.bytes;
      let ascii = true;
      for (let i = start; i < start + length; i++) ascii &&= bytes[i] < 0x80;
      if (ascii) return String.fromCharCode.apply(null, bytes.subarray(start, start + length) as unknown as number[]);
    }
    try {
      return strictDecoder.decode(this.bytes.subarray(start, start + length));
    } catch {
      throw new FormatError("a string is not valid UTF-8", start);
    }
  }

  #need(count: number, what: string): void {
    if (this.#position + count > this.bytes.length) {
      throw new FormatError(
        `a ${what} of ${count} bytes runs past the end (${this.bytes.length - this.#position} left)`,
        this.#position,
      );
    }
  }
}
