import assert from "node:assert/strict";
import { crc32c } from "./crc32c.ts";

const ascii = (text: string) => new TextEncoder().encode(text);

Deno.test("crc32c gives the catalogue's check value for 123456789", () => {
  assert.equal(crc32c(ascii("123456789")), 0xe3069283);
});

// The test vectors of RFC 3720 (iSCSI), appendix B.4.
Deno.test("crc32c matches the RFC 3720 test vectors", () => {
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa, "32 bytes of zeros");
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43, "32 bytes of ones");
  assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e, "incrementing");
  assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i)), 0x113fdb5c, "decrementing");
  const scsiRead = Uint8Array.from([
    0x01,
    0xc0,
    0x00,
    0x00,
    0x00,
    0x00,
    0x00,
    0x00,
    0x00,
    0x00,
    0x00,
    0x00,
    0x00,
    0x00,
    0x00,
    0x00,
    0x14,
    0x00,
    0x00,
    0x00,
    0x00,
    0x00,
    0x04,
    0x00,
    0x00,
    0x00,
    0x00,
    0x14,
    0x00,
    0x00,
    0x00,
    0x18,
    0x28,
    0x00,
    0x00,
    0x00,
    0x00,
    0x00,
    0x00,
    0x00,
    0x02,
    0x00,
    0x00,
    0x00,
    0x00,
    0x00,
    0x00,
    0x00,
  ]);
  assert.equal(crc32c(scsiRead), 0xd9963a56, "an iSCSI read command PDU");
});

Deno.test("crc32c of nothing is zero, and of one byte matches the bitwise definition", () => {
  assert.equal(crc32c(new Uint8Array(0)), 0);
  assert.equal(crc32c(ascii("a")), 0xc1d04330);
});

Deno.test("crc32c continued over pieces equals crc32c of the whole, at every split", () => {
  const data = Uint8Array.from({ length: 100 }, (_, i) => (i * 37 + 11) & 0xff);
  const whole = crc32c(data);
  for (let split = 0; split <= data.length; split++) {
    assert.equal(crc32c(data.subarray(split), crc32c(data.subarray(0, split))), whole, `split at ${split}`);
  }
});

Deno.test("crc32c sees a single flipped bit anywhere", () => {
  const data = ascii("the quick brown fox jumps over the lazy dog");
  const original = crc32c(data);
  for (let bit = 0; bit < data.length * 8; bit++) {
    const copy = data.slice();
    copy[bit >> 3] ^= 1 << (bit & 7);
    assert.notEqual(crc32c(copy), original, `bit ${bit}`);
  }
});
