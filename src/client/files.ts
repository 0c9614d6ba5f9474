/**
 * Files the command-line tools write (exports, the shell's history), replaced
 * crash-safely: the new content goes to `PATH.tmp`, is fsynced, renamed over `PATH`,
 * and the directory is fsynced, so a crash leaves either the old file or the new one,
 * never a torn mix. A failure to write one throws an OutputError naming the file (the
 * command then exits with EXIT_OUTPUT).
 *
 * @module
 */

import { dirname } from "node:path";
import { outputError } from "./command.ts";

/** An open `PATH.tmp` that becomes `PATH` on commit, or disappears on abort. */
export class AtomicFile {
  readonly path: string;
  readonly tmpPath: string;
  readonly #file: Deno.FsFile;
  readonly #encoder = new TextEncoder();

  private constructor(path: string, file: Deno.FsFile) {
    this.path = path;
    this.tmpPath = `${path}.tmp`;
    this.#file = file;
  }

  /** Opens `PATH.tmp` for writing, truncating a leftover from an earlier crash. */
  static async create(path: string): Promise<AtomicFile> {
    try {
      const file = await Deno.open(`${path}.tmp`, { write: true, create: true, truncate: true, mode: 0o644 });
      return new AtomicFile(path, file);
    } catch (error) {
      throw outputError(path, error);
    }
  }

  async write(text: string): Promise<void> {
    const bytes = this.#encoder.encode(text);
    let written = 0;
    try {
      while (written < bytes.length) written += await this.#file.write(bytes.subarray(written));
    } catch (error) {
      throw outputError(this.path, error);
    }
  }

  /** Makes the content durable and puts it at `path`. */
  async commit(): Promise<void> {
    try {
      await this.#file.sync();
      this.#file.close();
      await Deno.rename(this.tmpPath, this.path);
    } catch (error) {
      throw outputError(this.path, error);
    }
    await syncDirectory(dirname(this.path));
  }

  /** Drops the temporary file; `path` is untouched. */
  async abort(): Promise<void> {
    try {
      this.#file.close();
    } catch {
      // Already closed.
    }
    await Deno.remove(this.tmpPath).catch(() => {});
  }
}

/** Replaces `path` with `text`, crash-safely. */
export async function writeFileAtomic(path: string, text: string): Promise<void> {
  const file = await AtomicFile.create(path);
  try {
    await file.write(text);
    await file.commit();
  } catch (error) {
    await file.abort();
    throw error;
  }
}

/** Fsyncs a directory so a rename in it is durable. Some platforms cannot open a
 * directory for syncing; there the rename is as durable as the OS makes it. */
async function syncDirectory(path: string): Promise<void> {
  let directory: Deno.FsFile;
  try {
    directory = await Deno.open(path, { read: true });
  } catch {
    return;
  }
  try {
    await directory.sync();
  } catch {
    // Not supported for directories here.
  } finally {
    directory.close();
  }
}
