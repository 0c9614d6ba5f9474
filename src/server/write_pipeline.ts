/**
 * The write path's shell: batches staged commands, makes each batch durable through the
 * {@linkcode CommitLog}, then commits it and answers the clients who wrote it.
 *
 * One batch is in flight at a time. Commands staged while it is being written wait in
 * the staging queue and form the next batch, so under load many writes share one write
 * (and, with `--appendfsync always`, one fsync): group commit. The first batch after an
 * idle spell waits for the end of the current event-loop turn (setImmediate), so the
 * requests that arrived in that turn travel together.
 *
 *   handler --stage--> WriteStaging --takeBatch--> CommitLog.append --> commit --> answer
 *                                                                   \-> onCommit (backlog)
 *
 * Order of effects per batch: log, then store, then the onCommit listeners (replication
 * backlog), then the writers' promises. A replica therefore never receives a command its
 * master could lose in a crash, and a client never hears "ok" for a write a reader
 * cannot yet see.
 *
 * @module
 */

import { setImmediate } from "node:timers";
import {
  WRITE_CALL_OVERHEAD_BYTES,
  WRITE_FAILURE_REPORT_INTERVAL_MS,
  WRITE_QUEUE_BYTES_MAX,
} from "../config/limits.ts";
import { nextTurn } from "../event_loop.ts";
import { KvError, plural } from "../errors.ts";
import type { Logger } from "../logging/logger.ts";
import type { CommitLog } from "../persistence/commit_log.ts";
import type { SequencedCommand } from "../store/command.ts";
import type { WriteStaging } from "../store/staging.ts";

/** Called with each batch after it is committed, in seq order. */
export type CommitListener = (batch: readonly SequencedCommand[]) => void;

/** Failed batches since the log last took one, for the rate-limited report. */
interface FailureSpell {
  /** Batches and writes failed since the last line logged about them. */
  batches: number;
  writes: number;
  /** All failed since the spell began. */
  batchesTotal: number;
  writesTotal: number;
  lastReportMs: number;
}

export class WritePipeline {
  readonly staging: WriteStaging;
  #log: CommitLog;
  #logger: Logger;
  #clock: () => number;
  #failing: FailureSpell | null = null;
  #listeners: CommitListener[] = [];
  /** The writers waiting for the commands now queued, which the next batch takes: all
   * of a batch's writers share one promise, so a write costs no promise of its own. */
  #queuedWriters: PromiseWithResolvers<void> | null = null;
  /** The writers of the batch the log is appending now. */
  #batchWriters: PromiseWithResolvers<void> | null = null;
  /** Calls waiting on #queuedWriters and on #batchWriters: each holds its client call's
   * state until answered, which admitWrite charges (WRITE_CALL_OVERHEAD_BYTES). */
  #queuedCalls = 0;
  #batchCalls = 0;
  /** Set by {@linkcode drainWithin} when the log did not take the writes in time: the
   * error every writer still waiting, and every later one, gets. */
  #abandoned: KvError | null = null;
  #flushScheduled = false;
  #flushing: Promise<void> | null = null;
  /** Batches the log refused so far: a wait for commands staged earlier (see
   * {@linkcode committedUpTo}) fails if this moves, since the failure dropped them. */
  #failures = 0;

  #queueBytesMax: number;
  #callOverheadBytes: number;

  /** Options: `queueBytesMax` and `callOverheadBytes`, see
   * {@linkcode WritePipeline.admitWrite} (defaults WRITE_QUEUE_BYTES_MAX and
   * WRITE_CALL_OVERHEAD_BYTES); `clock` (unix ms) paces the reports of a log that keeps
   * failing. */
  constructor(
    staging: WriteStaging,
    log: CommitLog,
    logger: Logger,
    options: { queueBytesMax?: number; callOverheadBytes?: number; clock?: () => number } = {},
  ) {
    this.staging = staging;
    this.#log = log;
    this.#logger = logger;
    this.#queueBytesMax = options.queueBytesMax ?? WRITE_QUEUE_BYTES_MAX;
    this.#callOverheadBytes = options.callOverheadBytes ?? WRITE_CALL_OVERHEAD_BYTES;
    this.#clock = options.clock ?? Date.now;
  }

  /** Calls waiting for their writes to be committed. */
  get waitingCalls(): number {
    return this.#queuedCalls + this.#batchCalls;
  }

  /**
   * Called before a client write is staged: refuses it with UNAVAILABLE while more than
   * `queueBytesMax` of writes already wait for the log, which means the disk is slow or
   * stalled; taking more would only grow memory (the clients of the waiting writes may
   * have given up and be retrying). What waits is counted as the staged commands' bytes
   * and `callOverheadBytes` for each call waiting, whose state is held until it is
   * answered. The bound is the limit plus one call. Writes the node must take do not
   * ask: a replica's stream from its master, expiry deletions.
   */
  admitWrite(): void {
    const waitingBytes = this.staging.pendingBytes + this.waitingCalls * this.#callOverheadBytes;
    if (waitingBytes <= this.#queueBytesMax) return;
    const waiting = `${mib(waitingBytes)} of writes (${plural(this.waitingCalls, "call")})`;
    throw new KvError(
      "UNAVAILABLE",
      `pipeline: Cannot take the write now: ${waiting} already wait for the log, over the limit of ` +
        `${mib(this.#queueBytesMax)}; the disk is slow or stalled (kvstore info shows log_error if it failed). ` +
        "Nothing was applied; retry in a moment",
    );
  }

  /** Registers a listener for committed batches. */
  onCommit(listener: CommitListener): void {
    this.#listeners.push(listener);
  }

  /** Resolves when `staged` is committed; rejects if its batch could not be made durable.
   * Call it in the turn that staged the command, while it is still queued (a batch is
   * taken on a later turn). */
  commit(staged: SequencedCommand): Promise<void> {
    if (this.#abandoned !== null) return Promise.reject(this.#abandoned);
    if (!this.staging.isQueued(staged)) {
      throw new Error(`pipeline: Cannot wait for seq ${staged.seq}: it is not queued (wait right after staging)`);
    }
    this.#schedule();
    this.#queuedWriters ??= Promise.withResolvers<void>();
    this.#queuedCalls++;
    return this.#queuedWriters.promise;
  }

  /** Commits what is staged without anyone waiting for the answer (expiry deletions); a
   * failure is logged, and the commands are dropped like any other in a failed batch. */
  flushSoon(): void {
    this.#schedule();
  }

  /**
   * Resolves once every command staged before the call is committed; rejects with
   * UNAVAILABLE if a batch fails meanwhile (it drops what was queued behind it, and a
   * seq dropped may be staged again by another write). For a call whose answer rests on
   * writes it did not stage itself: an MSet only_if_absent that skipped a key because a
   * write to it is on its way to the log.
   */
  async committedUpTo(seq: number): Promise<void> {
    const failures = this.#failures;
    while (this.staging.committedSeq < seq) {
      if (this.#abandoned !== null) throw this.#abandoned;
      if (this.#failures !== failures || this.staging.lastSeq < seq) {
        throw new KvError(
          "UNAVAILABLE",
          `pipeline: Cannot confirm the writes up to seq ${seq}: the log refused them (kvstore info shows ` +
            `log_error); retry in a moment`,
        );
      }
      if (this.staging.hasQueued) this.#schedule();
      if (this.#flushing !== null) await this.#flushing;
      else await nextTurn();
    }
  }

  /** Fsyncs the log past every batch committed so far, whatever the fsync policy (see
   * CommitLog.sync). */
  sync(): Promise<void> {
    return this.#log.sync();
  }

  /** Resolves when nothing staged remains uncommitted. Commands staged without a
   * {@linkcode commit} or {@linkcode flushSoon} (a replica's message that failed half-way)
   * are flushed too, rather than waited for forever. Once {@linkcode drainWithin} gave
   * up on the log, resolves at once. */
  async drain(): Promise<void> {
    while (
      this.#abandoned === null &&
      (this.#flushing !== null || this.#flushScheduled || this.staging.pendingCount > 0)
    ) {
      if (this.staging.hasQueued) this.#schedule();
      if (this.#flushing !== null) await this.#flushing;
      else await nextTurn();
    }
  }

  /**
   * {@linkcode drain} with a bound, for a node shutting down: resolves with 0 once nothing
   * staged remains uncommitted, or after `timeoutMs` with the number of writes still
   * waiting for the log, whose append has not finished (a stalled disk: an fsync or a
   * write that hangs). Those writes are then given up, so that nothing else in the
   * shutdown waits for the disk: their writers get `abandoned` (they were not
   * acknowledged; the log may or may not end up holding them, as after a crash), and from
   * then on a commit fails with it, nothing more goes to the log, and drain resolves at
   * once. The pipeline is not usable afterwards.
   */
  async drainWithin(timeoutMs: number, abandoned: KvError): Promise<number> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), timeoutMs));
    try {
      if (await Promise.race([this.drain().then(() => true), timedOut])) return 0;
    } finally {
      clearTimeout(timer);
    }
    const waiting = this.staging.pendingCount;
    this.#abandoned = abandoned;
    this.#batchWriters?.reject(abandoned);
    this.#queuedWriters?.reject(abandoned);
    this.#batchWriters = null;
    this.#queuedWriters = null;
    this.#batchCalls = 0;
    this.#queuedCalls = 0;
    return waiting;
  }

  #schedule(): void {
    if (this.#flushScheduled || this.#flushing !== null || this.#abandoned !== null) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      this.#flushing = this.#flush().finally(() => {
        this.#flushing = null;
        if (this.staging.hasQueued) this.#schedule();
      });
    });
  }

  async #flush(): Promise<void> {
    while (this.staging.hasQueued && this.#abandoned === null) {
      const batch = this.staging.takeBatch();
      const writers = this.#queuedWriters;
      this.#queuedWriters = null;
      this.#batchWriters = writers;
      this.#batchCalls = this.#queuedCalls;
      this.#queuedCalls = 0;
      try {
        await this.#log.append(batch);
      } catch (error) {
        this.#batchWriters = null;
        this.#batchCalls = 0;
        this.#fail(error, writers);
        continue;
      }
      this.#batchWriters = null;
      this.#batchCalls = 0;
      this.staging.commit(batch);
      if (this.#failing !== null) {
        this.#logger.info("The log takes writes again", {
          failedBatches: this.#failing.batchesTotal,
          failedWrites: this.#failing.writesTotal,
        });
        this.#failing = null;
      }
      for (const listener of this.#listeners) {
        try {
          listener(batch);
        } catch (error) {
          this.#logger.error("A commit listener failed", { error: String(error) });
        }
      }
      writers?.resolve();
    }
  }

  /** Drops every staged command after a failed append and tells their writers why:
   * those of the failed batch (`writers`) and those of the commands queued behind it. */
  #fail(error: unknown, writers: PromiseWithResolvers<void> | null): void {
    const failure = error instanceof KvError
      ? error
      : new KvError("UNAVAILABLE", `log: Cannot append: ${error instanceof Error ? error.message : String(error)}`);
    this.#failures++;
    const dropped = this.staging.abort();
    this.#reportFailure(dropped.length, failure.message);
    writers?.reject(failure);
    this.#queuedWriters?.reject(failure);
    this.#queuedWriters = null;
    this.#queuedCalls = 0;
  }

  /** Logs the first failed batch at once, then while the log keeps failing (a full disk
   * fails every batch, expiry deletions ten times a second) one summary per
   * WRITE_FAILURE_REPORT_INTERVAL_MS, so the failure is not drowned in copies of itself. */
  #reportFailure(writes: number, error: string): void {
    const nowMs = this.#clock();
    const spell = this.#failing;
    if (spell === null) {
      this.#failing = { batches: 0, writes: 0, batchesTotal: 1, writesTotal: writes, lastReportMs: nowMs };
      this.#logger.error("Writes failed: the log could not take them", { writes, error });
      return;
    }
    spell.batches++;
    spell.writes += writes;
    spell.batchesTotal++;
    spell.writesTotal += writes;
    if (nowMs - spell.lastReportMs < WRITE_FAILURE_REPORT_INTERVAL_MS) return;
    this.#logger.error("Writes still fail: the log cannot take them", {
      batches: spell.batches,
      writes: spell.writes,
      seconds: Math.round((nowMs - spell.lastReportMs) / 1000),
      error,
    });
    spell.batches = 0;
    spell.writes = 0;
    spell.lastReportMs = nowMs;
  }
}

function mib(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}
