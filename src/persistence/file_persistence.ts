/**
 * File-backed persistence: kvstore.rdb (snapshot) and kvstore.aof (log) in the data
 * directory, behind the {@linkcode Persistence} seam the node and replication use.
 *
 * Lifecycle:
 *
 *   recover ──> serve: log.append per batch, sync once a second (everysec),
 *               snapshot every interval / on demand / at shutdown, each followed by a
 *               cut of the log to the records after the snapshot's seq
 *          ──> startHistory (a promoted replica), replaceWith (after a full resync)
 *          ──> close
 *
 * Snapshots and replacements take turns (one at a time); a replacement makes a running
 * snapshot give up at its next chunk, since the dataset it walks is being replaced. Many
 * snapshot requests arriving while one runs share the one queued after it.
 *
 * @module
 */

import {
  FRAME_PAYLOAD_BYTES_MAX,
  LOAD_PROGRESS_INTERVAL_MS,
  LOG_FRAME_TARGET_BYTES,
  PERSISTENCE_READ_CHUNK_BYTES,
  SNAPSHOT_CHUNK_BYTES,
  SNAPSHOT_FSYNC_INTERVAL_BYTES,
} from "../config/limits.ts";
import { KvError } from "../errors.ts";
import type { Logger } from "../logging/logger.ts";
import type { Store } from "../store/store.ts";
import type { CrashHook } from "./crashpoints.ts";
import { NO_CRASH } from "./crashpoints.ts";
import { FileLog, type FsyncPolicy } from "./file_log.ts";
import { LOG_FILE } from "./log_format.ts";
import { Mutex } from "./mutex.ts";
import { type History, newReplid, type Persistence } from "./persistence.ts";
import { recover } from "./recovery.ts";
import {
  SNAPSHOT_FILE,
  SnapshotAbandoned,
  type SnapshotSource,
  type SnapshotWritten,
  writeSnapshotFile,
} from "./snapshot_format.ts";
import { describeStorageError, type Storage } from "./storage.ts";

/** Sizes the persistence code works in; the defaults are in src/config/limits.ts. */
export interface PersistenceSizes {
  readonly snapshotChunkBytes: number;
  readonly fsyncIntervalBytes: number;
  readonly logFrameTargetBytes: number;
  readonly readChunkBytes: number;
  readonly framePayloadBytesMax: number;
  readonly progressIntervalMs: number;
}

export const DEFAULT_PERSISTENCE_SIZES: PersistenceSizes = {
  snapshotChunkBytes: SNAPSHOT_CHUNK_BYTES,
  fsyncIntervalBytes: SNAPSHOT_FSYNC_INTERVAL_BYTES,
  logFrameTargetBytes: LOG_FRAME_TARGET_BYTES,
  readChunkBytes: PERSISTENCE_READ_CHUNK_BYTES,
  framePayloadBytesMax: FRAME_PAYLOAD_BYTES_MAX,
  progressIntervalMs: LOAD_PROGRESS_INTERVAL_MS,
};

export interface FilePersistenceOptions {
  readonly storage: Storage;
  /** The data directory as the operator named it (messages, the repair command). */
  readonly dataDir: string;
  readonly fsync: FsyncPolicy;
  readonly logger: Logger;
  /** Wall-clock unix ms. */
  readonly clock: () => number;
  readonly crash?: CrashHook;
  readonly newId?: () => string;
  readonly sizes?: Partial<PersistenceSizes>;
}

/** What one snapshot wrote. */
export interface SnapshotSummary {
  readonly path: string;
  /** The seq it began at: the log after it makes the snapshot exact. */
  readonly seq: number;
  /** The committed seq when the walk over the dataset ended. */
  readonly seqEnd: number;
  readonly keys: number;
  readonly bytes: number;
  readonly createdAtMs: number;
  readonly durationMs: number;
  readonly logBytesBefore: number;
  /** The log's size after it was cut; null when the cut failed (the log stays whole). */
  readonly logBytesAfter: number | null;
}

/** What Info reports about persistence. */
export interface PersistenceStatus {
  readonly fsync: FsyncPolicy;
  readonly logPath: string;
  readonly logBytes: number;
  /** The seq the log continues from (its header). */
  readonly logBaseSeq: number;
  readonly logLastSeq: number;
  /** The last append or fsync failure of the log, "" when the last one succeeded. */
  readonly logError: string;
  readonly snapshotPath: string;
  readonly snapshotInProgress: boolean;
  /** The last GOOD snapshot, written or loaded at start (the one kvstore.rdb holds): when
   * it began (unix ms; 0 for none), how long it took, its keys, bytes and seq. A snapshot
   * that failed since changes none of these; lastSnapshotStatus says it failed. */
  readonly lastSnapshotAtMs: number;
  /** How the last snapshot attempt ended: "ok", "none" (none yet), or, when it did not
   * succeed, "failed at <ISO time>: <why>" or "abandoned at <ISO time>: <why>" (given up:
   * the node shut down, the dataset was replaced). */
  readonly lastSnapshotStatus: string;
  readonly lastSnapshotDurationMs: number;
  readonly lastSnapshotKeys: number;
  readonly lastSnapshotBytes: number;
  /** The seq the last good snapshot began at. */
  readonly lastSnapshotSeq: number;
  readonly loadDurationMs: number;
}

export class FilePersistence implements Persistence {
  readonly log: FileLog;
  #options: FilePersistenceOptions;
  #sizes: PersistenceSizes;
  #crash: CrashHook;
  #newId: () => string;
  #replid = "";
  /** Snapshots and replacements, one at a time. */
  #turns = new Mutex();
  /** A snapshot waiting for its turn, which later requests join. */
  #queuedSnapshot: Promise<SnapshotSummary> | null = null;
  #snapshotInProgress = false;
  /** Set while a replacement or close waits: a running snapshot gives up. */
  #abandonReason: string | null = null;
  /** The last good snapshot, and the status of the last attempt (see PersistenceStatus). */
  #lastSnapshot = { atMs: 0, status: "none", durationMs: 0, keys: 0, bytes: 0, seq: 0 };
  /** The store the files hold, and its generation then (see Store.generation). A clear()
   * since then, without the replaceWith that ends a full resync, means the store is
   * being refilled: it describes no point of any history and must not be snapshotted. */
  #heldStore: { store: Store; generation: number } | null = null;
  #loadDurationMs = 0;

  /** Called when a snapshot ends, with how ("ok", "abandoned" or "failed") and its
   * duration in ms (metrics). */
  onSnapshot: ((outcome: "ok" | "abandoned" | "failed", durationMs: number) => void) | null = null;

  constructor(options: FilePersistenceOptions) {
    this.#options = options;
    this.#sizes = { ...DEFAULT_PERSISTENCE_SIZES, ...options.sizes };
    this.#crash = options.crash ?? NO_CRASH;
    this.#newId = options.newId ?? newReplid;
    this.log = new FileLog(options.storage, {
      policy: options.fsync,
      frameTargetBytes: this.#sizes.logFrameTargetBytes,
      copyChunkBytes: this.#sizes.readChunkBytes,
      copyFsyncIntervalBytes: this.#sizes.fsyncIntervalBytes,
      crash: this.#crash,
    });
  }

  /** The replid of the history the files continue. */
  get replid(): string {
    return this.#replid;
  }

  async recover(store: Store): Promise<History> {
    const { storage, logger } = this.#options;
    const recovered = await recover(store, {
      storage,
      dataDir: this.#options.dataDir,
      logger,
      clock: this.#options.clock,
      progressIntervalMs: this.#sizes.progressIntervalMs,
      scanner: { readChunkBytes: this.#sizes.readChunkBytes, payloadBytesMax: this.#sizes.framePayloadBytesMax },
      newId: this.#newId,
    });
    this.log.attach(recovered.file!, recovered.logHeader, recovered.history.seq);
    this.#replid = recovered.history.replid;
    this.#heldStore = { store, generation: store.generation };
    this.#loadDurationMs = recovered.durationMs;
    if (recovered.snapshot !== null) {
      this.#lastSnapshot = {
        atMs: recovered.snapshot.header.createdAtMs,
        status: "ok",
        durationMs: 0,
        keys: recovered.snapshot.end.keys,
        bytes: recovered.snapshot.bytes,
        seq: recovered.snapshot.header.seq,
      };
    }
    logger.info("Loaded the dataset", {
      keys: store.size,
      snapshotKeys: recovered.keysLoaded,
      recordsReplayed: recovered.recordsReplayed,
      seq: recovered.history.seq,
      replid: recovered.history.replid,
      logBytes: this.log.size,
      seconds: Math.round(recovered.durationMs / 10) / 100,
    });
    return recovered.history;
  }

  async startHistory(history: History): Promise<void> {
    if (history.seq !== this.log.lastSeq) {
      throw new KvError(
        "INTERNAL",
        `persistence: Cannot start history ${history.replid} after seq ${history.seq}: the log ends at seq ` +
          `${this.log.lastSeq}`,
      );
    }
    await this.log.appendHistory(history.replid, () => this.#replid = history.replid);
    this.#options.logger.info("A new history begins", { replid: history.replid, seq: history.seq });
  }

  /** Writes `store` as the snapshot at `history` and an empty log continuing it, so the
   * files hold exactly that; crash-safe (see FileLog.replace and recovery). */
  async replaceWith(store: Store, history: History): Promise<void> {
    this.#abandonReason = "the dataset is being replaced";
    try {
      await this.#turns.run(async () => {
        this.#abandonReason = null;
        const startedMs = this.#options.clock();
        const logHeader = {
          logId: this.#newId(),
          parentLogId: "",
          replid: history.replid,
          seq: history.seq,
          createdAtMs: startedMs,
        };
        let written: SnapshotWritten | null = null;
        try {
          await this.log.replace(logHeader, async () => {
            written = await writeSnapshotFile(
              this.#options.storage,
              { store, committedSeq: history.seq },
              { logId: logHeader.logId, replid: history.replid, seq: history.seq, createdAtMs: startedMs },
              {
                chunkBytes: this.#sizes.snapshotChunkBytes,
                fsyncIntervalBytes: this.#sizes.fsyncIntervalBytes,
                crash: this.#crash,
              },
            );
          });
        } catch (error) {
          if (error instanceof KvError) throw error;
          throw new KvError(
            "UNAVAILABLE",
            `persistence: Cannot replace the data files in ${this.#options.storage.location}: ` +
              `${describeStorageError(error)}; the files still hold the dataset as it was before`,
          );
        }
        this.#replid = history.replid;
        this.#heldStore = { store, generation: store.generation };
        const done = written as SnapshotWritten | null;
        this.#lastSnapshot = {
          atMs: startedMs,
          status: "ok",
          durationMs: this.#options.clock() - startedMs,
          keys: done?.keys ?? 0,
          bytes: done?.bytes ?? 0,
          seq: history.seq,
        };
        this.#options.logger.info("Replaced the data files", {
          keys: store.size,
          replid: history.replid,
          seq: history.seq,
        });
      });
    } finally {
      this.#abandonReason = null;
    }
  }

  /**
   * Takes a snapshot of `source` and then cuts the log. If one is running, waits for it
   * and takes a fresh one (joining a request already waiting), so the snapshot holds
   * every write committed before the call. Rejects with a KvError when the snapshot
   * could not be written (the previous snapshot and the whole log are still in place).
   */
  snapshot(source: SnapshotSource): Promise<SnapshotSummary> {
    if (this.#queuedSnapshot !== null) return this.#queuedSnapshot;
    const queued = this.#turns.run(() => {
      if (this.#queuedSnapshot === queued) this.#queuedSnapshot = null;
      return this.#takeSnapshot(source);
    });
    this.#queuedSnapshot = queued;
    return queued;
  }

  /** Whether a snapshot is being written or waits for its turn. */
  get snapshotBusy(): boolean {
    return this.#snapshotInProgress || this.#queuedSnapshot !== null;
  }

  /** The everysec tick: syncs the log unless a sync still runs (then it resolves false
   * at once, like Redis, which lets a slow fsync finish rather than queue another). */
  async syncLog(): Promise<boolean> {
    if (this.log.syncing) return false;
    await this.log.sync();
    return true;
  }

  status(): PersistenceStatus {
    const { storage } = this.#options;
    let logBaseSeq = 0;
    try {
      logBaseSeq = this.log.header.seq;
    } catch { /* not recovered yet */ }
    return {
      fsync: this.log.policy,
      logPath: storage.pathOf(LOG_FILE),
      logBytes: this.log.size,
      logBaseSeq,
      logLastSeq: this.log.lastSeq,
      logError: this.log.lastError ?? "",
      snapshotPath: storage.pathOf(SNAPSHOT_FILE),
      snapshotInProgress: this.#snapshotInProgress,
      lastSnapshotAtMs: this.#lastSnapshot.atMs,
      lastSnapshotStatus: this.#lastSnapshot.status,
      lastSnapshotDurationMs: this.#lastSnapshot.durationMs,
      lastSnapshotKeys: this.#lastSnapshot.keys,
      lastSnapshotBytes: this.#lastSnapshot.bytes,
      lastSnapshotSeq: this.#lastSnapshot.seq,
      loadDurationMs: this.#loadDurationMs,
    };
  }

  /** Lets a running snapshot give up, then syncs and closes the log. */
  async close(): Promise<void> {
    this.#abandonReason = "the node is shutting down";
    await this.#turns.run(() => this.log.close());
  }

  async #takeSnapshot(source: SnapshotSource): Promise<SnapshotSummary> {
    const { storage, logger, clock } = this.#options;
    const startedMs = clock();
    const store = source.store;
    const generation = store.generation;
    const abandoned = () =>
      this.#abandonReason ?? (store.generation !== generation ? "the dataset was replaced while it was written" : null);
    this.#snapshotInProgress = true;
    try {
      const held = this.#heldStore;
      if (held !== null && held.store === store && held.generation !== generation) {
        throw new SnapshotAbandoned("the dataset is being replaced (a full resync); snapshots wait until it is");
      }
      // These four are read in one step, so they describe one point of the history: the
      // records after `seq` start at `offset`, under `replid`, in the log `logId`.
      const seq = source.committedSeq;
      const offset = this.log.offsetAfter(seq);
      const replid = this.#replid;
      const logId = this.log.header.logId;
      const written = await writeSnapshotFile(storage, source, { logId, replid, seq, createdAtMs: startedMs }, {
        chunkBytes: this.#sizes.snapshotChunkBytes,
        fsyncIntervalBytes: this.#sizes.fsyncIntervalBytes,
        crash: this.#crash,
        abandoned,
        beforeSeal: async () => {
          const reason = abandoned();
          if (reason !== null) throw new SnapshotAbandoned(reason);
          // The snapshot may hold writes up to seqEnd; the log must keep them through a
          // power cut, or the snapshot could never be made exact again.
          await this.log.sync();
        },
      });
      this.#crash("before-log-cut");
      const logBytesBefore = this.log.size;
      let logBytesAfter: number | null = null;
      try {
        const cut = await this.log.cut({ offset, seq }, {
          logId: this.#newId(),
          parentLogId: logId,
          replid,
          seq,
          createdAtMs: clock(),
        });
        logBytesAfter = cut.bytesAfter;
      } catch (error) {
        logger.error("Could not cut the log after the snapshot; it stays whole and is cut after the next one", {
          error: describeStorageError(error),
        });
      }
      const durationMs = clock() - startedMs;
      this.#lastSnapshot = { atMs: startedMs, status: "ok", durationMs, keys: written.keys, bytes: written.bytes, seq };
      this.onSnapshot?.("ok", durationMs);
      logger.info("Snapshot written", {
        path: storage.pathOf(SNAPSHOT_FILE),
        keys: written.keys,
        bytes: written.bytes,
        seq,
        seqEnd: written.seqEnd,
        seconds: Math.round(durationMs / 10) / 100,
        logBytesBefore,
        logBytesAfter: logBytesAfter ?? undefined,
      });
      return {
        path: storage.pathOf(SNAPSHOT_FILE),
        seq,
        seqEnd: written.seqEnd,
        keys: written.keys,
        bytes: written.bytes,
        createdAtMs: startedMs,
        durationMs,
        logBytesBefore,
        logBytesAfter,
      };
    } catch (error) {
      const detail = error instanceof SnapshotAbandoned ? error.message : describeStorageError(error);
      // The good snapshot's figures stay: kvstore.rdb still holds it.
      const outcome = error instanceof SnapshotAbandoned ? "abandoned" : "failed";
      this.#lastSnapshot = {
        ...this.#lastSnapshot,
        status: `${outcome} at ${new Date(startedMs).toISOString()}: ${detail}`,
      };
      this.onSnapshot?.(error instanceof SnapshotAbandoned ? "abandoned" : "failed", clock() - startedMs);
      if (error instanceof SnapshotAbandoned) {
        logger.warn("Snapshot given up; the previous snapshot and the whole log are still in place", {
          reason: detail,
        });
      } else {
        logger.error("Snapshot failed; the previous snapshot and the whole log are still in place", { error: detail });
      }
      throw new KvError("UNAVAILABLE", `snapshot: Cannot write ${storage.pathOf(SNAPSHOT_FILE)}: ${detail}`);
    } finally {
      this.#snapshotInProgress = false;
    }
  }
}
