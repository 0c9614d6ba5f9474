/**
 * A node's durability wiring: the file persistence it runs on, the timers that drive it
 * (the everysec fsync, periodic snapshots), the removal of keys whose deadline passed
 * while the node was down, the Snapshot and Digest rpcs, and the persistence fields of
 * Info. The formats and the logic live in src/persistence; this is the shell around
 * them.
 *
 * @module
 */

import {
  EXPIRED_AFTER_LOAD_KEYS_PER_STEP,
  LOG_REWRITE_RETRY_MS,
  LOG_SIZE_CHECK_INTERVAL_MS,
  LOG_SYNC_INTERVAL_MS,
} from "../config/limits.ts";
import type { ServerConfig } from "../config/server_flags.ts";
import type { Logger } from "../logging/logger.ts";
import { stderrSink } from "../logging/stderr.ts";
import { type CrashHook, crashHookFromSpec, NO_CRASH } from "../persistence/crashpoints.ts";
import { DenoStorage } from "../persistence/deno_storage.ts";
import { datasetDigest } from "../persistence/digest.ts";
import { FilePersistence } from "../persistence/file_persistence.ts";
import { KvError } from "../errors.ts";
import type { WriteStaging } from "../store/staging.ts";
import type {
  DigestRequest,
  DigestResponse,
  InfoResponse,
  SnapshotRequest,
  SnapshotResponse,
} from "../transport/messages.ts";
import type { Handlers } from "./service.ts";
import { unaryHandler } from "./status.ts";
import type { WritePipeline } from "./write_pipeline.ts";

/** The environment variable that names a crash point (see src/persistence/crashpoints.ts). */
export const CRASHPOINT_ENV = "KVSTORE_CRASHPOINT";

/** The crash hook KVSTORE_CRASHPOINT asks for: at the named step the process says so on
 * stderr and kills itself with SIGKILL (nothing flushed, nothing closed, like a crash).
 * Refuses a malformed value with a KvError, so the node does not start. */
export function crashHookFromEnvironment(): CrashHook {
  const spec = Deno.env.get(CRASHPOINT_ENV);
  if (spec === undefined || spec === "") return NO_CRASH;
  try {
    return crashHookFromSpec(spec, (point) => {
      stderrSink(`kvstore: crash point ${point} reached (${CRASHPOINT_ENV}): exiting abruptly`);
      Deno.kill(Deno.pid, "SIGKILL");
    });
  } catch (error) {
    throw new KvError("FAILED_PRECONDITION", `server: ${(error as Error).message}`);
  }
}

/** The persistence a node runs on: kvstore.rdb and kvstore.aof in its data directory. */
export function openFilePersistence(config: ServerConfig, logger: Logger): FilePersistence {
  return new FilePersistence({
    storage: new DenoStorage(config.dataDir),
    dataDir: config.dataDir,
    fsync: config.appendfsync,
    logger: logger.child("persistence"),
    clock: Date.now,
    crash: crashHookFromEnvironment(),
  });
}

/** The longest delay a timer takes, in ms (2^31 - 1). Deno, like Node, fires a timer
 * with a longer delay after 1 ms instead, so a longer period is waited out in steps. */
export const TIMER_DELAY_MS_MAX = 2 ** 31 - 1;

/** Whether a log of `logBytes` should be cut by a snapshot now, whatever the snapshot
 * interval: once it passes `rewriteBytesMin` (--log-rewrite-min-bytes; 0: never) and
 * the last snapshot's size, replaying it at the next start would cost more than writing
 * a snapshot does, as Redis's AOF rewrite triggers reckon. */
export function logOutgrewSnapshot(logBytes: number, lastSnapshotBytes: number, rewriteBytesMin: number): boolean {
  return rewriteBytesMin > 0 && logBytes >= Math.max(rewriteBytesMin, lastSnapshotBytes);
}

/** The timers persistence needs: fsync once a second under everysec, a snapshot every
 * interval when the data changed since the last one, and one whenever the log outgrows
 * the last snapshot (see logOutgrewSnapshot), so the log stays bounded with any interval. */
export class DurabilityTimers {
  #timers: ReturnType<typeof setInterval>[] = [];
  #snapshotTimer: ReturnType<typeof setTimeout> | undefined = undefined;
  #stopped = false;
  #persistence: FilePersistence;
  #staging: WriteStaging;
  #logger: Logger;
  #syncFailing = false;
  #rewriteBytesMin = 0;
  /** When a snapshot the log's size asks for may be tried again after one failed. */
  #rewriteRetryAtMs = 0;

  constructor(persistence: FilePersistence, staging: WriteStaging, logger: Logger) {
    this.#persistence = persistence;
    this.#staging = staging;
    this.#logger = logger;
  }

  start(config: ServerConfig): void {
    this.#stopped = false;
    if (config.appendfsync === "everysec") {
      this.#timers.push(setInterval(() => this.#sync(), LOG_SYNC_INTERVAL_MS));
    }
    this.#rewriteBytesMin = config.logRewriteBytesMin;
    if (this.#rewriteBytesMin > 0) {
      this.#timers.push(setInterval(() => this.#snapshotIfLogOutgrown(), LOG_SIZE_CHECK_INTERVAL_MS));
    }
    if (config.snapshotIntervalSeconds > 0) this.#scheduleSnapshot(config.snapshotIntervalSeconds * 1000);
  }

  stop(): void {
    this.#stopped = true;
    for (const timer of this.#timers) clearInterval(timer);
    this.#timers = [];
    clearTimeout(this.#snapshotTimer);
  }

  /** Whether writes were committed since the last good snapshot began. */
  changedSinceSnapshot(): boolean {
    const status = this.#persistence.status();
    return status.lastSnapshotStatus.startsWith("failed") || this.#staging.committedSeq !== status.lastSnapshotSeq;
  }

  #sync(): void {
    this.#persistence.syncLog().then(() => {
      if (this.#syncFailing) this.#logger.info("The log's fsync works again");
      this.#syncFailing = false;
    }, (error) => {
      // One line when fsync starts failing, not one a second.
      if (!this.#syncFailing) this.#logger.error("The log's fsync failed", { error: String(error) });
      this.#syncFailing = true;
    });
  }

  /** Snapshots (if the data changed) every `intervalMs`. An interval longer than a timer
   * can wait (--snapshot-interval-seconds goes up to a year, a timer to about 24.8 days)
   * is waited in steps of at most TIMER_DELAY_MS_MAX, rather than firing every
   * millisecond. */
  #scheduleSnapshot(intervalMs: number, remainingMs = intervalMs): void {
    if (this.#stopped) return;
    const stepMs = Math.min(remainingMs, TIMER_DELAY_MS_MAX);
    this.#snapshotTimer = setTimeout(() => {
      if (remainingMs > stepMs) return this.#scheduleSnapshot(intervalMs, remainingMs - stepMs);
      this.#snapshotIfChanged();
      this.#scheduleSnapshot(intervalMs);
    }, stepMs);
  }

  /** Takes a snapshot, which cuts the log, once the log outgrew the last one. */
  #snapshotIfLogOutgrown(): void {
    if (this.#persistence.snapshotBusy || Date.now() < this.#rewriteRetryAtMs) return;
    const status = this.#persistence.status();
    if (!logOutgrewSnapshot(status.logBytes, status.lastSnapshotBytes, this.#rewriteBytesMin)) return;
    this.#logger.info("The log outgrew the last snapshot: taking a snapshot to cut it", {
      logBytes: status.logBytes,
      snapshotBytes: status.lastSnapshotBytes,
    });
    // A failure is logged by the persistence and shown in Info; it is retried later, not
    // at every check.
    this.#persistence.snapshot(this.#staging).catch(() => this.#rewriteRetryAtMs = Date.now() + LOG_REWRITE_RETRY_MS);
  }

  #snapshotIfChanged(): void {
    if (this.#persistence.snapshotBusy || !this.changedSinceSnapshot()) return;
    // A failure is logged by the persistence and shown in Info; the next tick retries.
    this.#persistence.snapshot(this.#staging).catch(() => {});
  }
}

/**
 * On a master after start-up: stages the deletion of every key whose deadline passed
 * while the node was down, through the write path, so the log and the replicas hear of
 * it. Walks the dataset in steps, yielding between them and never letting more than a
 * step's worth of deletions wait uncommitted. Stops early if the node stops being a
 * master. Resolves with the number of deletions staged.
 */
export async function deleteKeysExpiredWhileDown(
  pipeline: WritePipeline,
  options: { clock: () => number; isMaster: () => boolean; stepKeys?: number },
): Promise<number> {
  const stepKeys = options.stepKeys ?? EXPIRED_AFTER_LOAD_KEYS_PER_STEP;
  const staging = pipeline.staging;
  const entries = staging.store.entries();
  let deleted = 0;
  while (options.isMaster()) {
    const nowMs = options.clock();
    let finished = false;
    for (let examined = 0; examined < stepKeys; examined++) {
      const next = entries.next();
      if (next.done === true) {
        finished = true;
        break;
      }
      const [key, entry] = next.value;
      if (entry.expiresAtMs !== null && entry.expiresAtMs <= nowMs && staging.expireDue(key, nowMs) !== null) {
        deleted++;
      }
    }
    pipeline.flushSoon();
    if (finished) break;
    do {
      await new Promise((resolve) => setTimeout(resolve, 1));
    } while (staging.pendingCount > stepKeys);
  }
  return deleted;
}

/** The Snapshot and Digest rpcs. */
export function durabilityHandlers(
  persistence: FilePersistence,
  staging: WriteStaging,
  logger: Logger,
): Handlers {
  return {
    Snapshot: unaryHandler<SnapshotRequest, SnapshotResponse>("Snapshot", logger, async () => {
      const summary = await persistence.snapshot(staging);
      return {
        path: summary.path,
        seq: summary.seq,
        seq_end: summary.seqEnd,
        keys: summary.keys,
        bytes: summary.bytes,
        duration_ms: summary.durationMs,
        created_at_ms: summary.createdAtMs,
        log_bytes_before: summary.logBytesBefore,
        log_bytes_after: summary.logBytesAfter ?? summary.logBytesBefore,
        log_cut: summary.logBytesAfter !== null,
      };
    }),
    Digest: unaryHandler<DigestRequest, DigestResponse>("Digest", logger, () => {
      const { digest, keys } = datasetDigest(staging.store, Date.now());
      return { digest, keys, seq: staging.committedSeq, replid: persistence.replid };
    }),
  };
}

/** The persistence fields of Info (field numbers 20-39). */
export function persistenceInfo(
  persistence: FilePersistence,
  staging: WriteStaging,
  config: ServerConfig,
): Partial<InfoResponse> {
  const status = persistence.status();
  return {
    appendfsync: status.fsync,
    log_bytes: status.logBytes,
    log_base_seq: status.logBaseSeq,
    log_error: status.logError,
    last_snapshot_at_ms: status.lastSnapshotAtMs,
    last_snapshot_status: status.lastSnapshotStatus,
    last_snapshot_duration_ms: status.lastSnapshotDurationMs,
    last_snapshot_keys: status.lastSnapshotKeys,
    last_snapshot_bytes: status.lastSnapshotBytes,
    last_snapshot_seq: status.lastSnapshotSeq,
    snapshot_in_progress: status.snapshotInProgress,
    changes_since_snapshot: Math.max(0, staging.committedSeq - status.lastSnapshotSeq),
    snapshot_interval_seconds: config.snapshotIntervalSeconds,
    load_duration_ms: status.loadDurationMs,
    data_dir: config.dataDir,
  };
}
