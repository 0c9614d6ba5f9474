/**
 * Helpers shared by the persistence unit tests: a FilePersistence over a given storage
 * with deterministic ids and a quiet logger, and the write path in miniature (stage,
 * append, commit), as the node's WritePipeline runs it.
 *
 * @module
 */

import { Logger } from "../logging/logger.ts";
import type { WriteCommand } from "../store/command.ts";
import { WriteStaging } from "../store/staging.ts";
import { Store } from "../store/store.ts";
import type { CrashHook } from "./crashpoints.ts";
import type { FsyncPolicy } from "./file_log.ts";
import { FilePersistence, type PersistenceSizes } from "./file_persistence.ts";
import type { Storage } from "./storage.ts";

/** Small sizes, so a handful of keys spans several frames and chunks. */
export const SMALL_SIZES: Partial<PersistenceSizes> = {
  snapshotChunkBytes: 64,
  logFrameTargetBytes: 64,
  readChunkBytes: 50,
};

export interface Opened {
  readonly persistence: FilePersistence;
  readonly staging: WriteStaging;
  readonly store: Store;
  /** Log lines written, for assertions. */
  readonly lines: string[];
}

let idCounter = 0;

/** Creates a FilePersistence on `storage` and recovers from it. */
export async function openPersistence(
  storage: Storage,
  options: { fsync?: FsyncPolicy; crash?: CrashHook; sizes?: Partial<PersistenceSizes>; clock?: () => number } = {},
): Promise<Opened> {
  const lines: string[] = [];
  const logger = new Logger({ level: "debug", format: "text", sink: (line) => lines.push(line) });
  const persistence = new FilePersistence({
    storage,
    dataDir: "/data",
    fsync: options.fsync ?? "always",
    logger,
    clock: options.clock ?? (() => 1_764_000_000_000),
    crash: options.crash,
    newId: () => `id${(++idCounter).toString(16).padStart(6, "0")}`,
    sizes: options.sizes ?? SMALL_SIZES,
  });
  const store = new Store();
  const history = await persistence.recover(store);
  const staging = new WriteStaging(store, history.seq);
  return { persistence, staging, store, lines };
}

/** Stages `commands` as one batch, appends it and commits it, as the pipeline does; on a
 * failed append, aborts the staged commands and rethrows. */
export async function writeBatch(opened: Opened, commands: readonly WriteCommand[]): Promise<void> {
  for (const command of commands) opened.staging.stage(command);
  const batch = opened.staging.takeBatch();
  try {
    await opened.persistence.log.append(batch);
  } catch (error) {
    opened.staging.abort();
    throw error;
  }
  opened.staging.commit(batch);
}

/** The store's entries as a sorted plain object, for deepEqual. */
export function contents(store: Store): Record<string, string> {
  const result: Record<string, string> = {};
  const keys = [...store.entries()].map(([key]) => key).sort();
  for (const key of keys) {
    const entry = store.peek(key)!;
    result[key] = entry.expiresAtMs === null ? entry.value : `${entry.value}@${entry.expiresAtMs}`;
  }
  return result;
}

export function set(key: string, value: string, expiresAtMs: number | null = null): WriteCommand {
  return { kind: "set", key, value, expiresAtMs };
}

export function del(key: string): WriteCommand {
  return { kind: "delete", key };
}

export function expireAt(key: string, expiresAtMs: number): WriteCommand {
  return { kind: "expireAt", key, expiresAtMs };
}
