/**
 * `kvstore repair`: the offline repair of a data directory that start-up refused.
 *
 * Start-up never loads damaged files in part; it stops and names the damage. Repair
 * makes the files loadable by cutting the damage off, keeping everything before it,
 * and never destroys what it removes: each removed part is set aside in a file named
 * after it, for forensics or a manual rescue.
 *
 * | problem (start-up's message)              | what repair does                                         |
 * | ----------------------------------------- | -------------------------------------------------------- |
 * | log damaged at offset X                   | copies the log from the start of that batch to           |
 * |                                           | kvstore.aof.cut-TIME, then truncates the log there       |
 * | log header damaged                        | moves the log to kvstore.aof.damaged-TIME (the snapshot  |
 * |                                           | alone is loaded; without one, the dataset starts empty) |
 * | snapshot damaged at offset X              | moves it to kvstore.rdb.damaged-TIME and writes a new    |
 * |                                           | one with the entries of the intact frames before X       |
 * | snapshot missing, log continues one       | writes an empty snapshot the log continues               |
 * | log does not belong to the snapshot, or   | moves the log to kvstore.aof.unpaired-TIME; the snapshot |
 * | misses writes the snapshot needs          | alone is loaded                                          |
 *
 * It repeats check-and-fix until the directory loads (each fix removes one problem), then
 * reports the dataset it now holds: keys, last seq, replid and digest, so the operator can
 * compare with a replica. `check` mode only reports the first problem, changing nothing.
 *
 * @module
 */

import { plural } from "../errors.ts";
import {
  FRAME_PAYLOAD_BYTES_MAX,
  PERSISTENCE_READ_CHUNK_BYTES,
  REPAIR_FIXES_MAX,
  SNAPSHOT_FSYNC_INTERVAL_BYTES,
} from "../config/limits.ts";
import { Logger } from "../logging/logger.ts";
import { Store } from "../store/store.ts";
import { DamagedFileError, MismatchedFilesError } from "./damage.ts";
import { datasetDigest } from "./digest.ts";
import { LOG_FILE, LOG_TMP_FILE } from "./log_format.ts";
import { newReplid } from "./persistence.ts";
import { readHeaderOnly, recover } from "./recovery.ts";
import { readSnapshot, SNAPSHOT_FILE, type SnapshotSource, writeSnapshotFile } from "./snapshot_format.ts";
import type { SnapshotHeader } from "./records.ts";
import type { Storage } from "./storage.ts";
import { NO_CRASH } from "./crashpoints.ts";

export interface RepairOptions {
  readonly storage: Storage;
  readonly dataDir: string;
  /** Wall-clock unix ms: names the set-aside files. */
  readonly clock: () => number;
  /** Only report the first problem; change nothing. */
  readonly check?: boolean;
  /** Receives one line per finding and fix, as they happen. */
  readonly report: (line: string) => void;
}

export interface RepairResult {
  /** Problems found, in order ([] when the directory loaded as it was). */
  readonly problems: string[];
  /** Fixes made ([] in check mode). */
  readonly fixes: string[];
  /** The dataset the directory now loads to; null when check mode found a problem. */
  readonly dataset: { keys: number; seq: number; replid: string; digest: string } | null;
}

const SCANNER = { readChunkBytes: PERSISTENCE_READ_CHUNK_BYTES, payloadBytesMax: FRAME_PAYLOAD_BYTES_MAX };

/** Whether the directory holds a log or a snapshot. Repair refuses one that holds
 * neither: it is not a data directory (a mistyped --data-dir, or the working directory
 * by default), and recovery there would create a new, empty log. */
export async function holdsDataFiles(storage: Storage): Promise<boolean> {
  for (const name of [LOG_FILE, SNAPSHOT_FILE, LOG_TMP_FILE]) {
    if (await storage.size(name) !== null) return true;
  }
  return false;
}

/** Checks the directory and, unless `check`, repairs it; see the module doc. */
export async function repairDataDir(options: RepairOptions): Promise<RepairResult> {
  const problems: string[] = [];
  const fixes: string[] = [];
  for (let attempt = 0; attempt <= REPAIR_FIXES_MAX; attempt++) {
    const store = new Store();
    const warnings: string[] = [];
    const logger = new Logger({
      level: "warn",
      format: "text",
      sink: (line) => warnings.push(line.replace(/^\S+ WARN +\S+ /, "")),
    });
    try {
      const recovered = await recover(store, {
        storage: options.storage,
        dataDir: options.dataDir,
        logger,
        clock: options.clock,
        progressIntervalMs: Infinity,
        scanner: SCANNER,
        newId: newReplid,
        readOnly: options.check === true,
      });
      await recovered.file?.close();
      for (const warning of warnings) options.report(`Note: ${warning}`);
      const { digest, keys } = datasetDigest(store, options.clock());
      return {
        problems,
        fixes,
        dataset: { keys, seq: recovered.history.seq, replid: recovered.history.replid, digest },
      };
    } catch (error) {
      if (!(error instanceof DamagedFileError) && !(error instanceof MismatchedFilesError)) throw error;
      const problem = error.message.replace(/ Nothing was loaded\..*$/, "").replace(/^recovery: /, "");
      problems.push(problem);
      options.report(`Problem: ${problem}`);
      if (options.check === true) return { problems, fixes, dataset: null };
      const fix = error instanceof DamagedFileError
        ? await fixDamage(error, options)
        : await fixMismatch(error, options);
      fixes.push(fix);
      options.report(`Fixed: ${fix}`);
    }
  }
  throw new Error(
    `repair: Cannot repair ${JSON.stringify(options.dataDir)}: still failing after ${REPAIR_FIXES_MAX} fixes`,
  );
}

async function fixDamage(error: DamagedFileError, options: RepairOptions): Promise<string> {
  const { storage } = options;
  const stamp = timestamp(options.clock());
  if (error.file === "log") {
    if (error.cutOffset <= 8 || (await readHeaderOnly(storage, LOG_FILE, SCANNER)) === null) {
      const aside = `${LOG_FILE}.damaged-${stamp}`;
      await storage.rename(LOG_FILE, aside);
      await storage.syncDir();
      return `moved ${storage.pathOf(LOG_FILE)}, whose header is unreadable, to ${storage.pathOf(aside)}; ` +
        `the writes it held are not loaded`;
    }
    const size = (await storage.size(LOG_FILE)) ?? 0;
    const aside = `${LOG_FILE}.cut-${stamp}`;
    await copyRange(storage, LOG_FILE, error.cutOffset, size, aside);
    const log = await storage.openWriter(LOG_FILE, "existing");
    try {
      await log.truncate(error.cutOffset);
      await log.sync();
    } finally {
      await log.close();
    }
    return `cut ${storage.pathOf(LOG_FILE)} at offset ${error.cutOffset}, keeping the batches before it; ` +
      `the ${plural(size - error.cutOffset, "byte")} from there on are in ${storage.pathOf(aside)}`;
  }

  // A damaged snapshot: keep the entries of the frames before the damage.
  const salvaged = new Store();
  let header: SnapshotHeader | null = null;
  const reader = await storage.openReader(SNAPSHOT_FILE);
  try {
    await readSnapshot(reader, { path: storage.pathOf(SNAPSHOT_FILE), dataDir: options.dataDir }, SCANNER, {
      onHeader: (read) => header = read,
      onEntry: (key, entry) => salvaged.apply({ kind: "set", key, value: entry.value, expiresAtMs: entry.expiresAtMs }),
    });
  } catch (readError) {
    if (!(readError instanceof DamagedFileError)) throw readError;
  } finally {
    await reader.close();
  }
  const aside = `${SNAPSHOT_FILE}.damaged-${stamp}`;
  await storage.rename(SNAPSHOT_FILE, aside);
  await storage.syncDir();
  const kept = header as SnapshotHeader | null;
  if (kept === null) {
    return `moved ${storage.pathOf(SNAPSHOT_FILE)}, whose header is unreadable, to ${storage.pathOf(aside)}`;
  }
  await writeSnapshotFile(storage, { store: salvaged, committedSeq: kept.seq } satisfies SnapshotSource, kept, {
    chunkBytes: PERSISTENCE_READ_CHUNK_BYTES,
    fsyncIntervalBytes: SNAPSHOT_FSYNC_INTERVAL_BYTES,
    crash: NO_CRASH,
  });
  return `moved ${storage.pathOf(SNAPSHOT_FILE)} to ${storage.pathOf(aside)} and wrote a new one with the ` +
    `${
      plural(salvaged.size, "key")
    } before offset ${error.offset}; keys after it are lost unless a later write set them`;
}

async function fixMismatch(error: MismatchedFilesError, options: RepairOptions): Promise<string> {
  const { storage } = options;
  const stamp = timestamp(options.clock());
  if (error.problem === "snapshot-missing") {
    const header = await readHeaderOnly(storage, LOG_FILE, SCANNER);
    if (header === null) throw error;
    await writeSnapshotFile(
      storage,
      { store: new Store(), committedSeq: header.seq },
      { logId: header.logId, replid: header.replid, seq: header.seq, createdAtMs: options.clock() },
      { chunkBytes: PERSISTENCE_READ_CHUNK_BYTES, fsyncIntervalBytes: SNAPSHOT_FSYNC_INTERVAL_BYTES, crash: NO_CRASH },
    );
    return `wrote an empty ${storage.pathOf(SNAPSHOT_FILE)} at seq ${header.seq} for the log to continue; the ` +
      `keys written before that seq are lost unless a later write set them`;
  }
  const aside = `${LOG_FILE}.unpaired-${stamp}`;
  await storage.rename(LOG_FILE, aside);
  await storage.remove(LOG_TMP_FILE);
  await storage.syncDir();
  return `moved ${storage.pathOf(LOG_FILE)} to ${storage.pathOf(aside)}; ${storage.pathOf(SNAPSHOT_FILE)} is ` +
    `loaded alone, without the writes the log held`;
}

/** Copies bytes [start, end) of `from` into a new file `to`, fsynced. */
async function copyRange(storage: Storage, from: string, start: number, end: number, to: string): Promise<void> {
  const reader = await storage.openReader(from);
  const writer = await storage.openWriter(to, "create");
  try {
    for (let at = start; at < end;) {
      const bytes = await reader.readAt(at, Math.min(PERSISTENCE_READ_CHUNK_BYTES, end - at));
      if (bytes.length === 0) break;
      await writer.append(bytes);
      at += bytes.length;
    }
    await writer.sync();
  } finally {
    await writer.close();
    await reader.close();
  }
  await storage.syncDir();
}

/** A file-name-safe UTC time: 2026-11-25T16-04-05Z. */
function timestamp(unixMs: number): string {
  return new Date(unixMs).toISOString().replace(/\.\d+Z$/, "Z").replaceAll(":", "-");
}
