/**
 * Frames: the checksummed unit in which the log and the snapshot are written and read.
 *
 * Both files are an 8-byte magic followed by frames. A frame carries a payload of one or
 * more records (records.ts) behind a 16-byte header:
 *
 *   offset  size  field
 *   0       4     payload length in bytes (u32 LE)
 *   4       1     flags: bit 0 CONTINUES = the log batch goes on in the next frame
 *   5       3     zero
 *   8       4     CRC-32C of bytes 0-7 (the header check)
 *   12      4     CRC-32C of the payload
 *   16      n     payload
 *
 * Example: a frame holding a 21-byte payload, the last frame of its batch:
 *
 *   15 00 00 00  00 00 00 00  <crc of the 8 bytes before>  <crc of payload>  <21 bytes>
 *
 * Why two checksums: the header check tells a damaged length from a true one before the
 * length is trusted. With it the reader can tell the two failures apart that recovery
 * must treat differently:
 *
 * - A torn tail: the process (or the power) stopped in the middle of an append. The
 *   damage is at the end of the file: fewer than 16 header bytes, a valid header whose
 *   payload runs past the end of the file, or a frame that fails a check because the
 *   data from it to the end of the file never reached the disk and reads as zeros (a
 *   file system that extended the file but lost the data, as XFS can after a power
 *   cut). Recovery cuts it off and keeps everything before it.
 * - Corruption: anything else. A header or payload that fails its check with data after
 *   it that is not zeros, or whose own bytes are there but wrong (a flipped bit, even in
 *   the last frame: that frame may hold fsynced, acknowledged writes), or a header
 *   (whose own check passes) declaring an impossible length. Recovery stops and names
 *   the file and offset; a silent partial load is never an option.
 *
 * Which zeros mark lost data: a disk writes, and loses, whole sectors, and the log only
 * ever appends whole batches; so the lost part of an append reads as zeros from where
 * the append began (the start of a frame) or from a sector boundary (every
 * DISK_SECTOR_BYTES of the file) to the end of the file. A frame is a torn tail when
 * every byte from its start, or from the last sector boundary within its damaged part,
 * to the end of the file is zero. Zeros that begin elsewhere are the frame's own bytes
 * (a deadline flag of 0 ends most SET records), not a lost write. This is etcd's rule
 * for its WAL, made stricter: etcd takes any zero-filled sector in the last record as a
 * torn write, even with data after it.
 *
 * A log batch that exceeds the frame size target is split across frames at record
 * boundaries, each but the last flagged CONTINUES; recovery applies a batch only once its
 * last frame is read, so a batch torn between frames is dropped whole: MSet stays all or
 * nothing across a crash.
 *
 * @module
 */

import { plural } from "../errors.ts";
import { ByteWriter } from "./bytes.ts";
import { crc32c } from "./crc32c.ts";
import { describeStorageError, type FileReader } from "./storage.ts";

export const FRAME_HEADER_BYTES = 16;

/** The bytes of a frame header its check covers: the length and flags, and their CRC. */
const FRAME_HEADER_CHECKED_BYTES = 12;

/** The unit in which a disk writes and loses data, in bytes: the smallest sector size
 * (etcd's minSectorSize). Larger sectors and file-system blocks are multiples of it. */
export const DISK_SECTOR_BYTES = 512;

/** Flag: the log batch continues in the next frame. */
export const FRAME_CONTINUES = 1;

/** Builds frames in one growable buffer: begin, write records through `body`, end. */
export class FrameEncoder {
  /** Where records are written; between begin() and end() they form the frame's payload. */
  readonly body: ByteWriter;
  #frameStart = -1;

  constructor(initialBytes = 64 * 1024) {
    this.body = new ByteWriter(initialBytes);
  }

  /** Bytes of payload in the frame being built. */
  get payloadBytes(): number {
    return this.#frameStart < 0 ? 0 : this.body.length - this.#frameStart - FRAME_HEADER_BYTES;
  }

  /** Bytes of finished frames and the frame being built. */
  get length(): number {
    return this.body.length;
  }

  begin(): void {
    if (this.#frameStart >= 0) throw new Error("frame: Cannot begin a frame inside another");
    this.#frameStart = this.body.reserve(FRAME_HEADER_BYTES);
  }

  end(flags = 0): void {
    const start = this.#frameStart;
    if (start < 0) throw new Error("frame: Cannot end a frame that was not begun");
    const payloadBytes = this.body.length - start - FRAME_HEADER_BYTES;
    this.body.patchU32(start, payloadBytes);
    this.body.patchU32(start + 4, flags & 0xff);
    this.body.patchU32(start + 8, crc32c(this.body.view(start, start + 8)));
    this.body.patchU32(start + 12, crc32c(this.body.view(start + FRAME_HEADER_BYTES)));
    this.#frameStart = -1;
  }

  /** Every finished frame as one byte run. A view: valid until the next reset or write. */
  bytes(): Uint8Array {
    if (this.#frameStart >= 0) throw new Error("frame: Cannot take the bytes of an unfinished frame");
    return this.body.view();
  }

  reset(): void {
    this.body.reset();
    this.#frameStart = -1;
  }

  /** Resets, giving back memory beyond `bytesMax` (see ByteWriter.release). */
  release(bytesMax: number, initialBytes: number): void {
    this.body.release(bytesMax, initialBytes);
    this.#frameStart = -1;
  }
}

/** One step of reading frames from a file. */
export type FrameStep =
  /** A frame whose checks passed. `payload` is a view, valid until the next step. */
  | { readonly kind: "frame"; readonly offset: number; readonly end: number; flags: number; payload: Uint8Array }
  /** The file ends exactly after the last frame. */
  | { readonly kind: "end"; readonly offset: number }
  /** The file ends in the middle of a frame: a torn tail starting at `offset`. */
  | { readonly kind: "torn"; readonly offset: number; readonly detail: string }
  /** A damaged frame at `offset` with data after it. */
  | { readonly kind: "corrupt"; readonly offset: number; readonly detail: string };

export interface FrameScannerOptions {
  /** Bytes read from the file at a time. */
  readonly readChunkBytes: number;
  /** Largest payload a frame may declare; a larger one is corruption. */
  readonly payloadBytesMax: number;
}

/** Reads frames one after another from `start`, telling a torn tail from corruption. */
export class FrameScanner {
  #reader: FileReader;
  #options: FrameScannerOptions;
  #offset: number;
  #buffer: Uint8Array = new Uint8Array(0);
  #bufferStart = 0;
  #path: string;

  /** `path` names the file in the messages of read errors. */
  constructor(reader: FileReader, start: number, options: FrameScannerOptions, path = "the file") {
    this.#reader = reader;
    this.#offset = start;
    this.#options = options;
    this.#path = path;
  }

  /** The offset of the next frame. */
  get offset(): number {
    return this.#offset;
  }

  async next(): Promise<FrameStep> {
    const offset = this.#offset;
    const size = this.#reader.size;
    if (offset === size) return { kind: "end", offset };
    if (size - offset < FRAME_HEADER_BYTES) {
      return {
        kind: "torn",
        offset,
        detail: `${plural(size - offset, "byte")} of a ${FRAME_HEADER_BYTES}-byte frame header`,
      };
    }
    const header = await this.#read(offset, FRAME_HEADER_BYTES);
    const view = new DataView(header.buffer, header.byteOffset, FRAME_HEADER_BYTES);
    const payloadBytes = view.getUint32(0, true);
    const flags = view.getUint8(4);
    if (crc32c(header.subarray(0, 8)) !== view.getUint32(8, true)) {
      const lostFrom = await this.#lostFrom(offset, offset + FRAME_HEADER_CHECKED_BYTES);
      if (lostFrom !== null) {
        return {
          kind: "torn",
          offset,
          detail: `zero bytes from offset ${lostFrom} to the end (${plural(size - lostFrom, "byte")})`,
        };
      }
      return { kind: "corrupt", offset, detail: "the frame header fails its checksum" };
    }
    const payloadCrc = view.getUint32(12, true);
    if (payloadBytes > this.#options.payloadBytesMax || (flags & ~FRAME_CONTINUES) !== 0 || header[5] !== 0) {
      return {
        kind: "corrupt",
        offset,
        detail: `the frame header is invalid (length ${payloadBytes}, flags ${flags})`,
      };
    }
    const end = offset + FRAME_HEADER_BYTES + payloadBytes;
    if (end > size) {
      return {
        kind: "torn",
        offset,
        detail: `a ${payloadBytes}-byte payload with ${plural(size - offset - 16, "byte")} left`,
      };
    }
    const payload = await this.#read(offset + FRAME_HEADER_BYTES, payloadBytes);
    if (crc32c(payload) !== payloadCrc) {
      // The payload's CRC (header bytes 12-15) is part of what failed.
      const lostFrom = await this.#lostFrom(offset, end, offset + FRAME_HEADER_CHECKED_BYTES);
      if (lostFrom !== null) {
        return {
          kind: "torn",
          offset,
          detail: `the frame's payload fails its checksum, with zero bytes from offset ${lostFrom} to the end ` +
            `(${plural(size - lostFrom, "byte")})`,
        };
      }
      return { kind: "corrupt", offset, detail: "the frame's payload fails its checksum" };
    }
    this.#offset = end;
    return { kind: "frame", offset, end, flags, payload };
  }

  /** `length` bytes from `position`, all within the file (the caller checked). */
  async #read(position: number, length: number): Promise<Uint8Array> {
    const bufferEnd = this.#bufferStart + this.#buffer.length;
    if (position >= this.#bufferStart && position + length <= bufferEnd) {
      return this.#buffer.subarray(position - this.#bufferStart, position - this.#bufferStart + length);
    }
    const want = Math.min(Math.max(length, this.#options.readChunkBytes), this.#reader.size - position);
    let bytes: Uint8Array;
    try {
      bytes = await this.#reader.readAt(position, want);
    } catch (error) {
      // The OS's error code (EIO, ...) is kept, so that a node failing to start says why
      // in one line rather than with a stack trace (see isSystemError in server/run.ts).
      throw Object.assign(
        new Error(`Cannot read ${this.#path} at offset ${position}: ${describeStorageError(error)}`, { cause: error }),
        typeof (error as { code?: unknown })?.code === "string" ? { code: (error as { code: string }).code } : {},
      );
    }
    if (bytes.length < length) {
      throw new Error(`Cannot read ${this.#path} at offset ${position}: the file shrank while it was read`);
    }
    this.#buffer = bytes;
    this.#bufferStart = position;
    return bytes.subarray(0, length);
  }

  /**
   * Whether the frame at `offset`, whose bytes from `damagedFrom` to `damagedEnd` failed a
   * check, lost them in a write that never reached the disk (see the module doc): every
   * byte is zero from the frame's start, or from the last sector boundary in the damaged
   * part, to the end of the file. Returns where those zeros begin, or null when they do
   * not. Reads the rest of the file, stopping at its first byte that is not zero.
   */
  async #lostFrom(offset: number, damagedEnd: number, damagedFrom = offset): Promise<number | null> {
    const lastBoundary = Math.floor((damagedEnd - 1) / DISK_SECTOR_BYTES) * DISK_SECTOR_BYTES;
    const from = lastBoundary >= damagedFrom && lastBoundary > offset ? lastBoundary : offset;
    const size = this.#reader.size;
    for (let at = from; at < size;) {
      const length = Math.min(this.#options.readChunkBytes, size - at);
      const bytes = await this.#read(at, length);
      for (let i = 0; i < bytes.length; i++) {
        if (bytes[i] !== 0) return null;
      }
      at += length;
    }
    return from;
  }
}
