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
 * Cursors are server state: bounded in number (least recently used dropped first) and
 * in idle time, and named with a per-process prefix so a cursor from before a restart
 * is refused plainly rather than mistaken for a new one.
 *
 * @module
 */

import { invalidArgument, quote } from "../errors.ts";
import { type Entry, isExpired, type Store } from "./store.ts";

export interface ScanLimits {
  /** Cursors open at once. */
  readonly cursorsMax: number;
  /** Idle time after which a cursor is dropped, in ms. */
  readonly idleMs: number;
  /** Keys examined per key a page may return. */
  readonly examinedPerReturnedMax: number;
}

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
}

export class ScanCursors {
  #cursors = new Map<string, OpenCursor>();
  #instance: string;
  #nextId = 1;
  #limits: ScanLimits;

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
   * Returns the next page of up to `limit` live keys starting with `prefix`. An empty
   * `cursor` starts a scan; a cursor continues one (its prefix must match the one it
   * began with). Throws INVALID_ARGUMENT for an unknown or expired cursor.
   */
  page(store: Store, cursor: string, prefix: string, limit: number, nowMs: number): ScanPage {
    this.#dropIdle(nowMs);
    let open: OpenCursor;
    if (cursor === "") {
      open = { iterator: store.entries(), prefix, generation: store.generation, lastUsedMs: nowMs };
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
      if (key.startsWith(prefix) && !isExpired(entry, nowMs)) entries.push([key, entry]);
    }
    if (done) return { entries, cursor: "" };
    const nextCursor = cursor === "" ? `${this.#instance}.${this.#nextId++}` : cursor;
    this.#cursors.set(nextCursor, open);
    while (this.#cursors.size > this.#limits.cursorsMax) {
      this.#cursors.delete(this.#cursors.keys().next().value!);
    }
    return { entries, cursor: nextCursor };
  }

  #dropIdle(nowMs: number): void {
    // The map is in least-recently-used order (a used cursor is re-inserted at the end).
    for (const [id, open] of this.#cursors) {
      if (nowMs - open.lastUsedMs < this.#limits.idleMs) break;
      this.#cursors.delete(id);
    }
  }
}
