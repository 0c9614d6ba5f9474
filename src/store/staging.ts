/**
 * Write staging: turns client requests into sequenced commands and holds them until
 * they are durable, so that the readable dataset never runs ahead of the log.
 *
 * A write moves through three states:
 *
 *   staged     decided and given the next `seq`; visible only to later decisions
 *   taken      handed to the log writer as part of a batch
 *   committed  written (and synced, per policy); applied to the store; readable
 *
 * Decisions need the state that earlier, not yet committed writes will leave behind:
 * `SET k` then `EXPIRE k 10` in the same batch must find `k`. The staging keeps an
 * overlay of the latest staged entry per key for that; reads by clients never consult
 * it, they see the store, which holds only what the log holds. If a batch cannot be
 * written, every staged command is dropped ({@linkcode WriteStaging.abort}) because
 * later decisions may rest on the lost ones, and `seq` rewinds so the history stays
 * gapless.
 *
 * @module
 */

import type { SequencedCommand, WriteCommand } from "./command.ts";
import { type Entry, isExpired, type Store } from "./store.ts";

/** Bytes charged per staged command beyond its key and value characters (the command
 * and its queue slot), so that many tiny commands count too. An estimate, like the
 * store's entry size. */
const STAGED_COMMAND_OVERHEAD_BYTES = 64;

/** What a staged key will hold once its pending commands commit (`null`: absent). */
interface PendingKey {
  entry: Entry | null;
  /** Staged commands on this key not yet committed. */
  commands: number;
}

/** The outcome of a client write: the answer it gets and the command it staged (none
 * when the write changes nothing, such as deleting a missing key). */
export interface WriteDecision {
  readonly applied: boolean;
  readonly staged: SequencedCommand | null;
}

export class WriteStaging {
  readonly store: Store;
  #pending = new Map<string, PendingKey>();
  #queued: SequencedCommand[] = [];
  #taken: SequencedCommand[] | null = null;
  #lastSeq: number;
  #committedSeq: number;
  #pendingBytes = 0;
  /** The staged deletions of keys past their deadline ({@linkcode expireDue}), told apart
   * by identity: a seq is reused once a failed batch drops its command. */
  #expiryDeletions = new WeakSet<SequencedCommand>();
  #expiredKeys = 0;

  /** `committedSeq` is the seq of the last command the store already holds. */
  constructor(store: Store, committedSeq = 0) {
    this.store = store;
    this.#lastSeq = committedSeq;
    this.#committedSeq = committedSeq;
  }

  /** The seq of the last staged command (equal to committedSeq when none is pending). */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** The seq of the last command applied to the store. */
  get committedSeq(): number {
    return this.#committedSeq;
  }

  /** Keys removed because their deadline passed, each counted once, when its deletion
   * commits: a deletion dropped with a failed batch (the log refused it) is not, though
   * the expiry that finds the key again stages another. */
  get expiredKeys(): number {
    return this.#expiredKeys;
  }

  /** Whether staged commands wait to be taken by the log writer. */
  get hasQueued(): boolean {
    return this.#queued.length > 0;
  }

  /** Whether `staged` waits in the queue for the next batch (not taken, not dropped). */
  isQueued(staged: SequencedCommand): boolean {
    const first = this.#queued[0];
    return first !== undefined && this.#queued[staged.seq - first.seq] === staged;
  }

  /** Staged commands not yet committed, taken or not. */
  get pendingCount(): number {
    return this.#queued.length + (this.#taken?.length ?? 0);
  }

  /** An estimate of the memory the staged commands not yet committed take, in bytes:
   * what waits for the log. */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  /** Restarts the history at `seq` with nothing pending, e.g. after a full resync. */
  resetSeq(seq: number): void {
    if (this.pendingCount > 0) {
      throw new Error(`staging: Cannot reset seq to ${seq}: ${this.pendingCount} commands pending`);
    }
    this.#lastSeq = seq;
    this.#committedSeq = seq;
  }

  /** The live entry a new decision must see: the latest staged state of `key`, or the
   * store's when nothing is staged for it. */
  view(key: string, nowMs: number): Entry | undefined {
    const pending = this.#pending.get(key);
    const entry = pending === undefined ? this.store.peek(key) : pending.entry;
    if (entry === null || entry === undefined || isExpired(entry, nowMs)) return undefined;
    return entry;
  }

  /** Stages SET: the key gets `value` and `expiresAtMs` (null clears any deadline). */
  set(key: string, value: string, expiresAtMs: number | null): SequencedCommand {
    return this.stage({ kind: "set", key, value, expiresAtMs });
  }

  /** Stages DEL. `applied` says whether a live key was found. A key whose deadline has
   * passed counts as missing, but is still removed. */
  delete(key: string, nowMs: number): WriteDecision {
    if (this.view(key, nowMs) !== undefined) {
      return { applied: true, staged: this.stage({ kind: "delete", key }) };
    }
    return { applied: false, staged: this.expireDue(key, nowMs) };
  }

  /**
   * Stages EXPIRE with Redis's rules: fails on a missing key; `seconds` <= 0 deletes the
   * key; otherwise the key gets the absolute deadline `nowMs + seconds * 1000`.
   */
  expire(key: string, seconds: number, nowMs: number): WriteDecision {
    if (this.view(key, nowMs) === undefined) {
      return { applied: false, staged: this.expireDue(key, nowMs) };
    }
    if (seconds <= 0) return { applied: true, staged: this.stage({ kind: "delete", key }) };
    const expiresAtMs = nowMs + seconds * 1000;
    return { applied: true, staged: this.stage({ kind: "expireAt", key, expiresAtMs }) };
  }

  /**
   * Stages the removal of `key` if the store holds it past its deadline and no write to
   * it is pending (a pending write decides the key's fate itself). Returns the staged
   * DELETE, or null. Only a master calls this: expiry belongs to the master.
   */
  expireDue(key: string, nowMs: number): SequencedCommand | null {
    if (this.#pending.has(key)) return null;
    const entry = this.store.peek(key);
    if (entry === undefined || !isExpired(entry, nowMs)) return null;
    const staged = this.stage({ kind: "delete", key });
    this.#expiryDeletions.add(staged);
    return staged;
  }

  /** Stages a command under the next seq. */
  stage(command: WriteCommand): SequencedCommand {
    return this.stageWithSeq(this.#lastSeq + 1, command);
  }

  /** Stages a command under a seq chosen by the master; it must be the next one. */
  stageWithSeq(seq: number, command: WriteCommand): SequencedCommand {
    if (seq !== this.#lastSeq + 1) {
      throw new Error(`staging: Cannot stage seq ${seq}: the next seq is ${this.#lastSeq + 1}`);
    }
    const staged: SequencedCommand = { seq, command };
    this.#lastSeq = seq;
    this.#queued.push(staged);
    this.#pendingBytes += stagedCommandBytes(command);
    const pending = this.#pending.get(command.key);
    // Only an EXPIRE-AT keeps what the key held; a SET or DELETE decides the key's state
    // alone, so it spares the store a lookup on the write path.
    const before = command.kind !== "expireAt"
      ? null
      : pending === undefined
      ? (this.store.peek(command.key) ?? null)
      : pending.entry;
    const after = entryAfter(before, command);
    if (pending === undefined) this.#pending.set(command.key, { entry: after, commands: 1 });
    else {
      pending.entry = after;
      pending.commands++;
    }
    return staged;
  }

  /** Hands every queued command to the log writer as one batch. Only one batch may be
   * taken at a time; the next is taken after this one commits or aborts. */
  takeBatch(): SequencedCommand[] {
    if (this.#taken !== null) throw new Error("staging: Cannot take a batch: one is in flight");
    const batch = this.#queued;
    this.#taken = batch;
    this.#queued = [];
    return batch;
  }

  /** Applies the taken batch to the store, once the log holds it. */
  commit(batch: SequencedCommand[]): void {
    if (batch !== this.#taken) throw new Error("staging: Cannot commit a batch that was not taken");
    for (const staged of batch) {
      if (this.#expiryDeletions.has(staged)) this.#expiredKeys++;
      this.store.apply(staged.command);
      this.#pendingBytes -= stagedCommandBytes(staged.command);
      const pending = this.#pending.get(staged.command.key)!;
      if (--pending.commands === 0) this.#pending.delete(staged.command.key);
    }
    if (batch.length > 0) this.#committedSeq = batch[batch.length - 1].seq;
    this.#taken = null;
  }

  /** Drops every staged command, taken or queued, and rewinds seq to the last commit.
   * Returns the dropped commands so their writers can be told. */
  abort(): SequencedCommand[] {
    const dropped = [...(this.#taken ?? []), ...this.#queued];
    this.#taken = null;
    this.#queued = [];
    this.#pending.clear();
    this.#pendingBytes = 0;
    this.#lastSeq = this.#committedSeq;
    return dropped;
  }
}

/** An estimate of the memory a staged command holds, in bytes: its key and value (one
 * byte per UTF-16 unit, as V8 holds ASCII) plus a fixed overhead. */
export function stagedCommandBytes(command: WriteCommand): number {
  return command.key.length + (command.kind === "set" ? command.value.length : 0) + STAGED_COMMAND_OVERHEAD_BYTES;
}

function entryAfter(before: Entry | null, command: WriteCommand): Entry | null {
  switch (command.kind) {
    case "set":
      return { value: command.value, expiresAtMs: command.expiresAtMs };
    case "delete":
      return null;
    case "expireAt":
      return before === null ? null : { value: before.value, expiresAtMs: command.expiresAtMs };
  }
}
