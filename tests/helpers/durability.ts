/**
 * Helpers for the persistence integration tests: data directories that outlive one
 * server process, restarts, digests, and byte surgery on the data files.
 *
 * @module
 */

import { KvClient } from "../../src/client/client.ts";
import { type ServerProcess, type StartOptions, startServer } from "./server_process.ts";

export const LOG_FILE = "kvstore.aof";
export const SNAPSHOT_FILE = "kvstore.rdb";

/** A temporary data directory, removed when the scope ends. */
export async function tempDataDir(): Promise<{ readonly path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "kvstore-durability-" });
  return { path, [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }).catch(() => {}) };
}

/** Starts a server on `dataDir` (kept across restarts). Snapshots are off unless the
 * args turn them on, so a test controls when the log is cut. */
export function startOn(dataDir: string, options: Omit<StartOptions, "dataDir"> = {}): Promise<ServerProcess> {
  const args = options.args ?? [];
  const withInterval = args.includes("--snapshot-interval-seconds") ||
      args.some((arg) => arg.startsWith("--snapshot-interval-seconds="))
    ? args
    : [...args, "--snapshot-interval-seconds", "0"];
  return startServer({ ...options, dataDir, args: withInterval });
}

/** The node's digest, key count and seq. */
export async function digestOf(address: string): Promise<{ digest: string; keys: number; seq: number }> {
  using client = new KvClient(address);
  const response = await client.digest();
  return { digest: response.digest, keys: Number(response.keys), seq: Number(response.seq) };
}

/** Flips bits of the byte at `offset` of `path`. */
export async function damageByte(path: string, offset: number, mask = 0x20): Promise<void> {
  const bytes = await Deno.readFile(path);
  if (offset >= bytes.length) throw new Error(`${path} has only ${bytes.length} bytes`);
  bytes[offset] ^= mask;
  await Deno.writeFile(path, bytes);
}

export async function fileSize(path: string): Promise<number | null> {
  try {
    return (await Deno.stat(path)).size;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

/** Runs `tasks` with at most `concurrency` at once (bounded parallelism for a loaded
 * 2-core machine). */
export async function inParallel<T>(items: readonly T[], concurrency: number, task: (item: T) => Promise<void>) {
  const queue = [...items];
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (queue.length > 0) await task(queue.shift()!);
  }));
}
