/**
 * The node's dataset as its edges see it: reads, writes with Redis semantics, role
 * checks and expiry. Every edge that touches data (the gRPC service, and later import,
 * the router's local path, replication) goes through here, so validation and the
 * read-only rule of replicas are enforced in one place.
 *
 * Reads answer from the store, which holds only committed writes. Writes are staged,
 * then awaited through the {@linkcode WritePipeline} until their batch is durable.
 *
 * Expiry belongs to the master. On a master, a read that finds a key past its deadline
 * stages the key's deletion (lazy expiry) and the sweep stages deletions for keys found
 * by sampling (active expiry); both travel the write path like any write, so the log and
 * the replicas see them. A replica only hides such keys and waits for its master's
 * DELETE.
 *
 * @module
 */

import { SCAN_CURSOR_IDLE_MS, SCAN_CURSORS_MAX, SCAN_EXAMINED_PER_RETURNED_MAX } from "../config/limits.ts";
import type { Role } from "../config/server_flags.ts";
import { KvError, quote } from "../errors.ts";
import type { SequencedCommand } from "../store/command.ts";
import type { Entry } from "../store/store.ts";
import type { WriteDecision } from "../store/staging.ts";
import { findExpiredKeys, type SweepLimits } from "../store/expiry.ts";
import { ScanCursors, type ScanPage, scanPageBytesMax } from "../store/scan.ts";
import {
  type DataLimits,
  validateBatchSize,
  validateEntryDeadline,
  validateKey,
  validateMGetAnswer,
  validateScanLimit,
  validateTtlSeconds,
  validateValue,
} from "../store/validation.ts";
import type { WritePipeline } from "./write_pipeline.ts";

export interface KeyspaceOptions {
  readonly role: Role;
  /** For a replica: the master's address, named when refusing writes. */
  readonly masterAddress: string | null;
  readonly limits: DataLimits;
  readonly sweepLimits: SweepLimits;
  readonly clock: () => number;
  readonly random: () => number;
}

/** One entry of an MSet: a deadline as absolute unix ms or as a TTL in ms, or neither. */
export interface EntryWrite {
  readonly key: string;
  readonly value: string;
  readonly expiresAtMs?: number;
  readonly ttlMs?: number;
}

export class Keyspace {
  readonly pipeline: WritePipeline;
  readonly limits: DataLimits;
  #role: Role;
  #masterAddress: string | null;
  #sweepLimits: SweepLimits;
  #clock: () => number;
  #random: () => number;
  /** Set when the node shuts down: it takes no more writes (see stopWrites). */
  #writesStopped = false;
  #scanCursors = new ScanCursors({
    cursorsMax: SCAN_CURSORS_MAX,
    idleMs: SCAN_CURSOR_IDLE_MS,
    examinedPerReturnedMax: SCAN_EXAMINED_PER_RETURNED_MAX,
  }, crypto.randomUUID().slice(0, 8));

  constructor(pipeline: WritePipeline, options: KeyspaceOptions) {
    this.pipeline = pipeline;
    this.limits = options.limits;
    this.#role = options.role;
    this.#masterAddress = options.masterAddress;
    this.#sweepLimits = options.sweepLimits;
    this.#clock = options.clock;
    this.#random = options.random;
  }

  get role(): Role {
    return this.#role;
  }

  get masterAddress(): string | null {
    return this.#masterAddress;
  }

  /** Keys removed by expiry since start (lazy, active, or deleted after a restart found
   * them past their deadline), each once its deletion is in the log (see
   * WriteStaging.expiredKeys). */
  get expiredKeys(): number {
    return this.pipeline.staging.expiredKeys;
  }

  /** Switches role, e.g. on promotion of a replica. */
  setRole(role: Role, masterAddress: string | null): void {
    this.#role = role;
    this.#masterAddress = masterAddress;
  }

  /**
   * Shutdown: from now on every client write is refused with UNAVAILABLE, and expiry
   * stages no deletions (a key past its deadline is only hidden, as on a replica), so
   * the last seq stays put while a master gives its replicas time to acknowledge it.
   * Writes already staged still commit.
   */
  stopWrites(): void {
    this.#writesStopped = true;
  }

  /** The live entry for `key`, or undefined when missing or past its deadline. */
  get(key: string): Entry | undefined {
    validateKey(key, "get", this.limits);
    return this.#read(key);
  }

  contains(key: string): boolean {
    validateKey(key, "check", this.limits);
    return this.#read(key) !== undefined;
  }

  /** Seconds left before `key` expires, rounded to the nearest second as Redis does;
   * -1 when it has no deadline, -2 when it does not exist. */
  ttlSeconds(key: string): number {
    validateKey(key, "read the TTL of", this.limits);
    const entry = this.#read(key);
    if (entry === undefined) return -2;
    if (entry.expiresAtMs === null) return -1;
    return Math.floor((entry.expiresAtMs - this.#clock() + 500) / 1000);
  }

  /** SET: the key takes `value` and loses any deadline. */
  set(key: string, value: string): Promise<void> {
    try {
      validateKey(key, "set", this.limits);
      validateValue(key, value, this.limits);
      this.#refuseOnReplica("set", key);
      this.pipeline.admitWrite();
      return this.pipeline.commit(this.pipeline.staging.set(key, value, null));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** DEL: resolves with whether a live key was found. */
  async delete(key: string): Promise<boolean> {
    validateKey(key, "delete", this.limits);
    this.#refuseOnReplica("delete", key);
    this.pipeline.admitWrite();
    const decision = this.pipeline.staging.delete(key, this.#clock());
    if (!this.#awaitsCommit(decision)) return false;
    await this.pipeline.commit(decision.staged);
    return decision.applied;
  }

  /** EXPIRE: resolves with whether the key existed (and so took the deadline, or was
   * deleted for `seconds` <= 0). */
  async expire(key: string, seconds: number): Promise<boolean> {
    validateKey(key, "expire", this.limits);
    validateTtlSeconds(key, seconds, this.limits);
    this.#refuseOnReplica("expire", key);
    this.pipeline.admitWrite();
    const decision = this.pipeline.staging.expire(key, seconds, this.#clock());
    if (!this.#awaitsCommit(decision)) return false;
    await this.pipeline.commit(decision.staged);
    return decision.applied;
  }

  /** MGET: the live entry of each key, in order (undefined where missing). Refuses, with
   * RESOURCE_EXHAUSTED, an answer too large for one message (`withDeadlines`: it also
   * carries each key's deadline). */
  getMany(keys: readonly string[], withDeadlines = false): (Entry | undefined)[] {
    validateBatchSize(keys.length, "read");
    for (const key of keys) validateKey(key, "get", this.limits);
    const entries = keys.map((key) => this.#read(key));
    validateMGetAnswer(entries.map((entry) => entry?.value), withDeadlines, this.limits);
    return entries;
  }

  /**
   * MSET: writes every entry, all or none. Every entry is validated before any is
   * staged, and all are staged at once so they share one batch: the log takes them
   * together or not at all. An entry whose deadline has already passed deletes its key.
   * With `onlyIfAbsent` (the cluster's rebalancing copies keys that way, so a newer
   * write on the shard a key moves to is never overwritten), entries whose key exists
   * are skipped; a key found because a write to it is still on its way to the log is
   * skipped too, and the answer waits for that write, so "already there" never rests on
   * a write that then fails. With `fsync`, the answer waits for an fsync of the log past
   * all of that, whatever --appendfsync says (the rebalancing's copy, which must survive
   * a power cut before the key is deleted from its old shard). Resolves with the number
   * of entries written.
   */
  async setMany(
    entries: readonly EntryWrite[],
    options: { onlyIfAbsent?: boolean; fsync?: boolean } = {},
  ): Promise<number> {
    validateBatchSize(entries.length, "write");
    const nowMs = this.#clock();
    const deadlines = entries.map((entry) => {
      validateKey(entry.key, "set", this.limits);
      validateValue(entry.key, entry.value, this.limits);
      return validateEntryDeadline(entry, nowMs, this.limits);
    });
    if (entries.length > 0) this.#refuseOnReplica("set", entries[0].key);
    this.pipeline.admitWrite();
    const staging = this.pipeline.staging;
    // The writes staged before this call: a key skipped as present may rest on them.
    const seenSeq = staging.lastSeq;
    // Every command is staged in this turn, so one batch takes them all: waiting for the
    // last is waiting for all (and for every command staged before it, since batches
    // commit in seq order and a failed one drops those queued behind it).
    let last: SequencedCommand | null = null;
    let written = 0;
    for (const [i, entry] of entries.entries()) {
      if (options.onlyIfAbsent && staging.view(entry.key, nowMs) !== undefined) continue;
      written++;
      const expiresAtMs = deadlines[i];
      if (expiresAtMs !== null && expiresAtMs <= nowMs) {
        last = staging.delete(entry.key, nowMs).staged ?? last;
      } else {
        last = staging.set(entry.key, entry.value, expiresAtMs);
      }
    }
    if (last !== null) await this.pipeline.commit(last);
    else if (written < entries.length) await this.pipeline.committedUpTo(seenSeq);
    if (options.fsync === true) await this.pipeline.sync();
    return written;
  }

  /** SCAN: the next page of live keys with `prefix`, continuing from `cursor` ("" to
   * start). `limit` 0 means the default page size. A page also stops before its keys
   * (and values, `withValues`) pass scanPageBytesMax, so it fits in one message. */
  scan(cursor: string, prefix: string, limit: number, withValues = false): ScanPage {
    const pageKeys = validateScanLimit(limit);
    if (prefix !== "") validateKey(prefix, "scan for prefix", this.limits);
    const store = this.pipeline.staging.store;
    return this.#scanCursors.page(store, cursor, prefix, pageKeys, this.#clock(), {
      bytesMax: scanPageBytesMax(this.limits),
      withValues,
    });
  }

  /**
   * One tick of active expiry: on a master, finds keys past their deadline by sampling
   * and stages their deletion. Returns how many deletions were staged. Does nothing on a
   * replica.
   */
  sweepExpired(): number {
    if (this.#role !== "master" || this.#writesStopped) return 0;
    const nowMs = this.#clock();
    const store = this.pipeline.staging.store;
    let staged = 0;
    for (const key of findExpiredKeys(store, nowMs, this.#random, this.#sweepLimits)) {
      if (this.pipeline.staging.expireDue(key, nowMs) !== null) staged++;
    }
    if (staged > 0) this.pipeline.flushSoon();
    return staged;
  }

  /** Drops idle Scan cursors, and those over a dataset since replaced, which would
   * otherwise hold it in memory (see ScanCursors.prune). Called from the node's timer. */
  pruneScanCursors(): void {
    this.#scanCursors.prune(this.pipeline.staging.store, this.#clock());
  }

  /** Whether a DEL's or EXPIRE's answer waits for what it staged. When it found no live
   * key, what it staged (if anything) is the removal of a key past its deadline: upkeep,
   * as a read's, which the answer "not found" does not rest on, so it is flushed in the
   * background and a log that refuses it does not fail the call. */
  #awaitsCommit(decision: WriteDecision): decision is WriteDecision & { staged: SequencedCommand } {
    if (decision.staged === null) return false;
    if (decision.applied) return true;
    this.pipeline.flushSoon();
    return false;
  }

  #read(key: string): Entry | undefined {
    const store = this.pipeline.staging.store;
    const nowMs = this.#clock();
    const entry = store.get(key, nowMs);
    if (entry === undefined && this.#role === "master" && !this.#writesStopped && store.peek(key) !== undefined) {
      if (this.pipeline.staging.expireDue(key, nowMs) !== null) this.pipeline.flushSoon();
    }
    return entry;
  }

  /** Refuses a client write on a replica (naming its master), and on a node shutting down. */
  #refuseOnReplica(action: string, key: string): void {
    if (this.#role !== "master") {
      const master = this.#masterAddress ?? "its master";
      throw new KvError(
        "FAILED_PRECONDITION",
        `replica: Cannot ${action} key ${quote(key)}: this node is a read-only replica; ` +
          `send writes to the master at ${master}`,
      );
    }
    if (this.#writesStopped) {
      throw new KvError(
        "UNAVAILABLE",
        `server: Cannot ${action} key ${quote(key)}: this node is shutting down and takes no more writes; ` +
          "nothing was applied. Retry on the node that takes its place, or once it has restarted",
      );
    }
  }
}
