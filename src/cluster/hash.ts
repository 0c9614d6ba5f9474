/**
 * xxHash32: the hash that places keys and virtual nodes on the ring.
 *
 * Why this hash: it is fast on short inputs (keys are mostly tens of bytes), it passes
 * SMHasher's distribution and avalanche tests, it has a published specification and
 * test vectors (https://github.com/Cyan4973/xxHash/blob/dev/doc/xxhash_spec.md), and it
 * is plain 32-bit integer arithmetic, which JavaScript does exactly with `Math.imul` and
 * `| 0`. A cryptographic hash would be slower for nothing: the ring needs spread, not
 * secrecy. The value is a function of the UTF-8 bytes only, so every process (router,
 * client library, a C++ client that wants to route by itself) computes the same one.
 *
 * The algorithm, for input of `length` bytes and a 32-bit `seed`:
 *
 *   1. With 16 bytes or more, four lanes v1..v4 start at seed+P1+P2, seed+P2, seed,
 *      seed-P1 and each consumes one little-endian 32-bit word per 16-byte stripe:
 *      v = rotl(v + word * P2, 13) * P1. The lanes merge as
 *      rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18).
 *      With fewer than 16 bytes, the accumulator starts at seed + P5.
 *   2. The accumulator adds `length`, then each remaining 4-byte word
 *      (acc = rotl(acc + word * P3, 17) * P4), then each remaining byte
 *      (acc = rotl(acc + byte * P5, 11) * P1).
 *   3. An avalanche mixes every input bit into every output bit:
 *      acc ^= acc >>> 15; acc *= P2; acc ^= acc >>> 13; acc *= P3; acc ^= acc >>> 16.
 *
 * All arithmetic is modulo 2^32; the result is returned as an unsigned number.
 *
 * @module
 */

const PRIME32_1 = 0x9e3779b1;
const PRIME32_2 = 0x85ebca77;
const PRIME32_3 = 0xc2b2ae3d;
const PRIME32_4 = 0x27d4eb2f;
const PRIME32_5 = 0x165667b1;

function rotl(value: number, bits: number): number {
  return (value << bits) | (value >>> (32 - bits));
}

function readWord(bytes: Uint8Array, at: number): number {
  return bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16) | (bytes[at + 3] << 24);
}

function lane(accumulator: number, word: number): number {
  return Math.imul(rotl((accumulator + Math.imul(word, PRIME32_2)) | 0, 13), PRIME32_1);
}

/** xxHash32 of the first `length` bytes of `bytes` (all of them by default), as an
 * unsigned 32-bit number. */
export function xxHash32(bytes: Uint8Array, seed = 0, length = bytes.length): number {
  let at = 0;
  let accumulator: number;
  if (length >= 16) {
    let v1 = (seed + PRIME32_1 + PRIME32_2) | 0;
    let v2 = (seed + PRIME32_2) | 0;
    let v3 = seed | 0;
    let v4 = (seed - PRIME32_1) | 0;
    const lastStripe = length - 16;
    while (at <= lastStripe) {
      v1 = lane(v1, readWord(bytes, at));
      v2 = lane(v2, readWord(bytes, at + 4));
      v3 = lane(v3, readWord(bytes, at + 8));
      v4 = lane(v4, readWord(bytes, at + 12));
      at += 16;
    }
    accumulator = (rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18)) | 0;
  } else {
    accumulator = (seed + PRIME32_5) | 0;
  }
  accumulator = (accumulator + length) | 0;
  while (at + 4 <= length) {
    accumulator = Math.imul(rotl((accumulator + Math.imul(readWord(bytes, at), PRIME32_3)) | 0, 17), PRIME32_4);
    at += 4;
  }
  while (at < length) {
    accumulator = Math.imul(rotl((accumulator + Math.imul(bytes[at], PRIME32_5)) | 0, 11), PRIME32_1);
    at++;
  }
  accumulator ^= accumulator >>> 15;
  accumulator = Math.imul(accumulator, PRIME32_2);
  accumulator ^= accumulator >>> 13;
  accumulator = Math.imul(accumulator, PRIME32_3);
  accumulator ^= accumulator >>> 16;
  return accumulator >>> 0;
}

const encoder = new TextEncoder();
/** Scratch space for encoding keys, grown on demand; reused so hashing a key allocates
 * nothing. A UTF-8 encoding takes at most 3 bytes per UTF-16 code unit. */
let scratch = new Uint8Array(1024);

/** xxHash32 (seed 0) of the UTF-8 bytes of `text`. */
export function hashString(text: string): number {
  if (text.length * 3 > scratch.length) scratch = new Uint8Array(text.length * 3);
  const { written } = encoder.encodeInto(text, scratch);
  return xxHash32(scratch, 0, written);
}
