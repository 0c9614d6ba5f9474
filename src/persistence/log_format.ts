/**
 * kvstore.aof, the append-only log: every write, in seq order, since the snapshot.
 *
 * Layout:
 *
 *   "KVSAOF" u16 version (1)            8 bytes of magic
 *   frame: LOG_HEADER                   which log this is, and the point it continues
 *   frame ... frame: a batch            the writes of one pipeline batch, in seq order
 *   frame: HISTORY                      (when a replica is promoted) a new replid
 *   ...
 *
 * Frames are described in frame.ts and records in records.ts. An example log of a fresh
 * node that took SET a=1, then SET b=2 with DEL a in one batch:
 *
 *   KVSAOF 01 00
 *   [LOG_HEADER logId=3f1c.. parent="" replid=9ab0.. seq=0]
 *   [SET seq=1 "a" "1" no deadline]
 *   [SET seq=2 "b" "2" no deadline | DELETE seq=3 "a"]
 *
 * When the log exists: always, from the node's first start. It is created whole (a
 * temporary file, fsynced, renamed into place) and after that only appended to, and cut
 * back when an append fails part way. After each snapshot it is replaced by a new log
 * (a new logId, parentLogId = the log the snapshot was taken against) holding only the
 * batches after the snapshot's seq: that is the AOF rewrite, and it is why the log never
 * grows without bound.
 *
 * How it is read back: the header first; then batch after batch. Seqs must run without
 * a gap from the header's seq on (HISTORY records carry the seq they continue after).
 * A torn tail (the writer stopped mid-append) is reported with its offset and cut off;
 * damage followed by intact frames stops recovery (damage.ts).
 *
 * @module
 */

import type { SequencedCommand } from "../store/command.ts";
import { ByteReader, FormatError } from "./bytes.ts";
import { DamagedFileError } from "./damage.ts";
import { FRAME_CONTINUES, type FrameEncoder, FrameScanner, type FrameScannerOptions } from "./frame.ts";
import {
  type LogHeader,
  type LogRecord,
  readLogHeader,
  readLogRecord,
  writeCommand,
  writeHistory,
  writeLogHeader,
} from "./records.ts";
import type { FileReader } from "./storage.ts";

export const LOG_FILE = "kvstore.aof";
/** Where a new log is written before it is renamed over kvstore.aof. */
export const LOG_TMP_FILE = "kvstore.aof.tmp";

export const MAGIC_BYTES = 8;
export const LOG_FORMAT_VERSION = 1;
export const LOG_MAGIC: Uint8Array = magic("KVSAOF", LOG_FORMAT_VERSION);

/** The 8-byte magic of a file: six ASCII letters and a u16 LE version. */
export function magic(letters: string, version: number): Uint8Array {
  const bytes = new Uint8Array(MAGIC_BYTES);
  bytes.set(new TextEncoder().encode(letters));
  bytes[6] = version & 0xff;
  bytes[7] = version >> 8;
  return bytes;
}

/** The first bytes of a new log: magic and header frame. */
export function encodeLogStart(encoder: FrameEncoder, header: LogHeader): Uint8Array {
  encoder.reset();
  encoder.body.bytes(LOG_MAGIC);
  encoder.begin();
  writeLogHeader(encoder.body, header);
  encoder.end();
  return encoder.bytes();
}

/** One batch as frames of about `frameTargetBytes` each (a record larger than that gets
 * a frame of its own). A view into `encoder`: valid until its next use. */
export function encodeBatch(
  encoder: FrameEncoder,
  batch: readonly SequencedCommand[],
  frameTargetBytes: number,
): Uint8Array {
  encoder.reset();
  encoder.begin();
  for (let i = 0; i < batch.length; i++) {
    if (i > 0 && encoder.payloadBytes >= frameTargetBytes) {
      encoder.end(FRAME_CONTINUES);
      encoder.begin();
    }
    writeCommand(encoder.body, batch[i].seq, batch[i].command);
  }
  encoder.end();
  return encoder.bytes();
}

/** A HISTORY record as a one-frame batch. */
export function encodeHistory(encoder: FrameEncoder, seq: number, replid: string): Uint8Array {
  encoder.reset();
  encoder.begin();
  writeHistory(encoder.body, seq, replid);
  encoder.end();
  return encoder.bytes();
}

/** A batch as read back: its records and where its frames lie. */
export interface ReadBatch {
  readonly records: LogRecord[];
  /** Offset of its first frame. */
  readonly offset: number;
  /** Offset just after its last frame. */
  readonly end: number;
}

export interface LogReadResult {
  readonly header: LogHeader;
  /** Offset of the first batch (just after the header frame). */
  readonly headerEnd: number;
  /** Offset where the intact log ends: the file's size, or where a torn tail begins. */
  readonly end: number;
  /** The torn tail, if any: where it begins and what was found there. */
  readonly torn: { readonly offset: number; readonly detail: string } | null;
}

/**
 * Reads the log at `path` through `reader`: checks the magic and the header (handed to
 * `onHeader`), then hands every complete batch to `onBatch` in order. A torn tail ends the read (the result says
 * where it begins; cutting it is the caller's decision). Damage anywhere else throws a
 * {@linkcode DamagedFileError}, as does a batch whose records fail to decode.
 */
export async function readLog(
  reader: FileReader,
  place: { path: string; dataDir: string },
  options: FrameScannerOptions,
  callbacks: {
    /** Receives the header before any batch; may throw to stop the read. */
    onHeader?: (header: LogHeader) => void;
    onBatch: (batch: ReadBatch) => void | Promise<void>;
  },
): Promise<LogReadResult> {
  const damaged = (offset: number, detail: string, cutOffset?: number) =>
    new DamagedFileError("log", place.path, offset, detail, { dataDir: place.dataDir, cutOffset });
  const start = await reader.readAt(0, MAGIC_BYTES);
  if (start.length < MAGIC_BYTES || !equalBytes(start, LOG_MAGIC)) {
    const version = start.length === MAGIC_BYTES && equalBytes(start.subarray(0, 6), LOG_MAGIC.subarray(0, 6))
      ? start[6] | (start[7] << 8)
      : null;
    throw damaged(
      0,
      version === null
        ? "it does not start with the kvstore log magic (not a kvstore.aof, or damaged)"
        : `it is format version ${version}; this kvstore reads version ${LOG_FORMAT_VERSION}`,
    );
  }
  const scanner = new FrameScanner(reader, MAGIC_BYTES, options, place.path);
  const first = await scanner.next();
  if (first.kind !== "frame") {
    throw damaged(MAGIC_BYTES, first.kind === "end" ? "the log header is missing" : `the log header: ${first.detail}`);
  }
  let header: LogHeader;
  try {
    const input = new ByteReader(first.payload);
    header = readLogHeader(input);
    if (input.remaining !== 0) throw new FormatError(`${input.remaining} stray bytes`, input.position);
  } catch (error) {
    throw damaged(MAGIC_BYTES, `the log header does not decode: ${describe(error)}`);
  }
  const headerEnd = first.end;
  callbacks.onHeader?.(header);

  let records: LogRecord[] = [];
  let batchOffset = headerEnd;
  while (true) {
    const step = await scanner.next();
    if (step.kind === "end") {
      if (records.length > 0) {
        return { header, headerEnd, end: batchOffset, torn: { offset: batchOffset, detail: "an unfinished batch" } };
      }
      return { header, headerEnd, end: step.offset, torn: null };
    }
    if (step.kind === "torn") {
      return { header, headerEnd, end: batchOffset, torn: { offset: batchOffset, detail: step.detail } };
    }
    if (step.kind === "corrupt") throw damaged(step.offset, step.detail, batchOffset);
    try {
      const input = new ByteReader(step.payload);
      while (input.remaining > 0) records.push(readLogRecord(input));
    } catch (error) {
      throw damaged(step.offset, `a record does not decode: ${describe(error)}`, batchOffset);
    }
    if ((step.flags & FRAME_CONTINUES) !== 0) continue;
    await callbacks.onBatch({ records, offset: batchOffset, end: step.end });
    records = [];
    batchOffset = step.end;
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

function describe(error: unknown): string {
  if (error instanceof FormatError) return `${error.message} (payload byte ${error.position})`;
  return error instanceof Error ? error.message : String(error);
}
