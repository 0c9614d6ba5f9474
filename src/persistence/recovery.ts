/**
 * Recovery: rebuilds the dataset from kvstore.rdb and kvstore.aof at start-up, and
 * leaves the log open for appending.
 *
 * Steps:
 *
 * 1. Remove kvstore.rdb.tmp: a snapshot that never finished is worth nothing.
 * 2. Load kvstore.rdb if it exists, every frame verified (snapshot_format.ts).
 * 3. Pick the log. Normally kvstore.aof. If it does not belong to the snapshot and
 *    kvstore.aof.tmp is a log that does (a replacement of both files interrupted between
 *    its two renames), finish the replacement by renaming it into place.
 * 4. Check the pair: the log was cut from the log the snapshot was taken against (its
 *    parentLogId), or is that log; and it starts no later than the snapshot's seq, so no
 *    write in between is missing. Without a snapshot, the log must start at seq 0.
 * 5. Replay the log: every batch, in order, seqs without gaps; commands after the
 *    snapshot's seq are applied (the ones before it are already in it); HISTORY records
 *    name the replid from there on.
 * 6. Cut a torn tail off (one warning line), and check the log reached the snapshot's
 *    seqEnd, without which the fuzzy snapshot would not be made exact.
 * 7. With no log at all: start a new one, continuing the snapshot when there is one
 *    (with a warning: writes after it are gone; a snapshot that only the lost log could
 *    have made exact is first rewritten as loaded), else a new history at seq 0.
 *
 * Damage stops recovery with a {@linkcode DamagedFileError}; files that do not belong
 * together with a {@linkcode MismatchedFilesError}. Keys past their deadline are loaded
 * like any other: removing them is the master's decision, made through the write path.
 *
 * @module
 */

import { plural } from "../errors.ts";
import { SNAPSHOT_FSYNC_INTERVAL_BYTES } from "../config/limits.ts";
import type { Logger } from "../logging/logger.ts";
import type { Store } from "../store/store.ts";
import { ByteReader } from "./bytes.ts";
import { DamagedFileError, MismatchedFilesError } from "./damage.ts";
import { FrameEncoder, FrameScanner, type FrameScannerOptions } from "./frame.ts";
import { encodeLogStart, LOG_FILE, LOG_MAGIC, LOG_TMP_FILE, MAGIC_BYTES, readLog } from "./log_format.ts";
import type { History } from "./persistence.ts";
import { type LogHeader, readLogHeader } from "./records.ts";
import {
  readSnapshot,
  SNAPSHOT_FILE,
  SNAPSHOT_TMP_FILE,
  type SnapshotReadResult,
  writeSnapshotFile,
} from "./snapshot_format.ts";
import { NO_CRASH } from "./crashpoints.ts";
import type { FileWriter, Storage } from "./storage.ts";

export interface RecoveryOptions {
  readonly storage: Storage;
  /** The data directory as the operator named it, for messages and the repair command. */
  readonly dataDir: string;
  readonly logger: Logger;
  /** Wall-clock unix ms: progress timing and the creation time of new files. */
  readonly clock: () => number;
  /** Period of the progress lines of a long load, in ms. */
  readonly progressIntervalMs: number;
  readonly scanner: FrameScannerOptions;
  /** A new random id (replid, logId). */
  readonly newId: () => string;
  /** Check only: change no file (no torn tail cut, no log created, no replacement
   * finished, no temporary file removed) and open no writer. */
  readonly readOnly?: boolean;
}

export interface Recovered {
  /** Where the dataset ends: the replid in effect and the last seq. */
  readonly history: History;
  /** The log, open at its end (null when read only). */
  readonly file: FileWriter | null;
  readonly logHeader: LogHeader;
  readonly snapshot: SnapshotReadResult | null;
  readonly keysLoaded: number;
  readonly recordsReplayed: number;
  /** Bytes cut off the end of the log (a torn tail). */
  readonly tornBytes: number;
  readonly durationMs: number;
}

/** Loads the saved dataset into `store` (empty when called); see the module doc. */
export async function recover(store: Store, options: RecoveryOptions): Promise<Recovered> {
  const { storage, logger, clock } = options;
  const startedMs = clock();
  const progress = new Progress(logger, clock, options.progressIntervalMs, startedMs);
  const place = (name: string) => ({ path: storage.pathOf(name), dataDir: options.dataDir });
  const readOnly = options.readOnly === true;
  if (!readOnly) await storage.remove(SNAPSHOT_TMP_FILE);

  let snapshot: SnapshotReadResult | null = null;
  if (await storage.size(SNAPSHOT_FILE) !== null) {
    const reader = await storage.openReader(SNAPSHOT_FILE);
    try {
      snapshot = await readSnapshot(reader, place(SNAPSHOT_FILE), options.scanner, {
        onEntry: (key, entry) => store.apply({ kind: "set", key, value: entry.value, expiresAtMs: entry.expiresAtMs }),
        onProgress: (keys) => progress.update(keys, 0),
      });
    } finally {
      await reader.close();
    }
  }
  const keysLoaded = store.size;

  // The log to read: kvstore.aof, unless an interrupted replacement left the right one
  // under its temporary name (a read-only check reads it there).
  let logName = LOG_FILE;
  if (snapshot !== null && await interruptedReplacement(storage, snapshot, options.scanner)) {
    if (readOnly) {
      logName = LOG_TMP_FILE;
    } else {
      await storage.rename(LOG_TMP_FILE, LOG_FILE);
      await storage.syncDir();
    }
    logger.warn("Finished a replacement of the data files that a crash interrupted", {
      log: storage.pathOf(LOG_FILE),
    });
  }

  if (await storage.size(logName) === null) {
    const header = newLogHeader(snapshot, options);
    if (snapshot !== null) {
      logger.warn(
        `${storage.pathOf(LOG_FILE)} is missing: starting from ${storage.pathOf(SNAPSHOT_FILE)} alone; ` +
          `writes after its seq ${snapshot.end.seqEnd} are not in it`,
      );
      if (!readOnly && snapshot.end.seqEnd !== snapshot.header.seq) {
        // The snapshot alone is a mix of the dataset between seq and seqEnd, which only
        // the lost log could make exact. Make what was loaded the new starting point:
        // a snapshot at seqEnd, which the new log continues.
        await writeSnapshotFile(
          storage,
          { store, committedSeq: header.seq },
          { logId: header.logId, replid: header.replid, seq: header.seq, createdAtMs: options.clock() },
          {
            chunkBytes: options.scanner.readChunkBytes,
            fsyncIntervalBytes: SNAPSHOT_FSYNC_INTERVAL_BYTES,
            crash: NO_CRASH,
          },
        );
      }
    }
    const file = readOnly ? null : await createLog(storage, header);
    if (!readOnly) await storage.remove(LOG_TMP_FILE);
    return {
      history: { replid: header.replid, seq: header.seq },
      file,
      logHeader: header,
      snapshot,
      keysLoaded,
      recordsReplayed: 0,
      tornBytes: 0,
      durationMs: clock() - startedMs,
    };
  }

  const snapshotSeq = snapshot?.header.seq ?? 0;
  let replid = "";
  let lastSeq = 0;
  let recordsReplayed = 0;
  const reader = await storage.openReader(logName);
  let result;
  try {
    result = await readLog(reader, place(logName), options.scanner, {
      onHeader: (header) => {
        checkPair(header, snapshot, storage, options.dataDir);
        replid = header.replid;
        lastSeq = header.seq;
      },
      onBatch: (batch) => {
        for (const record of batch.records) {
          if (record.kind === "history") {
            if (record.seq !== lastSeq) {
              throw new DamagedFileError(
                "log",
                storage.pathOf(LOG_FILE),
                batch.offset,
                `a new history begins after seq ${record.seq}, but the log is at seq ${lastSeq}`,
                { dataDir: options.dataDir },
              );
            }
            replid = record.replid;
            continue;
          }
          if (record.seq !== lastSeq + 1) {
            throw new DamagedFileError(
              "log",
              storage.pathOf(LOG_FILE),
              batch.offset,
              `seq ${record.seq} follows seq ${lastSeq}: the log has a gap`,
              { dataDir: options.dataDir },
            );
          }
          lastSeq = record.seq;
          if (record.seq > snapshotSeq) {
            store.apply(record.command);
            recordsReplayed++;
          }
        }
        progress.update(keysLoaded, recordsReplayed);
      },
    });
  } finally {
    await reader.close();
  }

  let tornBytes = 0;
  if (result.torn !== null) {
    tornBytes = reader.size - result.torn.offset;
    logger.warn(
      `Cut a torn tail off ${storage.pathOf(LOG_FILE)}: ${
        plural(tornBytes, "byte")
      } from offset ${result.torn.offset} ` +
        `(${result.torn.detail}); the writer stopped in the middle of an append (or a power cut lost its end), ` +
        `and every complete batch before it is kept`,
      { lastSeq },
    );
  }
  if (snapshot !== null && lastSeq < snapshot.end.seqEnd) {
    throw new MismatchedFilesError(
      "log-ends-early",
      `${storage.pathOf(LOG_FILE)} ends at seq ${lastSeq}, but ${storage.pathOf(SNAPSHOT_FILE)} holds writes up to ` +
        `seq ${snapshot.end.seqEnd} that only the log can make exact`,
      options.dataDir,
    );
  }
  let file: FileWriter | null = null;
  if (!readOnly) {
    file = await storage.openWriter(LOG_FILE, "existing");
    if (result.torn !== null) {
      await file.truncate(result.torn.offset);
      await file.sync();
    }
    await storage.remove(LOG_TMP_FILE);
  }
  return {
    history: { replid, seq: lastSeq },
    file,
    logHeader: result.header,
    snapshot,
    keysLoaded,
    recordsReplayed,
    tornBytes,
    durationMs: clock() - startedMs,
  };
}

/** Refuses a log that does not continue `snapshot` (or, without one, the empty dataset). */
function checkPair(header: LogHeader, snapshot: SnapshotReadResult | null, storage: Storage, dataDir: string): void {
  const log = storage.pathOf(LOG_FILE);
  const rdb = storage.pathOf(SNAPSHOT_FILE);
  if (snapshot === null) {
    if (header.seq !== 0 || header.parentLogId !== "") {
      throw new MismatchedFilesError(
        "snapshot-missing",
        `${log} continues a snapshot at seq ${header.seq}, and ${rdb} is missing`,
        dataDir,
      );
    }
    return;
  }
  const taken = snapshot.header.logId;
  if (header.logId !== taken && header.parentLogId !== taken) {
    throw new MismatchedFilesError(
      "log-not-of-snapshot",
      `${rdb} was taken against log ${taken}, and ${log} is log ${header.logId}, cut from ` +
        `${header.parentLogId === "" ? "no other log" : `log ${header.parentLogId}`}: they do not belong together`,
      dataDir,
    );
  }
  if (header.seq > snapshot.header.seq) {
    throw new MismatchedFilesError(
      "log-ends-early",
      `${log} starts after seq ${header.seq}, but ${rdb} covers only up to seq ${snapshot.header.seq}: ` +
        `the writes in between are in neither file (is ${rdb} an older copy?)`,
      dataDir,
    );
  }
}

/** Whether kvstore.aof does not belong to the snapshot but kvstore.aof.tmp is the log the
 * snapshot was written with: a replacement of both files interrupted between renames. */
async function interruptedReplacement(
  storage: Storage,
  snapshot: SnapshotReadResult,
  scanner: FrameScannerOptions,
): Promise<boolean> {
  const tmp = await readHeaderOnly(storage, LOG_TMP_FILE, scanner);
  if (tmp === null || tmp.logId !== snapshot.header.logId) return false;
  const current = await readHeaderOnly(storage, LOG_FILE, scanner);
  return current === null || (current.logId !== tmp.logId && current.parentLogId !== tmp.logId);
}

/** The header of the log file `name`, or null when it is missing or unreadable. */
export async function readHeaderOnly(
  storage: Storage,
  name: string,
  scanner: FrameScannerOptions,
): Promise<LogHeader | null> {
  if (await storage.size(name) === null) return null;
  const reader = await storage.openReader(name);
  try {
    const magic = await reader.readAt(0, MAGIC_BYTES);
    if (magic.length !== MAGIC_BYTES || !magic.every((byte, i) => byte === LOG_MAGIC[i])) return null;
    const step = await new FrameScanner(reader, MAGIC_BYTES, scanner).next();
    if (step.kind !== "frame") return null;
    return readLogHeader(new ByteReader(step.payload));
  } catch {
    return null;
  } finally {
    await reader.close();
  }
}

function newLogHeader(snapshot: SnapshotReadResult | null, options: RecoveryOptions): LogHeader {
  const logId = options.newId();
  // A snapshot that is exact at its seq is continued as it is (the new log is its
  // child); one that is not is rewritten with the new log's id (see above).
  const exact = snapshot !== null && snapshot.end.seqEnd === snapshot.header.seq;
  return {
    logId,
    parentLogId: exact ? snapshot.header.logId : "",
    replid: snapshot?.header.replid ?? options.newId(),
    seq: snapshot?.end.seqEnd ?? 0,
    createdAtMs: options.clock(),
  };
}

/** Writes a new log holding only `header`, crash-safely, and returns it open at its end. */
export async function createLog(storage: Storage, header: LogHeader): Promise<FileWriter> {
  const file = await storage.openWriter(LOG_TMP_FILE, "create");
  try {
    await file.append(encodeLogStart(new FrameEncoder(1024), header));
    await file.sync();
    await storage.rename(LOG_TMP_FILE, LOG_FILE);
    await storage.syncDir();
    return file;
  } catch (error) {
    await file.close().catch(() => {});
    await storage.remove(LOG_TMP_FILE).catch(() => {});
    throw error;
  }
}

/** Logs a progress line at most once per interval while a load goes on. */
class Progress {
  #logger: Logger;
  #clock: () => number;
  #intervalMs: number;
  #startedMs: number;
  #lastMs: number;

  constructor(logger: Logger, clock: () => number, intervalMs: number, startedMs: number) {
    this.#logger = logger;
    this.#clock = clock;
    this.#intervalMs = intervalMs;
    this.#startedMs = startedMs;
    this.#lastMs = startedMs;
  }

  update(keysLoaded: number, recordsReplayed: number): void {
    const nowMs = this.#clock();
    if (nowMs - this.#lastMs < this.#intervalMs) return;
    this.#lastMs = nowMs;
    this.#logger.info("Loading the dataset", {
      keysLoaded,
      recordsReplayed,
      seconds: Math.round((nowMs - this.#startedMs) / 100) / 10,
    });
  }
}
