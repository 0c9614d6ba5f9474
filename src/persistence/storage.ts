/**
 * The small storage interface that every byte kvstore persists goes through.
 *
 * Persistence code never calls the file system itself: it reads, appends, truncates,
 * syncs and renames through a {@linkcode Storage}, one directory of named files. The
 * node uses {@linkcode DenoStorage} (real files); unit tests use a simulated disk that
 * keeps what was synced apart from what was merely written, and can lose the latter at
 * any moment, as a power cut does (sim_storage.ts).
 *
 * The guarantees callers rely on are POSIX's, no more:
 *
 * - `append` hands bytes to the OS; they survive a crash of the process but not a power
 *   cut until `sync` (fdatasync) of that file returns.
 * - A created, renamed or removed name survives a power cut only after `syncDir`.
 * - `rename` replaces its target atomically: a reader sees the old file or the new one.
 * - A failed `append` may have written any prefix of its bytes.
 *
 * @module
 */

/** A file opened for reading. */
export interface FileReader {
  /** The file's size when it was opened, in bytes. */
  readonly size: number;

  /** Up to `length` bytes from `position`; fewer only at the end of the file. */
  readAt(position: number, length: number): Promise<Uint8Array>;

  close(): Promise<void>;
}

/** A file opened for appending. Writes go to its end. */
export interface FileWriter {
  /** The file's size as this writer sees it: where the next append lands. */
  readonly size: number;

  /** Appends every byte of `bytes`. On failure any prefix of them may be in the file;
   * `size` then still says where the append began, so the caller can truncate back. */
  append(bytes: Uint8Array): Promise<void>;

  /** Cuts the file to `size` bytes; later appends continue from there. */
  truncate(size: number): Promise<void>;

  /** Makes what was appended durable (fdatasync). Must not delay appends while it
   * runs: an everysec fsync runs alongside the writes it does not wait for. */
  sync(): Promise<void>;

  close(): Promise<void>;
}

export interface Storage {
  /** Where the files live, for messages (a directory path). */
  readonly location: string;

  /** The full name of file `name`, for messages. */
  pathOf(name: string): string;

  /** The size of file `name` in bytes, or null when it does not exist. */
  size(name: string): Promise<number | null>;

  openReader(name: string): Promise<FileReader>;

  /** Opens `name` for appending: `create` makes it empty (creating or truncating it),
   * `existing` opens it as it is, positioned at its end. */
  openWriter(name: string, mode: "create" | "existing"): Promise<FileWriter>;

  /** Renames `from` to `to`, replacing `to` atomically. */
  rename(from: string, to: string): Promise<void>;

  /** Removes `name`; does nothing when it does not exist. */
  remove(name: string): Promise<void>;

  /** Makes the directory's names durable: creations, renames and removals. */
  syncDir(): Promise<void>;
}

/** A readable description of a storage error, for messages: the OS's own words. */
export function describeStorageError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
