/**
 * The file-backed {@linkcode CommitLog}: appends each batch to kvstore.aof, syncs it per
 * the fsync policy, cuts back failed appends, and is cut after snapshots.
 *
 * Fsync policies (the flag --appendfsync, as in Redis):
 *
 * - `always`: `append` resolves after the batch is written and fdatasync'ed. The pipeline
 *   hands over everything that arrived in one event-loop turn as one batch, so concurrent
 *   writers share one write and one fsync (group commit).
 * - `everysec`: `append` resolves once the OS has the batch; the node calls `sync` once a
 *   second. A process crash loses nothing acknowledged; a power cut, up to about a second.
 *   After a failed fsync, appends are refused until an fsync succeeds (as Redis refuses
 *   writes then): what they added could not be made durable, so a power cut would take
 *   more than the second this policy promises.
 * - `no`: the OS flushes when it likes (Linux: within about 30 s).
 *
 * A failed append (disk full, I/O error, file too large) is cut back: the file is
 * truncated to where the batch began and fsynced, so the log is as if the batch had
 * never been offered and the next append, once the disk recovers, continues a clean log.
 * The fsync matters whatever the policy: the OS may already have written the failed
 * batch's bytes back on its own, and an unsynced truncation can be lost in a power cut,
 * bringing back a batch whose writers were told nothing was applied (and whose seqs the
 * next batch reuses). If the truncation or its fsync fails, every append is refused,
 * retrying both first, until they succeed.
 *
 * Every operation that touches the write position (append, HISTORY, the end of a cut,
 * replacement, close) runs under one lock; `sync` does not, and uses its own file handle,
 * so an everysec fsync never holds up appends.
 *
 * Once a cut or a replacement has renamed its new log over kvstore.aof, that file is the
 * log, and appends go to it even if the fsync of the directory then fails: appending to
 * the old one would write to a file no name leads to any more. The directory's fsync is
 * then retried before every fsync of the log, so nothing is reported durable (under
 * `always`, nothing acknowledged) before the new name is.
 *
 * @module
 */

import { LOG_ENCODER_RETAINED_BYTES_MAX } from "../config/limits.ts";
import { KvError } from "../errors.ts";
import type { SequencedCommand } from "../store/command.ts";
import type { CommitLog } from "./commit_log.ts";
import type { CrashHook } from "./crashpoints.ts";
import { FRAME_HEADER_BYTES, FrameEncoder } from "./frame.ts";
import { encodeBatch, encodeHistory, encodeLogStart, LOG_FILE, LOG_TMP_FILE } from "./log_format.ts";
import { ByteReader } from "./bytes.ts";
import { type LogHeader, RECORD_HISTORY } from "./records.ts";
import { SnapshotInstalledError } from "./snapshot_format.ts";
import { describeStorageError, type FileWriter, type Storage } from "./storage.ts";
import { Mutex } from "./mutex.ts";

export const FSYNC_POLICIES = ["always", "everysec", "no"] as const;

/** The write path's encoding buffer to begin with, in bytes: a batch of a hundred small
 * writes fits, larger ones grow it. */
const LOG_ENCODER_INITIAL_BYTES = 64 * 1024;
export type FsyncPolicy = typeof FSYNC_POLICIES[number];

export interface FileLogOptions {
  readonly policy: FsyncPolicy;
  /** Payload bytes per frame when a batch is split. */
  readonly frameTargetBytes: number;
  /** Bytes copied per read when the log is cut. */
  readonly copyChunkBytes: number;
  /** Bytes the cut copies between fsyncs of the new log, outside the lock (see
   * SNAPSHOT_FSYNC_INTERVAL_BYTES). */
  readonly copyFsyncIntervalBytes: number;
  readonly crash: CrashHook;
}

/** What a cut of the log did. */
export interface LogCut {
  readonly bytesBefore: number;
  readonly bytesAfter: number;
}

export class FileLog implements CommitLog {
  readonly policy: FsyncPolicy;
  #storage: Storage;
  #options: FileLogOptions;
  #file: FileWriter | null = null;
  #header: LogHeader | null = null;
  #lastSeq = 0;
  /** Where the last complete append ends. The writer's own size may run ahead of it
   * while an append is under way; every position the log hands out is this one, which
   * moves together with #lastSeq. */
  #end = 0;
  /** The last command batch appended: where it began and its first seq. */
  #lastBatch: { offset: number; firstSeq: number } | null = null;
  #lock = new Mutex();
  /** Set while a failed append is not durably cut back yet: the offset to cut the file
   * to (and then fsync it). Appends are refused until that succeeds. */
  #truncatePending: number | null = null;
  #dirty = false;
  /** Set when the directory's fsync after a rename failed: the log's name is not durable
   * yet, and the next fsync of the log syncs the directory first. */
  #dirSyncPending = false;
  #syncChain: Promise<void> = Promise.resolve();
  #syncsInFlight = 0;
  /** Why the last fsync failed, until one succeeds (everysec refuses appends meanwhile). */
  #syncFailure: string | null = null;
  #lastError: string | null = null;
  #encoder = new FrameEncoder(LOG_ENCODER_INITIAL_BYTES);

  /** Called with the duration of each fsync of the log, in ms (metrics). */
  onFsync: ((durationMs: number) => void) | null = null;

  constructor(storage: Storage, options: FileLogOptions) {
    this.#storage = storage;
    this.#options = options;
    this.policy = options.policy;
  }

  /** Takes over the open log recovery left: `file` positioned at its end, the header it
   * starts with and the seq of its last command. */
  attach(file: FileWriter, header: LogHeader, lastSeq: number): void {
    this.#file = file;
    this.#header = header;
    this.#lastSeq = lastSeq;
    this.#end = file.size;
    this.#lastBatch = null;
  }

  get path(): string {
    return this.#storage.pathOf(LOG_FILE);
  }

  /** The header of the log in use. */
  get header(): LogHeader {
    if (this.#header === null) throw new Error("log: The log is not open");
    return this.#header;
  }

  /** Bytes in the log file, up to the end of the last complete append. */
  get size(): number {
    return this.#end;
  }

  /** The seq of the last command in the log. */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** The last append or sync failure, or null once a later one succeeded. */
  get lastError(): string | null {
    return this.#lastError;
  }

  /** Whether a sync is under way (the everysec timer skips a tick then). */
  get syncing(): boolean {
    return this.#syncsInFlight > 0;
  }

  append(batch: readonly SequencedCommand[]): Promise<void> {
    if (batch.length === 0) return Promise.resolve();
    return this.#lock.run(async () => {
      const file = this.#open();
      await this.#finishPendingTruncate(file, batch.length);
      if (this.policy === "everysec" && this.#syncFailure !== null) {
        throw new KvError(
          "UNAVAILABLE",
          `log: Cannot append ${writes(batch.length)} to ${this.path}: the last fsync of the log failed ` +
            `(${this.#syncFailure}); writes are refused until an fsync succeeds (retried every second)`,
        );
      }
      const firstSeq = batch[0].seq;
      if (firstSeq !== this.#lastSeq + 1) {
        throw new KvError("INTERNAL", `log: Cannot append seq ${firstSeq}: the log ends at seq ${this.#lastSeq}`);
      }
      const bytes = encodeBatch(this.#encoder, batch, this.#options.frameTargetBytes);
      const offset = this.#end;
      try {
        await file.append(bytes);
        this.#options.crash("after-append-before-sync");
        if (this.policy === "always") await this.#timedSync(file);
      } catch (error) {
        throw await this.#failAppend(file, offset, error, writes(batch.length));
      }
      this.#encoder.release(LOG_ENCODER_RETAINED_BYTES_MAX, LOG_ENCODER_INITIAL_BYTES);
      this.#lastSeq = batch[batch.length - 1].seq;
      this.#end = offset + bytes.length;
      this.#lastBatch = { offset, firstSeq };
      if (this.policy !== "always") this.#dirty = true;
      this.#lastError = null;
      this.#options.crash("after-append-before-ack");
    });
  }

  /** Appends a HISTORY record (a new replid from the last seq on) and syncs it, whatever
   * the policy: a promotion is rare and must survive. `onDurable` runs in the same step
   * as the append's success, before any other log operation can start. */
  appendHistory(replid: string, onDurable: () => void): Promise<void> {
    return this.#lock.run(async () => {
      const file = this.#open();
      await this.#finishPendingTruncate(file, 1);
      const offset = this.#end;
      const bytes = encodeHistory(this.#encoder, this.#lastSeq, replid);
      try {
        await file.append(bytes);
        await this.#syncFile(file);
      } catch (error) {
        throw await this.#failAppend(file, offset, error, "the new history");
      }
      this.#end = offset + bytes.length;
      onDurable();
    });
  }

  async #timedSync(file: FileWriter): Promise<void> {
    const startedMs = performance.now();
    await this.#syncFile(file);
    this.onFsync?.(performance.now() - startedMs);
  }

  /** Fsyncs `file`, and first the directory if the log's name is not durable yet. */
  async #syncFile(file: FileWriter): Promise<void> {
    if (this.#dirSyncPending) {
      await this.#storage.syncDir();
      this.#dirSyncPending = false;
    }
    await file.sync();
  }

  /** Fsyncs the directory after the log was renamed into place. A failure is not thrown:
   * the rename is done, so the new file is the log from now on; the next fsync of the log
   * retries the directory's (see #syncFile). */
  async #syncDirAfterRename(): Promise<void> {
    try {
      await this.#storage.syncDir();
    } catch (error) {
      this.#dirSyncPending = true;
      this.#lastError = `directory fsync failed: ${describeStorageError(error)}`;
    }
  }

  /** Makes everything appended so far durable. Concurrent calls queue; each covers every
   * append that finished before it was called. */
  sync(): Promise<void> {
    this.#syncsInFlight++;
    const run = async () => {
      const file = this.#file;
      if (file === null) return;
      if (!this.#dirty && !this.#dirSyncPending) {
        // Everything appended is durable (a cut or a replacement may have synced it).
        this.#syncFailure = null;
        return;
      }
      this.#dirty = false;
      try {
        await this.#timedSync(file);
        this.#syncFailure = null;
      } catch (error) {
        this.#dirty = true;
        this.#syncFailure = describeStorageError(error);
        this.#lastError = `fsync failed: ${describeStorageError(error)}`;
        throw new KvError("UNAVAILABLE", `log: Cannot fsync ${this.path}: ${describeStorageError(error)}`);
      }
    };
    const result = this.#syncChain.then(run, run);
    this.#syncChain = result.then(() => {}, () => {}).finally(() => this.#syncsInFlight--);
    return result;
  }

  /** The offset where the records after `seq` begin. `seq` is the dataset's committed seq:
   * the log's last seq, or the seq just before its last batch (appended, not yet
   * committed). */
  offsetAfter(seq: number): number {
    this.#open();
    if (seq === this.#lastSeq) return this.#end;
    if (this.#lastBatch !== null && seq === this.#lastBatch.firstSeq - 1) return this.#lastBatch.offset;
    throw new Error(`log: Cannot find where seq ${seq} ends: the log ends at seq ${this.#lastSeq}`);
  }

  /**
   * Replaces the log with one that starts with `header` and holds the frames from `from`
   * on (the batches after the snapshot's seq): the AOF rewrite. Appends go on meanwhile:
   * the bulk is copied and fsynced without the lock, and only the frames appended during
   * the copy are copied under it, followed by fsync, rename and the switch of the write
   * handle.
   * On failure the old log stays in use, whole, and the temporary file is removed.
   */
  async cut(from: { offset: number; seq: number }, header: LogHeader): Promise<LogCut> {
    const bytesBefore = this.size;
    const encoder = new FrameEncoder();
    const tmp = await this.#storage.openWriter(LOG_TMP_FILE, "create");
    let installed = false;
    try {
      await tmp.append(encodeLogStart(encoder, header));
      this.#open();
      const copiedTo = this.#end;
      await this.#checkCutPoint(from, copiedTo);
      await this.#copy(from.offset, copiedTo, tmp, this.#options.copyFsyncIntervalBytes);
      // Synced before the lock is taken, so the fsync that appends wait for covers only
      // the frames appended during the copy, not all the writes made during the snapshot.
      await tmp.sync();
      return await this.#lock.run(async () => {
        const file = this.#open();
        // Under the lock, appends wait: one fsync for the whole tail, not several.
        await this.#copy(copiedTo, this.#end, tmp, Infinity);
        await tmp.sync();
        this.#options.crash("mid-log-cut");
        await this.#storage.rename(LOG_TMP_FILE, LOG_FILE);
        installed = true;
        await this.#syncDirAfterRename();
        this.#options.crash("after-log-cut");
        const shift = tmp.size - this.#end;
        await this.#syncChain;
        this.#file = tmp;
        this.#end = tmp.size;
        this.#header = header;
        this.#dirty = false;
        // The new file holds exactly the complete batches; whatever a failed append left
        // past the end of the old one stayed behind with it.
        this.#truncatePending = null;
        if (this.#lastBatch !== null) this.#lastBatch = { ...this.#lastBatch, offset: this.#lastBatch.offset + shift };
        await file.close().catch(() => {});
        return { bytesBefore, bytesAfter: tmp.size };
      });
    } catch (error) {
      if (!installed) {
        await tmp.close().catch(() => {});
        await this.#storage.remove(LOG_TMP_FILE).catch(() => {});
      }
      throw error;
    }
  }

  /**
   * Runs `section` with the log to itself (no append can start), then installs a new,
   * empty log that starts with `header` and continues at `header.seq`. `section` does what
   * must happen between writing the new log and renaming it into place (replaceWith
   * writes the snapshot there). The new log is written first as kvstore.aof.tmp, so a
   * crash between the two renames leaves it for recovery to finish the job.
   */
  replace(header: LogHeader, section: () => Promise<void>): Promise<void> {
    return this.#lock.run(async () => {
      const tmp = await this.#storage.openWriter(LOG_TMP_FILE, "create");
      let installed = false;
      // Once the section has put the new snapshot in place, kvstore.rdb no longer pairs
      // with kvstore.aof, only with kvstore.aof.tmp: from then on the new log must be
      // installed, or at least kept for recovery to install, never removed.
      let snapshotInstalled = false;
      try {
        await tmp.append(encodeLogStart(this.#encoder, header));
        await tmp.sync();
        try {
          await section();
        } catch (error) {
          if (!(error instanceof SnapshotInstalledError)) throw error;
          // The directory's fsync is retried after the log's rename, below.
          this.#lastError = `directory fsync failed: ${describeStorageError(error.cause)}`;
        }
        snapshotInstalled = true;
        this.#options.crash("mid-replace");
        await this.#storage.rename(LOG_TMP_FILE, LOG_FILE);
        installed = true;
      } finally {
        if (!installed) {
          await tmp.close().catch(() => {});
          if (!snapshotInstalled) await this.#storage.remove(LOG_TMP_FILE).catch(() => {});
        }
      }
      this.#lastError = null;
      await this.#syncDirAfterRename();
      await this.#syncChain;
      const old = this.#file;
      this.#file = tmp;
      this.#end = tmp.size;
      this.#header = header;
      this.#lastSeq = header.seq;
      this.#lastBatch = null;
      this.#truncatePending = null;
      this.#dirty = false;
      await old?.close().catch(() => {});
    });
  }

  /** Syncs and closes the file. Appends after this fail. */
  close(): Promise<void> {
    return this.#lock.run(async () => {
      const file = this.#file;
      if (file === null) return;
      await this.#syncChain;
      this.#file = null;
      try {
        await this.#syncFile(file);
      } finally {
        await file.close();
      }
    });
  }

  #open(): FileWriter {
    if (this.#file === null) throw new KvError("UNAVAILABLE", "log: Cannot write: the log is closed");
    return this.#file;
  }

  /** Cuts a failed append back to `offset`, durably if it can (else the next append
   * retries), and returns the error for its writers. */
  async #failAppend(file: FileWriter, offset: number, error: unknown, what: string): Promise<KvError> {
    const detail = describeStorageError(error);
    this.#lastError = `append failed: ${detail}`;
    this.#truncatePending = offset;
    try {
      await this.#finishPendingTruncate(file, 0);
    } catch { /* #lastError says why; every append retries it first */ }
    return new KvError(
      "UNAVAILABLE",
      `log: Cannot append ${what} to ${this.path}: ${detail}. Nothing was applied; reads go on, and writes ` +
        `succeed again once the disk has room and works`,
    );
  }

  /** Cuts the end of a failed append off and fsyncs the file, if that is pending; throws
   * the error for the `count` writes that must wait when it cannot. Truncating to the
   * same size again is harmless, so a retry starts over. */
  async #finishPendingTruncate(file: FileWriter, count: number): Promise<void> {
    if (this.#truncatePending === null) return;
    try {
      await file.truncate(this.#truncatePending);
    } catch (error) {
      const detail = describeStorageError(error);
      this.#lastError = `cut-back failed: ${detail}`;
      throw new KvError(
        "UNAVAILABLE",
        `log: Cannot append ${writes(count)} to ${this.path}: the end of an earlier ` +
          `failed append cannot be cut off (${detail}). Nothing was applied`,
      );
    }
    try {
      await this.#syncFile(file);
    } catch (error) {
      const detail = describeStorageError(error);
      this.#lastError = `cut-back not durable: ${detail}`;
      throw new KvError(
        "UNAVAILABLE",
        `log: Cannot append ${writes(count)} to ${this.path}: an earlier failed append was cut off, but the cut ` +
          `cannot be made durable (fsync: ${detail}). Nothing was applied; writes succeed again once an fsync does`,
      );
    }
    this.#truncatePending = null;
  }

  /** Reads the first record at the cut point back and checks it continues `from.seq`:
   * the cut must keep exactly the records after the snapshot. */
  async #checkCutPoint(from: { offset: number; seq: number }, end: number): Promise<void> {
    if (from.offset === end) return;
    const reader = await this.#storage.openReader(LOG_FILE);
    try {
      // Every log record starts with its type byte and its seq.
      const input = new ByteReader(await reader.readAt(from.offset + FRAME_HEADER_BYTES, 9));
      const type = input.u8();
      const seq = input.u53();
      const expected = type === RECORD_HISTORY ? from.seq : from.seq + 1;
      if (seq !== expected) {
        throw new Error(`log: Cannot cut at offset ${from.offset}: seq ${seq} is there, not ${expected}`);
      }
    } finally {
      await reader.close();
    }
  }

  /** Copies the log's bytes from `start` to `end` into `into`, fsyncing it whenever
   * `fsyncIntervalBytes` were copied since the last fsync. */
  async #copy(start: number, end: number, into: FileWriter, fsyncIntervalBytes: number): Promise<void> {
    if (start >= end) return;
    const reader = await this.#storage.openReader(LOG_FILE);
    try {
      let unsyncedBytes = 0;
      for (let at = start; at < end;) {
        const bytes = await reader.readAt(at, Math.min(this.#options.copyChunkBytes, end - at));
        if (bytes.length === 0) throw new Error(`log: Cannot copy the log: it ends at ${at}, before ${end}`);
        await into.append(bytes);
        at += bytes.length;
        unsyncedBytes += bytes.length;
        if (unsyncedBytes >= fsyncIntervalBytes) {
          await into.sync();
          unsyncedBytes = 0;
        }
      }
    } finally {
      await reader.close();
    }
  }
}

/** "1 write", "3 writes". */
function writes(count: number): string {
  return `${count} write${count === 1 ? "" : "s"}`;
}
