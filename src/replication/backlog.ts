/**
 * The master's replication backlog: the most recent committed commands, bounded in
 * bytes, from which replicas are fed.
 *
 * Every replica stream is a cursor into this one backlog (the seq of the last command it
 * was sent), so a master with many replicas keeps one copy of recent writes, not one per
 * replica. A replica that reconnects with a seq the backlog still reaches resumes with a
 * partialSync of what it missed; one whose next command was evicted needs a fullSync.
 * The same rule ends a stream whose replica reads more slowly than the master writes:
 * once its cursor falls out of the backlog it is disconnected, and resyncs. That is what
 * bounds the master's memory per replica to nothing beyond the backlog itself.
 *
 * Seqs in the backlog are contiguous: entry i holds seq firstSeq + i. Each entry remembers
 * when it was committed, so a replica's lag can be told in milliseconds as well as in
 * commands, and whether it ends its commit batch: reads stop at batch boundaries where
 * they can, so a replica that applies each read together shows an MSet (one batch) all at
 * once, as the master did.
 *
 * Pure: no I/O, no timers; time comes in as `nowMs`.
 *
 * @module
 */

import { BACKLOG_ENTRY_OVERHEAD_BYTES } from "../config/limits.ts";
import type { SequencedCommand, WriteCommand } from "../store/command.ts";

/** A committed command as the backlog holds it. */
export interface BacklogEntry {
  readonly seq: number;
  readonly command: WriteCommand;
  /** When the master committed it, unix ms. */
  readonly committedAtMs: number;
  /** What the entry is charged against the backlog's bound. */
  readonly bytes: number;
  /** Whether it is the last command of its commit batch. */
  readonly batchEnd: boolean;
}

/** Bounds on one read, so a message to a replica stays small. */
export interface ReadLimits {
  readonly itemsMax: number;
  readonly bytesMax: number;
}

/** Entries removed from the front of the array before it is compacted. */
const COMPACT_AFTER_ENTRIES = 1024;

export class Backlog {
  #entries: BacklogEntry[] = [];
  /** Index of the oldest live entry in #entries; the ones before it were evicted. */
  #head = 0;
  #bytes = 0;
  #bytesMax: number;
  #lastSeq: number;

  /** An empty backlog that continues after `lastSeq` (the node's committed seq). */
  constructor(options: { bytesMax: number; lastSeq: number }) {
    this.#bytesMax = options.bytesMax;
    this.#lastSeq = options.lastSeq;
  }

  /** The seq of the oldest command held; lastSeq + 1 when the backlog is empty. */
  get firstSeq(): number {
    return this.#lastSeq - this.length + 1;
  }

  /** The seq of the newest command appended (or the starting seq). */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** Commands held. */
  get length(): number {
    return this.#entries.length - this.#head;
  }

  /** Bytes charged for the commands held. */
  get bytes(): number {
    return this.#bytes;
  }

  get bytesMax(): number {
    return this.#bytesMax;
  }

  /**
   * Appends a committed batch. Its seqs must continue the backlog without a gap: the
   * write pipeline commits batches in seq order, so anything else is a bug. Evicts the
   * oldest commands while over the bound, but always keeps the newest batch whole, so
   * that a batch larger than the bound (one big value, or an MSet of many keys) still
   * reaches the replicas that have everything before it. Evicting part of it would
   * disconnect every streaming replica, however fast, and send each to a fullSync. The
   * bound is exceeded by at most that one batch, whose commands the store holds anyway.
   */
  append(batch: readonly SequencedCommand[], nowMs: number): void {
    for (const [i, { seq, command }] of batch.entries()) {
      if (seq !== this.#lastSeq + 1) {
        throw new Error(`backlog: Cannot append seq ${seq}: the next seq is ${this.#lastSeq + 1}`);
      }
      const bytes = commandBytes(command);
      this.#entries.push({ seq, command, committedAtMs: nowMs, bytes, batchEnd: i === batch.length - 1 });
      this.#bytes += bytes;
      this.#lastSeq = seq;
    }
    const keep = Math.max(batch.length, 1);
    while (this.#bytes > this.#bytesMax && this.length > keep) this.#evictOldest();
  }

  /** Whether a reader that holds every command up to `afterSeq` can continue from here:
   * the next command it needs is held, or it has them all. */
  covers(afterSeq: number): boolean {
    return afterSeq >= this.firstSeq - 1 && afterSeq <= this.#lastSeq;
  }

  /**
   * The commands after `afterSeq`, in order, as many as fit `limits` (at least one when
   * any is newer), ending at the end of a commit batch unless not even one whole batch
   * fits. Returns null when the backlog no longer reaches `afterSeq + 1`: the reader
   * needs a fullSync. Returns [] when the reader has everything.
   */
  read(afterSeq: number, limits: ReadLimits): BacklogEntry[] | null {
    if (!this.covers(afterSeq)) return null;
    const out: BacklogEntry[] = [];
    let bytes = 0;
    let index = this.#head + (afterSeq + 1 - this.firstSeq);
    while (index < this.#entries.length && out.length < limits.itemsMax) {
      const entry = this.#entries[index];
      if (out.length > 0 && bytes + entry.bytes > limits.bytesMax) break;
      out.push(entry);
      bytes += entry.bytes;
      index++;
    }
    if (index < this.#entries.length && !out[out.length - 1].batchEnd) {
      // Cut at the last whole batch, if the read holds one.
      let end = out.length;
      while (end > 0 && !out[end - 1].batchEnd) end--;
      if (end > 0) out.length = end;
    }
    return out;
  }

  /** When the command with `seq` was committed, if the backlog still holds it. */
  committedAtMs(seq: number): number | undefined {
    if (seq < this.firstSeq || seq > this.#lastSeq) return undefined;
    return this.#entries[this.#head + (seq - this.firstSeq)].committedAtMs;
  }

  /** When the oldest command held was committed (undefined when empty). */
  get oldestCommittedAtMs(): number | undefined {
    return this.length === 0 ? undefined : this.#entries[this.#head].committedAtMs;
  }

  #evictOldest(): void {
    this.#bytes -= this.#entries[this.#head].bytes;
    this.#head++;
    if (this.#head >= COMPACT_AFTER_ENTRIES && this.#head * 2 >= this.#entries.length) {
      this.#entries = this.#entries.slice(this.#head);
      this.#head = 0;
    }
  }
}

/** What a command is charged against the backlog's bound: its strings (two bytes per
 * UTF-16 code unit would be exact for V8's two-byte strings; one byte per unit is exact
 * for the common one-byte ones) plus a fixed overhead for the objects holding it. */
export function commandBytes(command: WriteCommand): number {
  const valueLength = command.kind === "set" ? command.value.length : 0;
  return command.key.length + valueLength + BACKLOG_ENTRY_OVERHEAD_BYTES;
}
