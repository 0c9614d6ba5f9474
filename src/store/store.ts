/**
 * The in-memory dataset: keys mapped to values with optional absolute deadlines.
 *
 * The store is mechanical: it applies commands and answers lookups at a time it is
 * given (`nowMs`), and never decides anything on its own. Deciding which commands to
 * issue (does EXPIRE find its key? has a key's deadline passed and should it go?) is
 * the job of {@linkcode WriteStaging} on the master; a replica applies what its master
 * sent and merely hides keys whose deadline has passed, since expiry belongs to the
 * master.
 *
 * @module
 */

import type { SequencedCommand, WriteCommand } from "./command.ts";
import { SampleSet } from "./sample_set.ts";

/** A value and its absolute deadline in unix milliseconds (`null`: none). */
export interface Entry {
  readonly value: string;
  readonly expiresAtMs: number | null;
}

/** Bytes charged per entry beyond its key and value characters: string headers, the entry
 * object, the map's slot and table slack. Measured on Deno 2.9.3: 1 million keys of about
 * 10 characters with 100-character values took 315 MiB of V8 heap, about 300 bytes each.
 * Used only for the dataset size estimate (Info, metrics). */
const ENTRY_OVERHEAD_BYTES = 190;

/** Whether `entry`'s deadline has passed at `nowMs`. A deadline equal to now has passed,
 * as in Redis (a key with 0 ms left is gone). */
export function isExpired(entry: Entry, nowMs: number): boolean {
  return entry.expiresAtMs !== null && entry.expiresAtMs <= nowMs;
}

export class Store {
  #entries = new Map<string, Entry>();
  #expiring = new SampleSet();
  #datasetBytes = 0;
  #generation = 0;

  /** Keys held, including keys whose deadline passed that are not removed yet. */
  get size(): number {
    return this.#entries.size;
  }

  /** Keys that carry a deadline. */
  get expiringCount(): number {
    return this.#expiring.size;
  }

  /** An estimate of the memory the dataset takes, in bytes. */
  get datasetBytes(): number {
    return this.#datasetBytes;
  }

  /** Counts calls to {@linkcode Store.clear} and {@linkcode Store.replaceContents}: a
   * long walk over the entries (a snapshot) compares it before and after to notice that
   * the dataset was replaced under it. */
  get generation(): number {
    return this.#generation;
  }

  /** The entry as stored, whether or not its deadline has passed. */
  peek(key: string): Entry | undefined {
    return this.#entries.get(key);
  }

  /** The entry if present and its deadline has not passed at `nowMs`. */
  get(key: string, nowMs: number): Entry | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined || isExpired(entry, nowMs)) return undefined;
    return entry;
  }

  /** Applies one command. Returns whether the dataset changed. */
  apply(command: WriteCommand): boolean {
    switch (command.kind) {
      case "set":
        this.#put(command.key, { value: command.value, expiresAtMs: command.expiresAtMs });
        return true;
      case "delete":
        return this.#remove(command.key);
      case "expireAt": {
        const entry = this.#entries.get(command.key);
        if (entry === undefined) return false;
        this.#put(command.key, { value: entry.value, expiresAtMs: command.expiresAtMs });
        return true;
      }
    }
  }

  /** Applies commands in order. */
  applyAll(commands: Iterable<SequencedCommand>): void {
    for (const { command } of commands) this.apply(command);
  }

  /** Every entry, in insertion order. The iteration is live: entries changed while it
   * runs may be seen in their old or new state, which the snapshot writer relies on
   * the idempotent log to repair. */
  entries(): IterableIterator<[string, Entry]> {
    return this.#entries.entries();
  }

  keys(): IterableIterator<string> {
    return this.#entries.keys();
  }

  /** Up to `count` keys drawn at random (with repetition) from those with a deadline. */
  sampleExpiring(count: number, random: () => number): string[] {
    const sample: string[] = [];
    for (let i = 0; i < count; i++) {
      const key = this.#expiring.pick(random);
      if (key === undefined) break;
      sample.push(key);
    }
    return sample;
  }

  clear(): void {
    this.#entries.clear();
    this.#expiring.clear();
    this.#datasetBytes = 0;
    this.#generation++;
  }

  /** Replaces this store's entries with `source`'s, which is left empty. Takes constant
   * time, so a replica can load a fullSync into a separate store while it keeps serving
   * reads from this one, and switch at the end without a pause. */
  replaceContents(source: Store): void {
    if (source === this) return;
    this.#entries = source.#entries;
    this.#expiring = source.#expiring;
    this.#datasetBytes = source.#datasetBytes;
    source.#entries = new Map();
    source.#expiring = new SampleSet();
    source.#datasetBytes = 0;
    this.#generation++;
  }

  #put(key: string, entry: Entry): void {
    const previous = this.#entries.get(key);
    if (previous !== undefined) this.#datasetBytes -= entryBytes(key, previous);
    this.#entries.set(key, entry);
    this.#datasetBytes += entryBytes(key, entry);
    // #expiring holds exactly the keys whose entry has a deadline, so a plain SET over a
    // key without one (the common write) has nothing to remove there.
    if (entry.expiresAtMs !== null) this.#expiring.add(key);
    else if (previous !== undefined && previous.expiresAtMs !== null) this.#expiring.delete(key);
  }

  #remove(key: string): boolean {
    const previous = this.#entries.get(key);
    if (previous === undefined) return false;
    this.#entries.delete(key);
    this.#expiring.delete(key);
    this.#datasetBytes -= entryBytes(key, previous);
    return true;
  }
}

function entryBytes(key: string, entry: Entry): number {
  return key.length + entry.value.length + ENTRY_OVERHEAD_BYTES;
}
