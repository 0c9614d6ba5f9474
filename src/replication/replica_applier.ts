/**
 * The replica's side of the ordering contract: every command of the master's history is
 * applied once, in seq order; duplicates are ignored; a gap or another history is
 * refused, so the caller resyncs rather than diverges.
 *
 * Commands reach a replica by two roads that may both be open at once: the Sync stream
 * it pulls, and ReplicateCommand pushes from a master running with --replicas. Both go
 * through one applier, which stages each accepted command on the replica's own
 * {@linkcode WriteStaging} under the master's seq. The staging's last seq (staged, not
 * only committed) is what decides, so a command staged by one road is a duplicate on the
 * other even before its batch is durable.
 *
 * A fullSync loads the master's dataset into a separate store while the old one keeps
 * serving reads; {@linkcode ReplicaApplier.finishFullSync} switches to it at once and
 * restarts the history at the snapshot's seq. While a fullSync loads, commands are
 * refused ("loading"): they would be applied to a dataset about to be replaced.
 *
 * The C++ store's master names no history and numbers its commands from 0. The applier
 * follows such a master under {@linkcode FOREIGN_REPLID}, with our seq = its id + 1 (our
 * seqs start at 1), so the rest of the node sees one numbering.
 *
 * Pure: no I/O, no timers.
 *
 * @module
 */

import type { SequencedCommand, WriteCommand } from "../store/command.ts";
import type { WriteStaging } from "../store/staging.ts";
import { Store } from "../store/store.ts";

/** The replid of a history followed from a master that names none (the C++ store). */
export const FOREIGN_REPLID = "0".repeat(40);

/** What became of one offered command. */
export type ApplyVerdict =
  | { readonly kind: "applied"; readonly staged: SequencedCommand }
  | { readonly kind: "duplicate" }
  | { readonly kind: "gap"; readonly lastSeq: number }
  | { readonly kind: "otherHistory"; readonly replid: string }
  | { readonly kind: "loading" };

export class ReplicaApplier {
  readonly staging: WriteStaging;
  #replid: string;
  #loading: { replid: string; seq: number; store: Store } | null = null;
  #suspended = false;

  /** `replid` is the history the replica's data belongs to (from recovery). */
  constructor(staging: WriteStaging, replid: string) {
    this.staging = staging;
    this.#replid = replid;
  }

  /** The history the replica holds. */
  get replid(): string {
    return this.#replid;
  }

  /** The last seq staged (accepted, perhaps not yet durable). */
  get lastSeq(): number {
    return this.staging.lastSeq;
  }

  /** Whether a fullSync is loading, or commands are suspended while the dataset is
   * being replaced. */
  get loading(): boolean {
    return this.#loading !== null || this.#suspended;
  }

  /** Refuses commands ("loading") until {@linkcode ReplicaApplier.resume}: while the
   * persistence records a replaced dataset, nothing may be staged on top of it. */
  suspend(): void {
    this.#suspended = true;
  }

  resume(): void {
    this.#suspended = false;
  }

  /** Stages `command` with `seq` of history `replid` if it is the next one. */
  offer(replid: string, seq: number, command: WriteCommand): ApplyVerdict {
    if (this.loading) return { kind: "loading" };
    if (replid !== this.#replid) return { kind: "otherHistory", replid: this.#replid };
    const lastSeq = this.staging.lastSeq;
    if (seq <= lastSeq) return { kind: "duplicate" };
    if (seq > lastSeq + 1) return { kind: "gap", lastSeq };
    return { kind: "applied", staged: this.staging.stageWithSeq(seq, command) };
  }

  /** The history continues under a new name: the master was promoted or restarted, and
   * answered a partialSync under its new replid. */
  renameHistory(replid: string): void {
    this.#replid = replid;
  }

  /** The dataset held is no longer what the files hold (replacing them failed): the
   * replica claims no history, so its master answers the next handshake with a
   * fullSync, a foreign master's next push is adopted afresh, and no command is applied
   * on top of files that do not lead to it. */
  forgetHistory(): void {
    this.#replid = "";
  }

  /** Starts loading a fullSync of history `replid` at `seq`; returns the store to fill.
   * A fullSync already loading is abandoned. */
  beginFullSync(replid: string, seq: number): Store {
    this.#loading = { replid, seq, store: new Store() };
    return this.#loading.store;
  }

  /** Abandons a fullSync; the replica keeps the data it had. */
  abortFullSync(): void {
    this.#loading = null;
  }

  /**
   * Switches to the loaded dataset: it replaces the store's contents, and the history
   * restarts at the snapshot's seq. Nothing may be pending on the staging (the caller
   * drains the write pipeline first). Returns the history now held.
   */
  finishFullSync(): { replid: string; seq: number } {
    const loading = this.#loading;
    if (loading === null) throw new Error("replica: Cannot finish a fullSync: none is loading");
    this.staging.resetSeq(loading.seq);
    this.staging.store.replaceContents(loading.store);
    this.#replid = loading.replid;
    this.#loading = null;
    return { replid: loading.replid, seq: loading.seq };
  }

  /**
   * Starts following a master that names no history (the C++ store) at its command
   * `id`: the dataset is emptied (such a history starts empty, and keeping data of
   * another history would diverge from it) and `id` becomes the next command expected.
   * Nothing may be pending on the staging. Returns how many keys were dropped.
   */
  adoptForeignHistory(id: number): number {
    const dropped = this.staging.store.size;
    this.staging.resetSeq(foreignIdToSeq(id) - 1);
    this.staging.store.clear();
    this.#replid = FOREIGN_REPLID;
    this.#loading = null;
    return dropped;
  }

  /** Gives up waiting for commands before `seq` of a foreign history, which cannot be
   * resynced: `seq` becomes the next expected. Nothing may be pending on the staging.
   * Returns how many commands were skipped. */
  skipTo(seq: number): number {
    const skipped = seq - 1 - this.staging.lastSeq;
    this.staging.resetSeq(seq - 1);
    return skipped;
  }
}

/** Our seq for the command a foreign master numbered `id` (its ids start at 0). */
export function foreignIdToSeq(id: number): number {
  return id + 1;
}

/** The id a foreign master gave the command we hold as `seq`; -1 before its first. */
export function seqToForeignId(seq: number): number {
  return seq - 1;
}
