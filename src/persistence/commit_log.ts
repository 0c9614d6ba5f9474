/**
 * The contract between the write path and whatever makes writes durable.
 *
 * The write pipeline hands the log one batch at a time, in seq order, and applies the
 * batch to the readable dataset only after `append` resolves. So an append that
 * resolves promises the batch will be found by recovery (to the degree the fsync
 * policy promises), and an append that rejects promises nothing was applied: the
 * pipeline drops the batch and everything staged after it.
 *
 * @module
 */

import type { SequencedCommand } from "../store/command.ts";

export interface CommitLog {
  /**
   * Makes `batch` durable. Resolves once every record is handed to the OS (and synced,
   * when the fsync policy says so). Rejects with a KvError when the records could not be
   * written; the log must then be as if the batch had never been offered, so a later
   * append can succeed once the cause (a full disk) is gone.
   */
  append(batch: readonly SequencedCommand[]): Promise<void>;

  /**
   * Makes every append that resolved before the call durable (fsynced), whatever the
   * fsync policy: for a write that must survive a power cut under `everysec` or `no`
   * (the cluster's rebalancing copies keys that way). Rejects with a KvError when the
   * fsync fails.
   */
  sync(): Promise<void>;

  /** Flushes and syncs what is buffered and releases the files. */
  close(): Promise<void>;
}

/** A log that keeps nothing: the dataset lives only in memory and is lost at exit. */
export class VolatileLog implements CommitLog {
  append(_batch: readonly SequencedCommand[]): Promise<void> {
    return Promise.resolve();
  }

  sync(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
