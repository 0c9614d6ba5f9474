/**
 * Records: what frames carry. Each record is a type byte and its fields (bytes.ts gives
 * each field's layout). A frame's payload is one or more records back to back.
 *
 *   type  record            fields                                      found in
 *   0x01  SET               seq u53, key string32, value string32,     log
 *                           hasDeadline u8, [expiresAtMs u53]
 *   0x02  DELETE            seq u53, key string32                       log
 *   0x03  EXPIRE_AT         seq u53, key string32, expiresAtMs u53      log
 *   0x10  HISTORY           seq u53, replid string8                     log
 *   0x20  LOG_HEADER        logId string8, parentLogId string8,         log, first frame
 *                           replid string8, seq u53, createdAtMs u53
 *   0x30  SNAPSHOT_HEADER   logId string8, replid string8, seq u53,    snapshot, first frame
 *                           createdAtMs u53
 *   0x31  ENTRY             key string32, value string32,               snapshot
 *                           hasDeadline u8, [expiresAtMs u53]
 *   0x32  SNAPSHOT_END      keys u53, seqEnd u53                        snapshot, last frame
 *
 * Example: DELETE of key "k" at seq 7 is 14 bytes:
 *
 *   02  07 00 00 00 00 00 00 00  01 00 00 00  6b
 *
 * Commands are absolute and idempotent (a SET carries the deadline, an EXPIRE_AT its
 * unix-ms deadline), so replaying any suffix of the log over a state the dataset passed
 * through since that suffix began gives the exact final state. HISTORY says that from
 * here on the history is named `replid`, continuing after `seq` (a promoted replica).
 *
 * An unknown type byte is refused: it was written by a newer kvstore, or is corruption
 * that passed the checksum; either way guessing would load the wrong data.
 *
 * @module
 */

import type { WriteCommand } from "../store/command.ts";
import type { Entry } from "../store/store.ts";
import { type ByteReader, type ByteWriter, FormatError } from "./bytes.ts";

export const RECORD_SET = 0x01;
export const RECORD_DELETE = 0x02;
export const RECORD_EXPIRE_AT = 0x03;
export const RECORD_HISTORY = 0x10;
export const RECORD_LOG_HEADER = 0x20;
export const RECORD_SNAPSHOT_HEADER = 0x30;
export const RECORD_ENTRY = 0x31;
export const RECORD_SNAPSHOT_END = 0x32;

/** The first record of a log file: which log it is, which log it was cut from (the one
 * the snapshot it continues was taken against; "" for none), and the history point it
 * continues: the dataset at `seq` of history `replid`. */
export interface LogHeader {
  readonly logId: string;
  readonly parentLogId: string;
  readonly replid: string;
  readonly seq: number;
  readonly createdAtMs: number;
}

/** A record of the log after its header. */
export type LogRecord =
  | { readonly kind: "command"; readonly seq: number; readonly command: WriteCommand }
  | { readonly kind: "history"; readonly seq: number; readonly replid: string };

/** The first record of a snapshot: the history point where it began (replaying the log
 * after `seq` makes it exact) and the log it was taken against. */
export interface SnapshotHeader {
  readonly logId: string;
  readonly replid: string;
  readonly seq: number;
  readonly createdAtMs: number;
}

/** The last record of a snapshot: the entries written, and the last seq the dataset
 * held when writing ended (the log must reach it for the snapshot to be exact). */
export interface SnapshotEnd {
  readonly keys: number;
  readonly seqEnd: number;
}

export function writeCommand(out: ByteWriter, seq: number, command: WriteCommand): void {
  switch (command.kind) {
    case "set":
      out.u8(RECORD_SET);
      out.u53(seq);
      out.string32(command.key);
      out.string32(command.value);
      writeDeadline(out, command.expiresAtMs);
      return;
    case "delete":
      out.u8(RECORD_DELETE);
      out.u53(seq);
      out.string32(command.key);
      return;
    case "expireAt":
      out.u8(RECORD_EXPIRE_AT);
      out.u53(seq);
      out.string32(command.key);
      out.u53(command.expiresAtMs);
      return;
  }
}

export function writeHistory(out: ByteWriter, seq: number, replid: string): void {
  out.u8(RECORD_HISTORY);
  out.u53(seq);
  out.string8(replid);
}

export function writeLogHeader(out: ByteWriter, header: LogHeader): void {
  out.u8(RECORD_LOG_HEADER);
  out.string8(header.logId);
  out.string8(header.parentLogId);
  out.string8(header.replid);
  out.u53(header.seq);
  out.u53(header.createdAtMs);
}

export function writeSnapshotHeader(out: ByteWriter, header: SnapshotHeader): void {
  out.u8(RECORD_SNAPSHOT_HEADER);
  out.string8(header.logId);
  out.string8(header.replid);
  out.u53(header.seq);
  out.u53(header.createdAtMs);
}

export function writeEntry(out: ByteWriter, key: string, entry: Entry): void {
  out.u8(RECORD_ENTRY);
  out.string32(key);
  out.string32(entry.value);
  writeDeadline(out, entry.expiresAtMs);
}

export function writeSnapshotEnd(out: ByteWriter, end: SnapshotEnd): void {
  out.u8(RECORD_SNAPSHOT_END);
  out.u53(end.keys);
  out.u53(end.seqEnd);
}

function writeDeadline(out: ByteWriter, expiresAtMs: number | null): void {
  if (expiresAtMs === null) {
    out.u8(0);
  } else {
    out.u8(1);
    out.u53(expiresAtMs);
  }
}

/** The type byte of the next record, without consuming it. */
export function peekType(input: ByteReader): number {
  if (input.remaining === 0) throw new FormatError("a record is missing", input.position);
  return input.bytes[input.position];
}

/** Reads one log record (a command or HISTORY). */
export function readLogRecord(input: ByteReader): LogRecord {
  const at = input.position;
  const type = input.u8();
  switch (type) {
    case RECORD_SET: {
      const seq = input.u53();
      const key = input.string32();
      const value = input.string32();
      return { kind: "command", seq, command: { kind: "set", key, value, expiresAtMs: readDeadline(input) } };
    }
    case RECORD_DELETE: {
      const seq = input.u53();
      return { kind: "command", seq, command: { kind: "delete", key: input.string32() } };
    }
    case RECORD_EXPIRE_AT: {
      const seq = input.u53();
      const key = input.string32();
      return { kind: "command", seq, command: { kind: "expireAt", key, expiresAtMs: input.u53() } };
    }
    case RECORD_HISTORY: {
      const seq = input.u53();
      return { kind: "history", seq, replid: input.string8() };
    }
    default:
      throw new FormatError(`record type 0x${type.toString(16)} is not a log record`, at);
  }
}

export function readLogHeader(input: ByteReader): LogHeader {
  expectType(input, RECORD_LOG_HEADER, "a log header");
  return {
    logId: input.string8(),
    parentLogId: input.string8(),
    replid: input.string8(),
    seq: input.u53(),
    createdAtMs: input.u53(),
  };
}

export function readSnapshotHeader(input: ByteReader): SnapshotHeader {
  expectType(input, RECORD_SNAPSHOT_HEADER, "a snapshot header");
  return { logId: input.string8(), replid: input.string8(), seq: input.u53(), createdAtMs: input.u53() };
}

/** Reads one ENTRY record as [key, entry]. */
export function readEntry(input: ByteReader): [string, Entry] {
  expectType(input, RECORD_ENTRY, "a snapshot entry");
  const key = input.string32();
  const value = input.string32();
  return [key, { value, expiresAtMs: readDeadline(input) }];
}

export function readSnapshotEnd(input: ByteReader): SnapshotEnd {
  expectType(input, RECORD_SNAPSHOT_END, "the snapshot end");
  return { keys: input.u53(), seqEnd: input.u53() };
}

function readDeadline(input: ByteReader): number | null {
  const at = input.position;
  const flag = input.u8();
  if (flag === 0) return null;
  if (flag === 1) return input.u53();
  throw new FormatError(`a deadline flag is ${flag}, not 0 or 1`, at);
}

function expectType(input: ByteReader, type: number, what: string): void {
  const at = input.position;
  const found = input.u8();
  if (found !== type) {
    throw new FormatError(`expected ${what} (type 0x${type.toString(16)}), found type 0x${found.toString(16)}`, at);
  }
}
