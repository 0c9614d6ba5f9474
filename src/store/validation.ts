/**
 * Checks on keys, values and TTLs that arrive from outside, against the configured
 * limits. Every edge that accepts data (the gRPC service, replication, import) runs
 * these before anything is staged, so a bad input is refused whole with a message
 * that says which limit it broke and which flag moves it.
 *
 * @module
 */

import { invalidArgument, KvError, quote } from "../errors.ts";
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
