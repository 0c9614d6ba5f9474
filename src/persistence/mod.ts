/**
 * Persistence: the append-only log (kvstore.aof) and the snapshot (kvstore.rdb) that
 * make every acknowledged write survive a crash, and recovery that reads them back.
 *
 * Files in the data directory, and when each exists:
 *
 * | file            | what                                                   | exists                          |
 * | --------------- | ------------------------------------------------------ | ------------------------------- |
 * | kvstore.aof     | every write since the snapshot, in seq order          | always, from the first start    |
 * | kvstore.rdb     | the dataset at a seq, plus the log's id it pairs with  | after the first snapshot        |
 * | kvstore.rdb.tmp | a snapshot being written                               | while one is written            |
 * | kvstore.aof.tmp | a new log being written (after a snapshot, or a resync)| while the log is cut or replaced |
 * | kvstore.lock    | the pid of the node using the directory                | while a node or repair runs     |
 *
 * Layers, from bytes up: crc32c.ts and bytes.ts; frame.ts (checksummed frames, torn
 * tails told from corruption); records.ts; log_format.ts and snapshot_format.ts (the two
 * files, each opening with its format essay); file_log.ts (the CommitLog: append, fsync
 * policy, cut); recovery.ts; file_persistence.ts (the Persistence the node uses);
 * repair.ts (the offline `kvstore repair`). All of it works through storage.ts, so unit
 * tests run it over the simulated disk of sim_storage.ts; deno_storage.ts is the real
 * one.
 *
 * @module
 */

export type { CommitLog } from "./commit_log.ts";
export { VolatileLog } from "./commit_log.ts";
export { type History, newReplid, type Persistence, VolatilePersistence } from "./persistence.ts";
export {
  FilePersistence,
  type FilePersistenceOptions,
  type PersistenceStatus,
  type SnapshotSummary,
} from "./file_persistence.ts";
export { FileLog, FSYNC_POLICIES, type FsyncPolicy } from "./file_log.ts";
export { CRASH_POINTS, type CrashHook, crashHookFromSpec, type CrashPoint, NO_CRASH } from "./crashpoints.ts";
export { type DatasetDigest, datasetDigest } from "./digest.ts";
export { DenoStorage, lockDataDir } from "./deno_storage.ts";
export { DamagedFileError, MismatchedFilesError } from "./damage.ts";
export type { SnapshotSource } from "./snapshot_format.ts";
export type { Storage } from "./storage.ts";
