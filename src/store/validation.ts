/**
 * Checks on keys, values and TTLs that arrive from outside, against the configured
 * limits. Every edge that accepts data (the gRPC service, replication, import) runs
 * these before anything is staged, so a bad input is refused whole with a message
 * that says which limit it broke and which flag moves it.
 *
 * @module
 */

import { BATCH_KEYS_MAX, messageBytesMaxFor, SCAN_PAGE_KEYS_DEFAULT, SCAN_PAGE_KEYS_MAX } from "../config/limits.ts";
import { invalidArgument, KvError, plural, quote } from "../errors.ts";
import { utf8ByteLength, utf8LongerThan } from "./utf8.ts";

/** The limits a node enforces on data; flags set them (see src/config/limits.ts). */
export interface DataLimits {
  readonly keyBytesMax: number;
  readonly valueBytesMax: number;
  readonly ttlSecondsMax: number;
}

/** Refuses an empty key or one longer than the limit. `action` names the request, as in
 * "set" or "expire", for the message. */
export function validateKey(key: string, action: string, limits: DataLimits): void {
  if (key.length === 0) {
    throw invalidArgument(`store: Cannot ${action}: the key is empty; keys must be 1 or more bytes`);
  }
  if (utf8LongerThan(key, limits.keyBytesMax)) {
    throw invalidArgument(
      `store: Cannot ${action} key ${quote(key)}: the key is ${utf8ByteLength(key)} bytes, ` +
        `over the limit of ${limits.keyBytesMax} (raise it with --max-key-bytes)`,
    );
  }
}

/** Refuses a value longer than the limit. */
export function validateValue(key: string, value: string, limits: DataLimits): void {
  if (utf8LongerThan(value, limits.valueBytesMax)) {
    throw new KvError(
      "RESOURCE_EXHAUSTED",
      `store: Cannot set key ${quote(key)}: the value is ${utf8ByteLength(value)} bytes, ` +
        `over the limit of ${limits.valueBytesMax} (raise it with --max-value-bytes)`,
    );
  }
}

/** Refuses a TTL that is not a whole number of seconds or is longer than the limit.
 * Zero and negative TTLs are valid: they delete the key, as in Redis. */
export function validateTtlSeconds(key: string, seconds: number, limits: DataLimits): void {
  if (!Number.isSafeInteger(seconds)) {
    throw invalidArgument(
      `store: Cannot expire key ${quote(key)}: seconds must be a whole number, got ${seconds}`,
    );
  }
  if (seconds > limits.ttlSecondsMax) {
    throw invalidArgument(
      `store: Cannot expire key ${quote(key)}: ${seconds} seconds is over the limit of ` +
        `${limits.ttlSecondsMax} (${Math.floor(limits.ttlSecondsMax / 86400)} days; ` +
        `raise it with --max-ttl-seconds)`,
    );
  }
}

/** Refuses a batch (MGet, MSet) of more than BATCH_KEYS_MAX keys. `action` is "read" or
 * "write", for the message. */
export function validateBatchSize(count: number, action: string): void {
  if (count > BATCH_KEYS_MAX) {
    throw invalidArgument(
      `store: Cannot ${action} ${count} keys in one call: the limit is ${BATCH_KEYS_MAX}; split the batch`,
    );
  }
}

/** Protobuf bytes an MGet answer spends on a key found, beyond its value, at most: the
 * GetResponse's tag and length (6), its `found` (2), the value's tag and length (6). */
const MGET_FOUND_BYTES_MAX = 14;
/** An MGet answer's bytes for a key not found: an empty GetResponse, tag and length. */
const MGET_MISSING_BYTES = 2;
/** An MGet answer's bytes for one deadline (include_deadlines): a varint of up to 10
 * bytes, and its tag should it not be packed. */
const MGET_DEADLINE_BYTES_MAX = 11;

/**
 * Refuses an MGet whose answer, `values` in request order (undefined where a key was not
 * found), would not fit in one message under `limits`, with RESOURCE_EXHAUSTED saying to
 * ask for fewer keys; grpc-js would otherwise fail the call as it sends it, with words
 * that name neither the cause nor the way out. The count is an upper bound, so a call
 * that passes always fits. Costs a pass over the values' lengths, and a UTF-8 count only
 * when their lengths alone do not settle it.
 */
export function validateMGetAnswer(
  values: readonly (string | undefined)[],
  withDeadlines: boolean,
  limits: Pick<DataLimits, "keyBytesMax" | "valueBytesMax">,
): void {
  const bytesMax = messageBytesMaxFor(limits.keyBytesMax, limits.valueBytesMax);
  const fixedBytes = withDeadlines ? values.length * MGET_DEADLINE_BYTES_MAX : 0;
  // A UTF-16 code unit is at most 3 bytes of UTF-8: usually that settles it at once.
  let boundBytes = fixedBytes;
  for (const value of values) {
    boundBytes += value === undefined ? MGET_MISSING_BYTES : 3 * value.length + MGET_FOUND_BYTES_MAX;
  }
  if (boundBytes <= bytesMax) return;
  let bytes = fixedBytes;
  let found = 0;
  for (const value of values) {
    if (value === undefined) {
      bytes += MGET_MISSING_BYTES;
      continue;
    }
    found++;
    bytes += utf8ByteLength(value) + MGET_FOUND_BYTES_MAX;
  }
  if (bytes <= bytesMax) return;
  throw new KvError(
    "RESOURCE_EXHAUSTED",
    `store: Cannot answer an MGet of ${plural(values.length, "key")}: the ${plural(found, "value")} found come ` +
      `to about ${bytes} ` +
      `bytes, over the ${bytesMax} one answer may carry (--max-key-bytes plus --max-value-bytes plus ` +
      `64 KiB); ask for fewer keys per call`,
  );
}

/** The number of keys a Scan page asks for, checked: `limit` 0 means the default. */
export function validateScanLimit(limit: number): number {
  if (!Number.isSafeInteger(limit) || limit < 0 || limit > SCAN_PAGE_KEYS_MAX) {
    throw invalidArgument(
      `scan: Cannot scan: limit ${limit} is not from 1 to ${SCAN_PAGE_KEYS_MAX} (0 for ${SCAN_PAGE_KEYS_DEFAULT})`,
    );
  }
  return limit === 0 ? SCAN_PAGE_KEYS_DEFAULT : limit;
}

/** The deadline one MSet entry asks for: absolute unix ms, or a TTL in ms from `nowMs`,
 * or neither (undefined for a field not given). */
export interface EntryDeadline {
  readonly key: string;
  readonly expiresAtMs?: number;
  readonly ttlMs?: number;
}

/** The absolute deadline (unix ms) an MSet entry asks for, or null for none. Refuses an
 * entry that gives both fields, and a deadline further from `nowMs` than the TTL limit.
 * A deadline already past is valid: it deletes the key. */
export function validateEntryDeadline(entry: EntryDeadline, nowMs: number, limits: DataLimits): number | null {
  const { expiresAtMs, ttlMs } = entry;
  const maxMs = limits.ttlSecondsMax * 1000;
  if (expiresAtMs !== undefined && ttlMs !== undefined) {
    throw invalidArgument(`store: Cannot set key ${quote(entry.key)}: give expires_at_ms or ttl_ms, not both`);
  }
  if (ttlMs !== undefined) {
    if (!Number.isSafeInteger(ttlMs)) {
      throw invalidArgument(
        `store: Cannot set key ${quote(entry.key)}: ttl_ms must be a whole number of milliseconds, got ${ttlMs}`,
      );
    }
    if (ttlMs > maxMs) {
      // Said in seconds, as Expire says it: people give TTLs in seconds (`set --ttl`).
      throw invalidArgument(
        `store: Cannot set key ${quote(entry.key)}: a TTL of ${ttlMs / 1000} seconds (ttl_ms ${ttlMs}) is over ` +
          `the limit of ${limits.ttlSecondsMax} (${Math.floor(limits.ttlSecondsMax / 86400)} days; ` +
          `raise it with --max-ttl-seconds)`,
      );
    }
    return nowMs + ttlMs;
  }
  if (expiresAtMs !== undefined) {
    if (!Number.isSafeInteger(expiresAtMs) || expiresAtMs > nowMs + maxMs) {
      throw invalidArgument(
        `store: Cannot set key ${quote(entry.key)}: expires_at_ms ${expiresAtMs} is not a unix time in ms ` +
          `within ${limits.ttlSecondsMax} s from now (raise the limit with --max-ttl-seconds)`,
      );
    }
    return expiresAtMs;
  }
  return null;
}
