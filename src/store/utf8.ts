/**
 * UTF-8 sizes of JavaScript strings, computed without encoding them.
 *
 * Limits are stated in UTF-8 bytes because that is what travels on the wire and what
 * the C++ store counted; a JavaScript string's length counts UTF-16 units instead.
 *
 * @module
 */

/** The number of bytes `value` takes in UTF-8. A lone surrogate counts 3 bytes, as the
 * replacement character it is encoded as. */
export function utf8ByteLength(value: string): number {
  let bytes = 0;
  for (let i = 0; i < value.length; i++) {
    const unit = value.charCodeAt(i);
    if (unit < 0x80) bytes += 1;
    else if (unit < 0x800) bytes += 2;
    else if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < value.length) {
      const next = value.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else {
        bytes += 3;
      }
    } else bytes += 3;
  }
  return bytes;
}

/**
 * Whether `value` takes more than `bytesMax` bytes in UTF-8. Answers from the string's
 * length alone when it can (every UTF-16 unit is 1 to 3 bytes), so checking a 16 MiB
 * value against a 16 MiB limit does not walk it twice.
 */
export function utf8LongerThan(value: string, bytesMax: number): boolean {
  if (value.length > bytesMax) return true;
  if (value.length * 3 <= bytesMax) return false;
  return utf8ByteLength(value) > bytesMax;
}
