/**
 * The replica's ReplicateCommand handler: commands pushed by a master, ours with
 * --replicas or the C++ store's.
 *
 * A pushed command goes through the same {@linkcode ReplicaApplier} as pulled ones, so a
 * command that arrives both ways is applied once. The answer is sent once the command is
 * durable here, and carries `last_applied_sequence`, the last seq this replica holds in
 * the pusher's numbering, so a master can resend from there.
 *
 * Pushes may overtake each other in flight (a master with several calls open), so a
 * command that arrives ahead of its turn waits, up to PUSH_GAP_WAIT_MS, for the ones
 * before it. If they do not come:
 *
 * - from our master (its pushes name a replid), the push is refused with the last seq
 *   held; the master resends, or the pull stream fills the gap;
 * - from the C++ store's master, which cannot resync a replica, the missing commands are
 *   skipped with an error in the log: stopping for good would leave the replica further
 *   behind with every write.
 *
 * The C++ master numbers commands from 0 and names no history; its first push makes the
 * replica follow it under FOREIGN_REPLID (see replica_applier.ts), provided the replica
 * is not following a kvstore master by Sync at that moment.
 *
 * @module
 */

import { plural } from "../errors.ts";
import { PUSH_GAP_WAIT_MS, PUSH_WAITERS_MAX } from "../config/limits.ts";
import type { Logger } from "../logging/logger.ts";
import type { Persistence } from "../persistence/persistence.ts";
import type { WritePipeline } from "../server/write_pipeline.ts";
import type { ReplicationCommand, ReplicationResponse } from "../transport/messages.ts";
import { FOREIGN_REPLID, foreignIdToSeq, type ReplicaApplier, seqToForeignId } from "./replica_applier.ts";
import { shortReplid } from "./sync_plan.ts";
import { commandFromWire } from "./wire.ts";

export interface PushReceiverOptions {
  /** This process's id, named in every answer. */
  readonly nodeId: string;
  readonly applier: ReplicaApplier;
  readonly pipeline: WritePipeline;
  readonly persistence: Persistence;
  /** Whether a master that names no history may be followed now: not while a Sync
   * stream from a kvstore master is up. */
  readonly mayFollowForeignMaster: () => boolean;
  /** Called right after the dataset or its seq was reset, before anything commits. */
  readonly onDatasetReplaced: (seq: number) => void;
  readonly logger: Logger;
  readonly clock: () => number;
}

export class PushReceiver {
  #options: PushReceiverOptions;
  #waiters = new Set<() => void>();
  /** The dataset replacements under way (following a foreign master, skipping its missing
   * commands), one after another: two at once (pushes that gave up on their gaps together)
   * could finish out of order, leaving the files at one seq and the staging at another,
   * after which the log refused every write (INTERNAL "Cannot append seq ..."). */
  #replacing: Promise<void> = Promise.resolve();

  constructor(options: PushReceiverOptions) {
    this.#options = options;
  }

  /** Wakes pushes waiting for their turn or for a duplicate to become durable; called
   * after every commit and every staged push. */
  notify(): void {
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const wake of waiters) wake();
  }

  /** Applies one pushed command; resolves with the answer for the pusher. Throws an
   * INVALID_ARGUMENT KvError for a malformed command. */
  async receive(request: ReplicationCommand): Promise<ReplicationResponse> {
    const { applier, pipeline, clock } = this.#options;
    const { seq: wireSeq, command } = commandFromWire(request, clock());
    const foreign = (request.replid ?? "") === "";
    const replid = foreign ? FOREIGN_REPLID : request.replid!;
    const seq = foreign ? foreignIdToSeq(wireSeq) : wireSeq;
    if (foreign && applier.replid !== FOREIGN_REPLID) {
      if (!this.#options.mayFollowForeignMaster()) {
        return this.#answer(false, "this replica follows a kvstore master by Sync; pushes must name its replid");
      }
      await this.#followForeignMaster(wireSeq);
    }
    const deadlineMs = clock() + PUSH_GAP_WAIT_MS;
    while (true) {
      const verdict = applier.offer(replid, seq, command);
      switch (verdict.kind) {
        case "applied":
          this.notify();
          await pipeline.commit(verdict.staged);
          return this.#answer(true, "");
        case "duplicate":
          if (foreign && wireSeq === 0 && applier.lastSeq > seq) this.#warnRenumbered();
          // Answer once it is durable, whichever road brought it first.
          while (applier.staging.committedSeq < seq && applier.replid === replid) {
            if ((await this.#waitForChange(deadlineMs)) !== "changed") break;
          }
          return this.#answer(applier.staging.committedSeq >= seq, "");
        case "otherHistory":
          return this.#answer(
            false,
            `this replica holds history ${shortReplid(applier.replid)}, not ${shortReplid(replid)}; ` +
              "it resyncs by pulling from its master",
          );
        case "loading":
          return this.#answer(false, "a fullSync is loading; resend later");
        case "gap": {
          const waited = await this.#waitForChange(deadlineMs);
          if (waited === "changed") continue;
          if (waited === "busy") return this.#answer(false, `${PUSH_WAITERS_MAX} pushes already wait; resend later`);
          if (!foreign) return this.#answer(false, `waiting for seq ${verdict.lastSeq + 1} first`);
          await this.#skipTo(seq);
          continue;
        }
      }
    }
  }

  /**
   * A master that names no history pushed its first id again after later ones: most
   * likely it restarted and numbers its commands from 0 again. Its pushes are then taken
   * for duplicates of the ones held, and ignored, until its ids pass those; nothing tells
   * a restart from a late resend of id 0, so the replica cannot safely follow on its own.
   * Said loudly, once per such push.
   */
  #warnRenumbered(): void {
    const { applier, logger } = this.#options;
    logger.error(
      `The master pushed id 0 again after id ${seqToForeignId(applier.lastSeq)}: if it restarted, its writes are ` +
        `ignored as already held until its ids pass ${seqToForeignId(applier.lastSeq)}; restart this replica ` +
        "with an empty data directory to follow it afresh",
    );
  }

  /** The answer, with the last seq held in the pusher's numbering. */
  #answer(success: boolean, detail: string): ReplicationResponse {
    const { applier } = this.#options;
    const committed = applier.staging.committedSeq;
    const lastApplied = applier.replid === FOREIGN_REPLID ? seqToForeignId(committed) : committed;
    return {
      success,
      last_applied_sequence: String(lastApplied),
      replid: applier.replid,
      detail,
      replica_id: this.#options.nodeId,
    };
  }

  /** Resolves "changed" when something was staged or committed, "timeout" at the
   * deadline, "busy" at once when too many pushes already wait. */
  #waitForChange(deadlineMs: number): Promise<"changed" | "timeout" | "busy"> {
    const waitMs = deadlineMs - this.#options.clock();
    if (waitMs <= 0) return Promise.resolve("timeout");
    if (this.#waiters.size >= PUSH_WAITERS_MAX) return Promise.resolve("busy");
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        resolve("changed");
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(wake);
        resolve("timeout");
      }, waitMs);
      this.#waiters.add(wake);
    });
  }

  #followForeignMaster(id: number): Promise<void> {
    return this.#serially(() => this.#adoptForeignMaster(id));
  }

  async #adoptForeignMaster(id: number): Promise<void> {
    const { applier, pipeline, persistence, logger, onDatasetReplaced } = this.#options;
    await pipeline.drain();
    if (applier.replid === FOREIGN_REPLID) return;
    const dropped = applier.adoptForeignHistory(id);
    onDatasetReplaced(applier.staging.committedSeq);
    logger.warn("Following a master that pushes commands without a history (the C++ store)", {
      firstId: id,
      droppedKeys: dropped,
    });
    if (id > 0) logger.warn(`Commands before id ${id} were pushed before this replica listened; it lacks them`);
    try {
      await this.#suspendedWhile(() =>
        persistence.replaceWith(applier.staging.store, { replid: FOREIGN_REPLID, seq: applier.staging.committedSeq })
      );
    } catch (error) {
      // The files still hold the old dataset: the next push adopts the master afresh.
      applier.forgetHistory();
      throw error;
    }
    this.notify();
  }

  /** Gives up on the commands before `seq` of a foreign history. */
  #skipTo(seq: number): Promise<void> {
    return this.#serially(() => this.#skipFilesTo(seq));
  }

  async #skipFilesTo(seq: number): Promise<void> {
    const { applier, pipeline, persistence, logger, onDatasetReplaced } = this.#options;
    await pipeline.drain();
    if (applier.replid !== FOREIGN_REPLID || applier.lastSeq >= seq - 1) return;
    // The seq jumps past commands the log never saw, and a log's seqs have no gaps: the
    // files start over from the dataset as it is, at the new seq (rare: an error path).
    // They are written first: if they cannot be, nothing was skipped, and the next push
    // tries again.
    let skipped = 0;
    await this.#suspendedWhile(async () => {
      await persistence.replaceWith(applier.staging.store, { replid: FOREIGN_REPLID, seq: seq - 1 });
      skipped = applier.skipTo(seq);
    });
    onDatasetReplaced(seq - 1);
    logger.error(
      `The master never sent ${plural(skipped, "command")} before id ${
        seqToForeignId(seq)
      }; skipping them, so this replica ` +
        "may differ from its master (a master that cannot resync its replicas): restart the replica empty to repair",
      { skipped },
    );
    this.notify();
  }

  /** Runs `work` once the replacements queued before it are over; each checks anew,
   * after them, whether it is still needed. */
  #serially(work: () => Promise<void>): Promise<void> {
    const result = this.#replacing.then(work);
    this.#replacing = result.catch(() => {});
    return result;
  }

  async #suspendedWhile(work: () => Promise<void>): Promise<void> {
    this.#options.applier.suspend();
    try {
      await work();
    } finally {
      this.#options.applier.resume();
    }
  }
}
