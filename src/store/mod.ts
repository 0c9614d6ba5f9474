/**
 * The in-memory engine: entries with absolute deadlines, write commands, staging of
 * writes until they are durable, the expiry sweep's search and input validation.
 * Pure code: time comes in as `nowMs`, randomness as a function; nothing here does I/O.
 *
 * @module
 */

export type { DeleteCommand, ExpireAtCommand, SequencedCommand, SetCommand, WriteCommand } from "./command.ts";
export { type Entry, isExpired, Store } from "./store.ts";
export { type WriteDecision, WriteStaging } from "./staging.ts";
export { findExpiredKeys, type SweepLimits } from "./expiry.ts";
export { type DataLimits, validateKey, validateTtlSeconds, validateValue } from "./validation.ts";
export { utf8ByteLength, utf8LongerThan } from "./utf8.ts";
