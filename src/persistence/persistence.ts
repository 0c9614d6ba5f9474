/**
 * What a node needs from its persistence: recovery at start, a log for every write,
 * and two operations replication relies on (a new history after promotion, and a
 * wholesale replacement of the data after a full resync).
 *
 * @module
 */

import type { Store } from "../store/store.ts";
import { type CommitLog, VolatileLog } from "./commit_log.ts";

/** A node's history: the replication id that names it and the seq of the last write
 * in it. Seqs only grow within one history; a promoted replica starts a new one. */
export interface History {
  readonly replid: string;
  readonly seq: number;
}

export interface Persistence {
  /** Where the write pipeline makes batches durable. */
  readonly log: CommitLog;

  /** Loads the saved dataset into `store` (empty when called) and returns the history it
   * ends at; a node with no files starts a new history at seq 0. Called once, before the
   * node serves. Keys past their deadline are loaded too: removing them is the master's
   * decision, made through the write path so replicas hear of it. */
  recover(store: Store): Promise<History>;

  /** Records that a new history begins at `history.seq` under `history.replid` (a
   * replica promoted to master), so a restart resumes it. */
  startHistory(history: History): Promise<void>;

  /** Makes the saved state exactly `store` at `history`, dropping everything saved before:
   * used after a full resync replaced the dataset. Called with no writes pending. */
  replaceWith(store: Store, history: History): Promise<void>;

  /** Flushes, syncs and closes the files. */
  close(): Promise<void>;
}

/** Persistence that keeps nothing: every start is a new, empty history. */
export class VolatilePersistence implements Persistence {
  readonly log: CommitLog = new VolatileLog();

  recover(_store: Store): Promise<History> {
    return Promise.resolve({ replid: newReplid(), seq: 0 });
  }

  startHistory(_history: History): Promise<void> {
    return Promise.resolve();
  }

  replaceWith(_store: Store, _history: History): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    return this.log.close();
  }
}

/** A new replication id: 40 random hex characters, like Redis's. */
export function newReplid(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(20));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}
