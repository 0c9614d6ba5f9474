/**
 * Errors a client or an operator can cause, as typed values.
 *
 * Each error knows its wire form: a status code named like gRPC's, so the core stays free
 * of the transport and src/server/status.ts maps it to a gRPC status in one table.
 * Messages follow one shape: subsystem prefix, the failed action, the quoted value, a
 * colon, then what to do: `store: Cannot set key "k": value is 20971520 bytes, over the
 * limit of 16777216 (raise it with --max-value-bytes)`.
 *
 * @module
 */

/** The status a {@linkcode KvError} carries; the names are gRPC's. */
export type ErrorCode =
  | "INVALID_ARGUMENT"
  | "RESOURCE_EXHAUSTED"
  | "FAILED_PRECONDITION"
  | "NOT_FOUND"
  | "UNAVAILABLE"
  | "DEADLINE_EXCEEDED"
  | "INTERNAL"
  | "UNIMPLEMENTED";

/** An error with a status code and a message a person can act on. */
export class KvError extends Error {
  readonly code: ErrorCode;
  /** The call was a write that may or may not have been applied (a router whose call to
   * the shard was cut off mid-call); clients hear it as KvClientError.outcomeUnknown. */
  readonly outcomeUnknown: boolean;

  constructor(code: ErrorCode, message: string, options?: ErrorOptions & { outcomeUnknown?: boolean }) {
    super(message, options);
    this.name = "KvError";
    this.code = code;
    this.outcomeUnknown = options?.outcomeUnknown ?? false;
  }
}

/** The message of a node's refusal while it loads its dataset: `what` is being loaded,
 * "loading its dataset from /data (12 s so far)". */
export function loadingRefusalMessage(rpc: string, what: string): string {
  return `server: Cannot serve ${rpc} yet: the node is ${what}; retry in a moment`;
}

/** Whether an error message holds a node's refusal while it loads its dataset (see
 * loadingRefusalMessage), perhaps inside a router's message: the node was reached, and
 * serves once loaded. A router tells such a shard apart from one it cannot reach. */
export function isLoadingRefusal(message: string): boolean {
  return /server: Cannot serve \w+ yet: the node is loading its dataset/.test(message);
}

/** Shorthand for the most common client error. */
export function invalidArgument(message: string): KvError {
  return new KvError("INVALID_ARGUMENT", message);
}

/** `count` with its noun, singular or plural: "1 key", "3 keys"; `many` for a plural
 * that is not the noun plus "s" ("1 entry", "2 entries"). */
export function plural(count: number | string, one: string, many = `${one}s`): string {
  return `${count} ${Number(count) === 1 ? one : many}`;
}

/** Quotes a user-supplied string for an error message, shortened so that a 64 KiB key
 * does not become a 64 KiB log line. */
export function quote(value: string, charsMax = 64): string {
  const shown = value.length > charsMax ? `${value.slice(0, charsMax)}...` : value;
  return JSON.stringify(shown);
}
