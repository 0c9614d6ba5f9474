/**
 * CRC-32C (Castagnoli), the checksum of every frame kvstore writes to disk.
 *
 * CRC-32C is the checksum of iSCSI, ext4 metadata, LevelDB/RocksDB logs and etcd's WAL:
 * it detects every burst error up to 32 bits and all odd numbers of flipped bits, which
 * covers the failures a log sees (a torn write, a zeroed block, a flipped bit).
 *
 * Parameters (the "CRC-32/ISCSI" entry of the catalogue of parametrised CRCs): reflected
 * polynomial 0x82F63B78, initial value 0xFFFFFFFF, input and output reflected, final
 * XOR 0xFFFFFFFF. The check value, crc32c("123456789"), is 0xE3069283.
 *
 * The implementation is "slicing by 8": eight 256-entry tables let the loop consume
 * eight bytes per step with eight table lookups, about four times the speed of the
 * byte-at-a-time loop in JavaScript (a few hundred MB/s), which matters when a
 * snapshot of a million keys is checksummed on load.
 *
 * @module
 */

/** The reflected Castagnoli polynomial. */
const POLYNOMIAL = 0x82f63b78;

/** Eight tables of 256 entries, one after another: table k maps a byte to the CRC of
 * that byte followed by k zero bytes. */
const TABLES: Uint32Array = buildTables();

function buildTables(): Uint32Array {
  const tables = new Uint32Array(8 * 256);
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ POLYNOMIAL : crc >>> 1;
    tables[byte] = crc >>> 0;
  }
  for (let table = 1; table < 8; table++) {
    for (let byte = 0; byte < 256; byte++) {
      const previous = tables[(table - 1) * 256 + byte];
      tables[table * 256 + byte] = ((previous >>> 8) ^ tables[previous & 0xff]) >>> 0;
    }
  }
  return tables;
}

/**
 * The CRC-32C of `bytes`, as an unsigned 32-bit number.
 *
 * Pass the CRC of earlier bytes as `previous` to continue it over more bytes:
 * `crc32c(b, crc32c(a))` equals the CRC of `a` followed by `b`.
 *
 * ```ts
 * crc32c(new TextEncoder().encode("123456789")); // 0xe3069283
 * ```
 */
export function crc32c(bytes: Uint8Array, previous = 0): number {
  const t = TABLES;
  let crc = ~previous >>> 0;
  let i = 0;
  const length = bytes.length;
  const whole = length - (length % 8);
  while (i < whole) {
    const low = (crc ^ (bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24))) >>> 0;
    crc = t[1792 + (low & 0xff)] ^
      t[1536 + ((low >>> 8) & 0xff)] ^
      t[1280 + ((low >>> 16) & 0xff)] ^
      t[1024 + (low >>> 24)] ^
      t[768 + bytes[i + 4]] ^
      t[512 + bytes[i + 5]] ^
      t[256 + bytes[i + 6]] ^
      t[bytes[i + 7]];
    i += 8;
  }
  while (i < length) crc = t[(crc ^ bytes[i++]) & 0xff] ^ (crc >>> 8);
  return ~crc >>> 0;
}
