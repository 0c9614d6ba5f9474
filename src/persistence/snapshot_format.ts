/**
 * kvstore.rdb, the snapshot: every entry of the dataset at a point of its history.
 *
 * Layout:
 *
 *   "KVSRDB" u16 version (1)       8 bytes of magic
 *   frame: SNAPSHOT_HEADER         format version (in the magic), logId, replid, seq,
 *                                  createdAtMs; checksummed like every frame
 *   frame ... frame: ENTRY ...     entries, about SNAPSHOT_CHUNK_BYTES per frame
 *   frame: SNAPSHOT_END            the number of entries written, and seqEnd
 *
 * Example, a snapshot of {a: "1", b: "2" expiring at 1767225600000}:
 *
 *   KVSRDB 01 00
 *   [SNAPSHOT_HEADER logId=3f1c.. replid=9ab0.. seq=41 createdAtMs=1764086400000]
 *   [ENTRY "a" "1" no deadline | ENTRY "b" "2" 1767225600000]
 *   [SNAPSHOT_END keys=2 seqEnd=43]
 *
 * Writing never stops the world. The writer records the last committed seq (`seq`) and
 * walks the live dataset in chunks, handing each chunk to the OS and so yielding to the
 * event loop while writes go on. Entries changed meanwhile may be caught before or after
 * the change (a key deleted and set again may even appear twice; the later wins), so the
 * file alone is "fuzzy" between `seq` and `seqEnd`, the last committed seq when the walk
 * ended. Because log records are absolute and idempotent, replaying the log after `seq`
 * over it gives the exact dataset; the log must therefore reach `seqEnd`, and is fsynced
 * through it before the snapshot is sealed.
 *
 * The file is written as kvstore.rdb.tmp, fsynced, renamed over kvstore.rdb and the
 * directory fsynced: a crash at any moment leaves the previous snapshot intact. It is
 * also fsynced every few MiB while it is written, so that its bytes reach the disk in
 * small steps rather than in one burst in front of the log's fsyncs.
 * `logId` names the log the snapshot was taken against; the log that replaces it after
 * the snapshot names that log as its parent, which is how recovery knows the two belong
 * together.
 *
 * How it is read back: the magic, the header, every entry frame (checksums and decoding
 * verified before any entry of a frame is used), and the end record, whose count must
 * match. A snapshot is never torn by a crash (it is renamed into place only when whole),
 * so any damage, including a missing end, stops recovery.
 *
 * @module
 */

import { nextTurn } from "../event_loop.ts";
import type { Entry, Store } from "../store/store.ts";
import { ByteReader, FormatError } from "./bytes.ts";
import type { CrashHook } from "./crashpoints.ts";
import { DamagedFileError } from "./damage.ts";
import { FrameEncoder, FrameScanner, type FrameScannerOptions } from "./frame.ts";
import { magic, MAGIC_BYTES } from "./log_format.ts";
import {
  peekType,
  readEntry,
  readSnapshotEnd,
  readSnapshotHeader,
  RECORD_SNAPSHOT_END,
  type SnapshotEnd,
  type SnapshotHeader,
  writeEntry,
  writeSnapshotEnd,
  writeSnapshotHeader,
} from "./records.ts";
import type { FileReader, Storage } from "./storage.ts";

export const SNAPSHOT_FILE = "kvstore.rdb";
/** Where a snapshot is written before it is renamed over kvstore.rdb. */
export const SNAPSHOT_TMP_FILE = "kvstore.rdb.tmp";

export const SNAPSHOT_FORMAT_VERSION = 1;
export const SNAPSHOT_MAGIC: Uint8Array = magic("KVSRDB", SNAPSHOT_FORMAT_VERSION);

/** What a snapshot reads from: the live store and the seq it holds up to. WriteStaging
 * is one. */
export interface SnapshotSource {
  readonly store: Store;
  readonly committedSeq: number;
}

export interface SnapshotWriteOptions {
  /** Entry bytes per frame; the writer yields to the event loop after each. */
  readonly chunkBytes: number;
  /** Bytes written between fsyncs of the file as it grows (the last fsync comes before
   * the rename either way); see SNAPSHOT_FSYNC_INTERVAL_BYTES. */
  readonly fsyncIntervalBytes: number;
  readonly crash: CrashHook;
  /** Asked after every chunk: a reason to give up (the dataset was replaced), or null. */
  readonly abandoned?: () => string | null;
  /** Called once every entry is written, with the committed seq at that moment, before
   * the file is sealed: the log must be durable through it. */
  readonly beforeSeal?: (seqEnd: number) => Promise<void>;
}

export interface SnapshotWritten {
  readonly keys: number;
  readonly bytes: number;
  readonly seqEnd: number;
}

/** Thrown when a snapshot is given up on purpose (see `abandoned`). */
export class SnapshotAbandoned extends Error {
  constructor(reason: string) {
    super(`snapshot: Gave up: ${reason}`);
    this.name = "SnapshotAbandoned";
  }
}

/**
 * Writes a snapshot of `source` with `header` and makes it kvstore.rdb, crash-safely:
 * kvstore.rdb.tmp, fsync, rename, fsync of the directory. On failure the temporary file
 * is removed and kvstore.rdb is untouched.
 */
/** The snapshot was renamed into place, but the directory's fsync failed: kvstore.rdb
 * already names the new snapshot (durably or not). A caller replacing the log with it
 * must finish that (see FileLog.replace) rather than undo its half. */
export class SnapshotInstalledError extends Error {
  constructor(cause: unknown) {
    super(`the snapshot is in place, but syncing its directory failed: ${String(cause)}`, { cause });
    this.name = "SnapshotInstalledError";
  }
}

export async function writeSnapshotFile(
  storage: Storage,
  source: SnapshotSource,
  header: SnapshotHeader,
  options: SnapshotWriteOptions,
): Promise<SnapshotWritten> {
  const file = await storage.openWriter(SNAPSHOT_TMP_FILE, "create");
  let closed = false;
  try {
    const encoder = new FrameEncoder(options.chunkBytes + 64 * 1024);
    encoder.body.bytes(SNAPSHOT_MAGIC);
    encoder.begin();
    writeSnapshotHeader(encoder.body, header);
    encoder.end();
    await file.append(encoder.bytes());

    let keys = 0;
    let chunks = 0;
    let unsyncedBytes = file.size;
    encoder.reset();
    encoder.begin();
    for (const [key, entry] of source.store.entries()) {
      writeEntry(encoder.body, key, entry);
      keys++;
      if (encoder.payloadBytes < options.chunkBytes) continue;
      encoder.end();
      const bytes = encoder.bytes();
      await file.append(bytes);
      if (++chunks === 1) options.crash("mid-snapshot-write");
      unsyncedBytes += bytes.length;
      if (unsyncedBytes >= options.fsyncIntervalBytes) {
        await file.sync();
        unsyncedBytes = 0;
      }
      const reason = options.abandoned?.() ?? null;
      if (reason !== null) throw new SnapshotAbandoned(reason);
      // Let requests run between chunks: this is what keeps a snapshot from stopping
      // the world (the append above may complete without yielding).
      await nextTurn();
      encoder.reset();
      encoder.begin();
    }
    if (encoder.payloadBytes > 0) encoder.end();
    else encoder.reset();
    if (chunks === 0) options.crash("mid-snapshot-write");

    const seqEnd = source.committedSeq;
    await options.beforeSeal?.(seqEnd);
    encoder.begin();
    writeSnapshotEnd(encoder.body, { keys, seqEnd });
    encoder.end();
    await file.append(encoder.bytes());
    await file.sync();
    const bytes = file.size;
    closed = true;
    await file.close();
    options.crash("before-snapshot-rename");
    await storage.rename(SNAPSHOT_TMP_FILE, SNAPSHOT_FILE);
    options.crash("after-snapshot-rename");
    try {
      await storage.syncDir();
    } catch (error) {
      throw new SnapshotInstalledError(error);
    }
    return { keys, bytes, seqEnd };
  } catch (error) {
    if (!closed) await file.close().catch(() => {});
    await storage.remove(SNAPSHOT_TMP_FILE).catch(() => {});
    throw error;
  }
}

export interface SnapshotReadResult {
  readonly header: SnapshotHeader;
  readonly end: SnapshotEnd;
  readonly bytes: number;
}

/**
 * Reads a snapshot, handing each entry to `onEntry` in file order (a key may come twice;
 * the later wins). `onHeader` receives the header before any entry. Every frame is
 * verified and decoded whole before its entries are handed on, so after a
 * {@linkcode DamagedFileError} the entries received are exactly those of the intact
 * frames before the damage (what a repair keeps).
 */
export async function readSnapshot(
  reader: FileReader,
  place: { path: string; dataDir: string },
  options: FrameScannerOptions,
  callbacks: {
    onHeader?: (header: SnapshotHeader) => void;
    onEntry: (key: string, entry: Entry) => void;
    /** Called after each frame of entries, with the number handed on so far. */
    onProgress?: (keys: number) => void | Promise<void>;
  },
): Promise<SnapshotReadResult> {
  const damaged = (offset: number, detail: string) =>
    new DamagedFileError("snapshot", place.path, offset, detail, { dataDir: place.dataDir });
  const start = await reader.readAt(0, MAGIC_BYTES);
  if (start.length < MAGIC_BYTES || !start.every((byte, i) => byte === SNAPSHOT_MAGIC[i])) {
    throw damaged(0, "it does not start with the kvstore snapshot magic of format version 1");
  }
  const scanner = new FrameScanner(reader, MAGIC_BYTES, options, place.path);
  const first = await scanner.next();
  if (first.kind !== "frame") {
    throw damaged(MAGIC_BYTES, first.kind === "end" ? "the header is missing" : `the header: ${first.detail}`);
  }
  let header: SnapshotHeader;
  try {
    const input = new ByteReader(first.payload);
    header = readSnapshotHeader(input);
    if (input.remaining !== 0) throw new FormatError(`${input.remaining} stray bytes`, input.position);
  } catch (error) {
    throw damaged(MAGIC_BYTES, `the header does not decode: ${describe(error)}`);
  }
  callbacks.onHeader?.(header);

  let keys = 0;
  while (true) {
    const step = await scanner.next();
    if (step.kind === "end") throw damaged(step.offset, "the file ends without its end record (it is incomplete)");
    if (step.kind !== "frame") throw damaged(step.offset, step.detail);
    const input = new ByteReader(step.payload);
    const entries: [string, Entry][] = [];
    let end: SnapshotEnd | null = null;
    try {
      while (input.remaining > 0) {
        if (peekType(input) === RECORD_SNAPSHOT_END) {
          end = readSnapshotEnd(input);
          if (input.remaining !== 0) throw new FormatError("records follow the end record", input.position);
        } else {
          entries.push(readEntry(input));
        }
      }
    } catch (error) {
      throw damaged(step.offset, `a record does not decode: ${describe(error)}`);
    }
    for (const [key, entry] of entries) callbacks.onEntry(key, entry);
    keys += entries.length;
    await callbacks.onProgress?.(keys);
    if (end === null) continue;
    if (end.keys !== keys) {
      throw damaged(step.offset, `the end record counts ${end.keys} entries, the file holds ${keys}`);
    }
    if (end.seqEnd < header.seq) throw damaged(step.offset, `seqEnd ${end.seqEnd} is before seq ${header.seq}`);
    if (step.end !== reader.size) throw damaged(step.end, `${reader.size - step.end} stray bytes after the end record`);
    return { header, end, bytes: reader.size };
  }
}

function describe(error: unknown): string {
  if (error instanceof FormatError) return `${error.message} (payload byte ${error.position})`;
  return error instanceof Error ? error.message : String(error);
}
