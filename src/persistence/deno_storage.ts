/**
 * {@linkcode Storage} over real files in one directory, with Deno's file API; and the
 * lock that keeps two processes off one data directory.
 *
 * A writer holds two handles on its file: one that writes, one that syncs. Deno runs the
 * operations of one handle one after another, so a fsync on the writing handle would
 * hold up the appends behind it; fdatasync on a second handle flushes the same file
 * without that.
 *
 * @module
 */

import { dirname, join, resolve } from "node:path";
import { KvError } from "../errors.ts";
import type { FileReader, FileWriter, Storage } from "./storage.ts";

export class DenoStorage implements Storage {
  readonly location: string;

  constructor(directory: string) {
    this.location = directory;
  }

  pathOf(name: string): string {
    return join(this.location, name);
  }

  async size(name: string): Promise<number | null> {
    try {
      return (await Deno.stat(this.pathOf(name))).size;
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return null;
      throw error;
    }
  }

  async openReader(name: string): Promise<FileReader> {
    const file = await Deno.open(this.pathOf(name), { read: true });
    try {
      const { size } = await file.stat();
      return new DenoFileReader(file, size);
    } catch (error) {
      file.close();
      throw error;
    }
  }

  async openWriter(name: string, mode: "create" | "existing"): Promise<FileWriter> {
    const path = this.pathOf(name);
    const file = await Deno.open(path, {
      read: true,
      write: true,
      create: mode === "create",
      truncate: mode === "create",
    });
    try {
      const size = await file.seek(0, Deno.SeekMode.End);
      const syncHandle = await Deno.open(path, { read: true });
      return new DenoFileWriter(file, syncHandle, size);
    } catch (error) {
      file.close();
      throw error;
    }
  }

  async rename(from: string, to: string): Promise<void> {
    await Deno.rename(this.pathOf(from), this.pathOf(to));
  }

  async remove(name: string): Promise<void> {
    try {
      await Deno.remove(this.pathOf(name));
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }

  syncDir(): Promise<void> {
    return syncDirectory(this.location);
  }
}

/** Fsyncs `path`, a directory, making the names in it durable. */
export async function syncDirectory(path: string): Promise<void> {
  const directory = await Deno.open(path, { read: true });
  try {
    await directory.sync();
  } finally {
    directory.close();
  }
}

/**
 * Creates `directory` and whatever parents it lacks, then fsyncs the parent of each
 * directory it created, top down. Without that, the new directory's own name is not
 * durable: a power cut soon after the first start could take the directory away with
 * files whose every write was fsynced (the promise of --appendfsync always), as etcd
 * knows (it fsyncs the parent of every directory it creates). Does nothing more than
 * mkdir for a directory that exists. Returns the directories it created.
 */
export async function createDirectoryDurably(
  directory: string,
  sync: (path: string) => Promise<void> = syncDirectory,
): Promise<string[]> {
  const missing: string[] = [];
  for (let path = resolve(directory); dirname(path) !== path; path = dirname(path)) {
    try {
      await Deno.stat(path);
      break;
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
      missing.unshift(path);
    }
  }
  await Deno.mkdir(directory, { recursive: true });
  for (const created of missing) await sync(dirname(created));
  return missing;
}

class DenoFileReader implements FileReader {
  readonly size: number;
  #file: Deno.FsFile;

  constructor(file: Deno.FsFile, size: number) {
    this.#file = file;
    this.size = size;
  }

  async readAt(position: number, length: number): Promise<Uint8Array> {
    const bytes = new Uint8Array(Math.max(0, Math.min(length, this.size - position)));
    await this.#file.seek(position, Deno.SeekMode.Start);
    let filled = 0;
    while (filled < bytes.length) {
      const read = await this.#file.read(bytes.subarray(filled));
      if (read === null) break;
      filled += read;
    }
    return filled === bytes.length ? bytes : bytes.subarray(0, filled);
  }

  close(): Promise<void> {
    this.#file.close();
    return Promise.resolve();
  }
}

class DenoFileWriter implements FileWriter {
  #file: Deno.FsFile;
  #syncHandle: Deno.FsFile;
  #size: number;

  constructor(file: Deno.FsFile, syncHandle: Deno.FsFile, size: number) {
    this.#file = file;
    this.#syncHandle = syncHandle;
    this.#size = size;
  }

  get size(): number {
    return this.#size;
  }

  /** Appends with a synchronous write, as Redis writes its AOF from its event loop:
   * handing a batch to the page cache is a memory copy, while an async write costs a
   * round trip through Deno's blocking-thread pool for every batch (measured: about a
   * fifth of the server's CPU per SET under load). What can block for long, fsync, stays
   * asynchronous, on the second handle. */
  // deno-lint-ignore require-await -- async so a failed write rejects like every other storage call
  async append(bytes: Uint8Array): Promise<void> {
    let written = 0;
    while (written < bytes.length) written += this.#file.writeSync(bytes.subarray(written));
    this.#size += bytes.length;
  }

  async truncate(size: number): Promise<void> {
    await this.#file.truncate(size);
    await this.#file.seek(size, Deno.SeekMode.Start);
    this.#size = size;
  }

  async sync(): Promise<void> {
    await this.#syncHandle.syncData();
  }

  close(): Promise<void> {
    this.#file.close();
    this.#syncHandle.close();
    return Promise.resolve();
  }
}

/** The lock file in a data directory. */
export const LOCK_FILE = "kvstore.lock";

/**
 * Takes the data directory's lock (an exclusive flock on kvstore.lock, which also holds
 * the owner's pid) so that a second node, router, or `kvstore repair`, cannot write the
 * same files. Refuses at once, naming the holder, if another process has it, with a
 * message prefixed by the caller's `subsystem` ("server", "router", "repair"). The lock
 * lasts until the returned handle is closed or the process ends, however it ends.
 */
export async function lockDataDir(directory: string, subsystem: string): Promise<Deno.FsFile> {
  const path = join(directory, LOCK_FILE);
  const file = await Deno.open(path, { read: true, write: true, create: true });
  if (!(await file.tryLock(true))) {
    let holder = "";
    try {
      const pid = (await Deno.readTextFile(path)).trim();
      if (/^[0-9]+$/.test(pid)) holder = ` (pid ${pid})`;
    } catch { /* the pid is a courtesy */ }
    file.close();
    throw new KvError(
      "FAILED_PRECONDITION",
      `${subsystem}: Cannot use data directory ${JSON.stringify(directory)}: another kvstore process${holder} ` +
        `is using it; stop it first, or choose another --data-dir`,
    );
  }
  try {
    await file.truncate(0);
    await file.write(new TextEncoder().encode(`${Deno.pid}\n`));
  } catch (error) {
    // The lock is released with its handle; a node that cannot start must not keep it.
    file.close();
    throw error;
  }
  return file;
}
