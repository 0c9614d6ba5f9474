/**
 * Scan cursors: paging through a live dataset.
 *
 * A cursor holds a live iterator over the store's map. JavaScript map iterators keep
 * their place while the map changes: keys added during a scan are reached if they land
 * after the cursor, keys removed are skipped, and nothing is returned twice unless it
 * was removed and added again. So every key present for the whole scan is returned
 * exactly once, as Redis's SCAN promises (at least once, there). A dataset replaced
 * whole (a replica's full resync) is a new map the iterator cannot follow: its cursors
 * are refused, rather than left walking the old one.
 *
 * A page holds at most `limit` keys and `bytesMax` bytes, so that a page of large values
 * still fits in one message. The entry that would pass the byte bound is already taken
 * from the iterator; the cursor holds on to its key and begins the next page with it
 * (if it is still there then), so nothing is skipped.
 *
 * Cursors are server state: bounded in number (least recently used dropped first) and
 * in idle time, and named with a per-process prefix so a cursor from before a restart
 * is refused plainly rather than mistaken for a new one. A cursor holds its iterator,
 * and an iterator holds the whole map it walks: after a dataset is replaced, every
 * cursor left over from before holds the old dataset, however large. So cursors are
 * pruned by the node's timer ({@linkcode ScanCursors.prune}), not only when a scan
 * comes: a client that abandons its scans (`kvstore scan | head`) and sends no other
 * would otherwise leave them, and with them old datasets, in memory for good.
 *
 * @module
 */

import { SCAN_PAGE_BYTES_MAX } from "../config/limits.ts";
import { invalidArgument, quote } from "../errors.ts";
import { type Entry, isExpired, type Store } from "./store.ts";
import { utf8ByteLength } from "./utf8.ts";
import type { DataLimits } from "./validation.ts";

/** Bytes counted for each entry of a page beyond its key and value: the protobuf framing
 * of the entry (field tags, lengths, a deadline of up to 10 bytes), generously. */
const SCAN_ENTRY_OVERHEAD_BYTES = 32;

/** The byte bound of a Scan page under `limits`: SCAN_PAGE_BYTES_MAX, or less when the
 * largest key and value allowed are smaller, so a page always fits the message limit the
 * transport derives from them. */
export function scanPageBytesMax(limits: Pick<DataLimits, "keyBytesMax" | "valueBytesMax">): number {
  return Math.min(SCAN_PAGE_BYTES_MAX, limits.keyBytesMax + limits.valueBytesMax);
}

/** What one entry adds to a page's size: its key, and its value if the page carries
 * values. */
export function scanEntryBytes(key: string, value: string, withValues: boolean): number {
  return utf8ByteLength(key) + (withValues ? utf8ByteLength(value) : 0) + SCAN_ENTRY_OVERHEAD_BYTES;
}

export interface ScanLimits {
  /** Cursors open at once. */
  readonly cursorsMax: number;
  /** Idle time after which a cursor is dropped, in ms. */
  readonly idleMs: number;
  /** Keys examined per key a page may return. */
  readonly examinedPerReturnedMax: number;
}

/** The byte bound of one page (see {@linkcode ScanCursors.page}). */
export interface ScanPageBounds {
  /** Most bytes of keys (and values, with `withValues`) a page holds, counted by
   * {@linkcode scanEntryBytes}; a single larger entry is a page of its own. */
  readonly bytesMax: number;
  /** Whether the page's values travel with it, and so count. */
  readonly withValues: boolean;
}

const UNBOUNDED: ScanPageBounds = { bytesMax: Infinity, withValues: false };

export interface ScanPage {
  readonly entries: [string, Entry][];
  /** "" when the scan is complete. */
  readonly cursor: string;
}

interface OpenCursor {
  readonly iterator: Iterator<[string, Entry]>;
  readonly prefix: string;
  /** The store's generation when the scan began: its iterator walks that dataset only. */
  readonly generation: number;
  lastUsedMs: number;
  /** A key taken from the iterator that did not fit the last page's byte bound: the next
   * page begins with it. */
  held: string | null;
}

export class ScanCursors {
  #cursors = new Map<string, OpenCursor>();
  #instance: string;
  #nextId = 1;
  #limits: ScanLimits;
  /** The store's generation at the last prune: cursors of older ones were dropped. */
  #prunedGeneration = 0;

  /** `instance` tells this process's cursors from another's (a random string). */
  constructor(limits: ScanLimits, instance: string) {
    this.#limits = limits;
    this.#instance = instance;
  }

  /** Cursors currently open. */
  get openCount(): number {
    return this.#cursors.size;
  }

  /**
   * Returns the next page of up to `limit` live keys starting with `prefix`, and within
   * `bounds` bytes (see {@linkcode ScanPageBounds}). An empty `cursor` starts a scan; a
   * cursor continues one (its prefix must match the one it began with). Throws
   * INVALID_ARGUMENT for an unknown or expired cursor.
   */
  page(
    store: Store,
    cursor: string,
    prefix: string,
    limit: number,
    nowMs: number,
    bounds: ScanPageBounds = UNBOUNDED,
  ): ScanPage {
    this.#dropIdle(nowMs);
    let open: OpenCursor;
    if (cursor === "") {
      open = { iterator: store.entries(), prefix, generation: store.generation, lastUsedMs: nowMs, held: null };
    } else {
      const found = this.#cursors.get(cursor);
      if (found === undefined) {
        throw invalidArgument(
          `scan: Cursor ${quote(cursor)} is unknown or expired (idle cursors live ` +
            `${this.#limits.idleMs / 1000} s, and none survive a restart); start again with an empty cursor`,
        );
      }
      if (found.prefix !== prefix) {
        throw invalidArgument(
          `scan: Cursor ${quote(cursor)} belongs to a scan of prefix ${quote(found.prefix)}, not ${quote(prefix)}`,
        );
      }
      this.#cursors.delete(cursor);
      if (found.generation !== store.generation) {
        throw invalidArgument(
          `scan: Cursor ${quote(cursor)} can go no further: the dataset was replaced during the scan (a replica ` +
            `loaded a full resync from its master); start again with an empty cursor`,
        );
      }
      open = found;
      open.lastUsedMs = nowMs;
    }

    const entries: [string, Entry][] = [];
    let bytes = 0;
    if (open.held !== null) {
      const entry = store.get(open.held, nowMs);
      if (entry !== undefined) {
        entries.push([open.held, entry]);
        bytes += scanEntryBytes(open.held, entry.value, bounds.withValues);
      }
      open.held = null;
    }
    const examinedMax = limit * this.#limits.examinedPerReturnedMax;
    let examined = 0;
    let done = false;
    while (entries.length < limit && examined < examinedMax) {
      const next = open.iterator.next();
      if (next.done) {
        done = true;
        break;
      }
      examined++;
      const [key, entry] = next.value;
      if (!key.startsWith(prefix) || isExpired(entry, nowMs)) continue;
      const size = scanEntryBytes(key, entry.value, bounds.withValues);
      if (entries.length > 0 && bytes + size > bounds.bytesMax) {
        open.held = key;
        break;
      }
      entries.push([key, entry]);
      bytes += size;
    }
    if (done) return { entries, cursor: "" };
    const nextCursor = cursor === "" ? `${this.#instance}.${this.#nextId++}` : cursor;
    this.#cursors.set(nextCursor, open);
    while (this.#cursors.size > this.#limits.cursorsMax) {
      this.#cursors.delete(this.#cursors.keys().next().value!);
    }
    return { entries, cursor: nextCursor };
  }

  /**
   * Drops the cursors idle for the idle time and, once `store` was replaced or cleared,
   * those that walk its old contents (they would be refused anyway), letting go of the
   * old dataset they hold. The node calls it from a timer. Costs the cursors dropped,
   * and one pass over all cursors after a replacement. Returns how many were dropped.
   */
  prune(store: Store, nowMs: number): number {
    const before = this.#cursors.size;
    this.#dropIdle(nowMs);
    if (store.generation !== this.#prunedGeneration) {
      for (const [id, open] of this.#cursors) if (open.generation !== store.generation) this.#cursors.delete(id);
      this.#prunedGeneration = store.generation;
    }
    return before - this.#cursors.size;
  }

  #dropIdle(nowMs: number): void {
    // The map is in least-recently-used order (a used cursor is re-inserted at the end).
    for (const [id, open] of this.#cursors) {
      if (nowMs - open.lastUsedMs < this.#limits.idleMs) break;
      this.#cursors.delete(id);
    }
  }
}
