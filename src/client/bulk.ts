/**
 * The bulk format of `kvstore export` and `kvstore import`: JSON lines, one entry per
 * line, and the batching of entries into MSet calls. Pure.
 *
 * ## Format
 *
 * UTF-8 text; each line is one JSON object:
 *
 * ```
 * {"key":"user:1","value":"Ada","ttl":null}
 * {"key":"session:9","value":"{\"id\":9}","ttl":3599.25}
 * ```
 *
 * - `key`: a non-empty string.
 * - `value`: a string (any JSON string: escapes are decoded).
 * - `ttl`: seconds left to live, as a number (fractions are milliseconds), or `null` or
 *   absent for a key that never expires. Export writes the time left when it read the
 *   key, by its own clock; import gives each key that much time from when it writes it,
 *   so a key exported with `"ttl":60` and imported an hour later still lives 60 s. An
 *   entry with `ttl` 0 or less has expired: import skips it.
 *
 * Blank lines are skipped; fields other than these three are ignored, so a file from a
 * newer version with more fields still imports. Anything else (a line that is not a
 * JSON object, a key that is not a non-empty string, a `ttl` that is not a number) is
 * refused with its line number.
 *
 * @module
 */

import type { EntryInput, ScannedEntry } from "./client.ts";

/** One entry as read from a line. */
export interface BulkEntry {
  readonly key: string;
  readonly value: string;
  /** Milliseconds left; undefined for no expiry. */
  readonly ttlMs?: number;
}

/** A line that is not a valid entry. */
export class BulkLineError extends Error {
  readonly lineNumber: number;

  constructor(lineNumber: number, detail: string) {
    super(`line ${lineNumber}: ${detail}`);
    this.name = "BulkLineError";
    this.lineNumber = lineNumber;
  }
}

/** What a line holds: an entry, an entry that already expired, or nothing (blank). */
export type ParsedLine = { kind: "entry"; entry: BulkEntry } | { kind: "expired" } | { kind: "blank" };

/** Parses one line of the format; throws {@linkcode BulkLineError}. */
export function parseBulkLine(line: string, lineNumber: number): ParsedLine {
  if (line.trim() === "") return { kind: "blank" };
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw new BulkLineError(lineNumber, `not JSON (${detail})`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new BulkLineError(lineNumber, 'expected an object like {"key":"k","value":"v","ttl":null}');
  }
  const { key, value, ttl } = parsed as Record<string, unknown>;
  if (typeof key !== "string" || key === "") {
    throw new BulkLineError(lineNumber, `"key" must be a non-empty string, got ${describe(key)}`);
  }
  if (typeof value !== "string") {
    throw new BulkLineError(
      lineNumber,
      `"value" of key ${JSON.stringify(key)} must be a string, got ${describe(value)}`,
    );
  }
  if (ttl === undefined || ttl === null) return { kind: "entry", entry: { key, value } };
  if (typeof ttl !== "number" || !Number.isFinite(ttl)) {
    throw new BulkLineError(
      lineNumber,
      `"ttl" of key ${JSON.stringify(key)} must be seconds or null, got ${describe(ttl)}`,
    );
  }
  const ttlMs = Math.round(ttl * 1000);
  if (ttlMs <= 0) return { kind: "expired" };
  return { kind: "entry", entry: { key, value, ttlMs } };
}

function describe(value: unknown): string {
  if (value === undefined) return "nothing";
  const text = JSON.stringify(value);
  return text.length > 40 ? `${text.slice(0, 40)}...` : text;
}

/** The line for a scanned entry (with its newline), or undefined when its deadline has
 * passed by `nowMs`. */
export function formatBulkLine(entry: ScannedEntry, nowMs: number): string | undefined {
  let ttl: number | null = null;
  if (entry.expiresAtMs !== null) {
    const leftMs = entry.expiresAtMs - nowMs;
    if (leftMs <= 0) return undefined;
    ttl = leftMs / 1000;
  }
  return JSON.stringify({ key: entry.key, value: entry.value, ttl }) + "\n";
}

/** A batch ready for one MSet, with the lines it came from for error messages. */
export interface Batch {
  readonly entries: EntryInput[];
  readonly firstLine: number;
  readonly lastLine: number;
}

/**
 * Groups entries into MSet batches bounded by count and by size, so one call stays far
 * below the transport's message limit and one failure names a short range of lines.
 */
export class Batcher {
  readonly entriesMax: number;
  readonly bytesMax: number;
  #entries: EntryInput[] = [];
  #bytes = 0;
  #firstLine = 0;
  #lastLine = 0;

  constructor(entriesMax: number, bytesMax: number) {
    this.entriesMax = entriesMax;
    this.bytesMax = bytesMax;
  }

  /** Adds an entry; returns the batch that was full before it, if one was. */
  add(entry: BulkEntry, lineNumber: number): Batch | undefined {
    // UTF-16 length is a cheap bound: a character is at most 3 UTF-8 bytes per unit.
    const bytes = 3 * (entry.key.length + entry.value.length) + 16;
    let full: Batch | undefined;
    if (this.#entries.length > 0 && (this.#entries.length >= this.entriesMax || this.#bytes + bytes > this.bytesMax)) {
      full = this.take();
    }
    if (this.#entries.length === 0) this.#firstLine = lineNumber;
    this.#entries.push({ key: entry.key, value: entry.value, ttlMs: entry.ttlMs });
    this.#bytes += bytes;
    this.#lastLine = lineNumber;
    return full;
  }

  /** The entries gathered so far (possibly none), emptying the batcher. */
  take(): Batch | undefined {
    if (this.#entries.length === 0) return undefined;
    const batch = { entries: this.#entries, firstLine: this.#firstLine, lastLine: this.#lastLine };
    this.#entries = [];
    this.#bytes = 0;
    return batch;
  }
}

/**
 * The keys of the MSet batches in flight, so that a batch holding a key an earlier batch
 * is still writing can wait for that batch: calls in flight on one connection may be
 * applied in any order (a small call overtakes a large one), and the file's later line
 * must win, as if it were applied line by line. Batches without such a key are not held
 * back, so pipelining still pays for the common file with each key once.
 *
 * It holds the keys of the batches in flight only: at most the pipeline's depth times
 * a batch's entries. `Call` is whatever stands for a call in flight (a promise).
 */
export class KeysInFlight<Call> {
  /** Each key in flight, with the latest call that writes it (a later batch with the
   * key waited for the earlier call, so the latest is the only one that can be in
   * flight with it). */
  #callByKey = new Map<string, Call>();

  /** The number of keys in flight. */
  get size(): number {
    return this.#callByKey.size;
  }

  /** The calls in flight that write one of `entries`' keys: the batch must wait for
   * them before it is sent. */
  blockers(entries: readonly { key: string }[]): Set<Call> {
    const calls = new Set<Call>();
    for (const { key } of entries) {
      const call = this.#callByKey.get(key);
      if (call !== undefined) calls.add(call);
    }
    return calls;
  }

  /** Records that `call` writes `entries`' keys (once its blockers are done). */
  add(entries: readonly { key: string }[], call: Call): void {
    for (const { key } of entries) this.#callByKey.set(key, call);
  }

  /** Forgets the keys `call` wrote, now that it is done. */
  remove(entries: readonly { key: string }[], call: Call): void {
    for (const { key } of entries) {
      if (this.#callByKey.get(key) === call) this.#callByKey.delete(key);
    }
  }
}
