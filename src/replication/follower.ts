/**
 * The replica's pull link: opens a Sync stream to its master, applies what arrives,
 * acknowledges what is durable, and reconnects with backoff when the stream breaks.
 *
 * Each attempt sends the handshake (the history held and the last committed seq) and
 * handles the master's answer: a partialSync continues the history (renamed, when the
 * master was promoted or restarted), a fullSync loads the dataset beside the live one
 * and switches at the end. Commands are applied strictly in seq order through the
 * {@linkcode ReplicaApplier}, each message's commands staged together so they share one
 * log append, and awaited until durable before the next message is read: the replica
 * is never acknowledged ahead of its own log. A gap or a history change in the stream
 * ends the attempt; the next handshake resyncs. After each message it reports how many
 * it has handled, which is what lets the master bound what it sends ahead (see
 * send_window.ts).
 *
 * Meanwhile the replica serves reads of what it has, possibly stale. A stream silent
 * for longer than the replication timeout (the master pings idle streams every second)
 * is dropped and reopened.
 *
 * @module
 */

import { plural } from "../errors.ts";
import { setImmediate } from "node:timers";
import {
  REPLICA_RECONNECT_DELAY_MS_MAX,
  REPLICA_RECONNECT_DELAY_MS_MIN,
  REPLICATION_CHANNEL_RECONNECT_MS_MAX,
  REPLICATION_CHANNEL_RECONNECT_MS_MIN,
  REPLICATION_TIMEOUT_CONFIRM_MS,
} from "../config/limits.ts";
import type { Logger } from "../logging/logger.ts";
import type { Persistence } from "../persistence/persistence.ts";
import type { WritePipeline } from "../server/write_pipeline.ts";
import type { SequencedCommand } from "../store/command.ts";
import type { Store } from "../store/store.ts";
import { CLIENT_TRANSPORT_LIMITS, createKvstoreClient, grpc } from "../transport/grpc.ts";
import { describeStatus } from "../transport/transport_failure.ts";
import type { SyncMessage, SyncRequest } from "../transport/messages.ts";
import { type LinkEvent, LinkStatus } from "./link_status.ts";
import type { ReplicaApplier } from "./replica_applier.ts";
import { shortReplid } from "./sync_plan.ts";
import { commandFromWire, entryFromWire, int64 } from "./wire.ts";

export interface FollowerOptions {
  /** host:port of the master. */
  readonly masterAddress: string;
  readonly applier: ReplicaApplier;
  readonly pipeline: WritePipeline;
  readonly persistence: Persistence;
  /** This process's id, sent in the handshake. */
  readonly nodeId: string;
  /** The address this replica serves on, for the master's Info. */
  readonly ownAddress: string;
  /** Silence on the stream after which it is dropped, in ms. */
  readonly timeoutMs: number;
  /** The history this node's own continues and where it left it (null: none), for the
   * handshake: set on a node that was a master. */
  readonly previousHistory: () => { readonly replid: string; readonly seq: number } | null;
  /** Called right after a fullSync replaced the dataset, before anything else commits. */
  readonly onDatasetReplaced: (seq: number) => void;
  readonly logger: Logger;
  readonly clock: () => number;
}

type SyncCall = grpc.ClientDuplexStream<SyncRequest, SyncMessage>;

/** Thrown to end an attempt; the message says why, for the log and Info. */
class LinkError extends Error {}

export class Follower {
  readonly masterAddress: string;
  readonly status: LinkStatus;
  #options: FollowerOptions;
  #client: grpc.Client;
  #call: SyncCall | null = null;
  /** The history the current stream carries, once its header arrived. */
  #streamReplid: string | null = null;
  #loadingStore: Store | null = null;
  #masterLastSeq = 0;
  #stopped = false;
  #loop: Promise<void> | null = null;
  #wakeSleep: (() => void) | null = null;
  #ackScheduled = false;
  /** Messages of the current stream handled so far, reported to the master. */
  #handledMessages = 0;

  constructor(options: FollowerOptions) {
    this.#options = options;
    this.masterAddress = options.masterAddress;
    this.status = new LinkStatus(
      { delayMsMin: REPLICA_RECONNECT_DELAY_MS_MIN, delayMsMax: REPLICA_RECONNECT_DELAY_MS_MAX },
      options.clock(),
    );
    // The master decides how large commands may be; this side accepts what it sends.
    this.#client = createKvstoreClient(options.masterAddress, CLIENT_TRANSPORT_LIMITS, {
      reconnect: { initialMs: REPLICATION_CHANNEL_RECONNECT_MS_MIN, maxMs: REPLICATION_CHANNEL_RECONNECT_MS_MAX },
    });
  }

  /** The master's last seq, as last heard from it. */
  get masterLastSeq(): number {
    return Math.max(this.#masterLastSeq, this.#options.applier.staging.committedSeq);
  }

  /** Starts following; attempts repeat until {@linkcode Follower.stop}. */
  start(): void {
    this.#options.logger.info(`Following master ${this.masterAddress}`, {
      replid: shortReplid(this.#options.applier.replid),
      seq: this.#options.applier.staging.committedSeq,
    });
    this.#loop ??= this.#run();
  }

  /** Stops following and resolves once no attempt is running; a fullSync being loaded
   * is abandoned, the data the replica had is kept. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#call?.cancel();
    this.#wakeSleep?.();
    await this.#loop;
    this.#client.close();
    this.status.stopped();
  }

  /** Called after each commit on this node: acknowledges the new committed seq to the
   * master, once per event-loop turn however many batches committed. */
  noteCommitted(): void {
    if (this.#streamReplid !== null) this.#scheduleAck();
  }

  /** Sends an acknowledgement at the end of this event-loop turn, one however many
   * commits and messages asked for it. */
  #scheduleAck(): void {
    if (this.#ackScheduled || this.#call === null) return;
    this.#ackScheduled = true;
    setImmediate(() => {
      this.#ackScheduled = false;
      this.#sendAck();
    });
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      this.#log(this.status.connecting());
      let error: string;
      try {
        await this.#attempt();
        error = "the master ended the stream";
      } catch (caught) {
        error = describe(caught);
        if (caught instanceof Error && (caught as grpc.ServiceError).code === grpc.status.UNIMPLEMENTED) {
          if (!this.#stopped) this.#log(this.status.pushOnly(this.#options.clock()));
        }
      }
      if (this.#stopped) break;
      this.#log(this.status.down(error, this.#options.clock()));
      const delayMs = this.status.state === "push-only" ? REPLICA_RECONNECT_DELAY_MS_MAX : this.status.nextDelayMs();
      await this.#sleep(delayMs);
    }
  }

  /** One connection: handshake, then messages until the stream ends or fails. */
  async #attempt(): Promise<void> {
    const { applier, pipeline, timeoutMs } = this.#options;
    applier.abortFullSync();
    // The handshake must name a seq that is durable here, so commands staged by pushes
    // commit first.
    await pipeline.drain();
    if (this.#stopped) return;
    const call = (this.#client as unknown as { Sync(): SyncCall }).Sync();
    this.#call = call;
    this.#streamReplid = null;
    this.#handledMessages = 0;
    let timedOut = false;
    let watchdog: ReturnType<typeof setTimeout> | undefined = undefined;
    const arm = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => {
        // Overdue timers run before pending reads: after this process was paused (a stop
        // signal, a long stall), messages that arrived meanwhile are still unread. Give
        // them a moment to arrive (which clears this second timer) before calling the
        // link silent.
        watchdog = setTimeout(() => {
          timedOut = true;
          call.cancel();
        }, REPLICATION_TIMEOUT_CONFIRM_MS);
      }, timeoutMs);
    };
    try {
      call.write(this.#handshake());
      arm();
      for await (const message of call as AsyncIterable<SyncMessage>) {
        clearTimeout(watchdog);
        await this.#handle(message);
        if (this.#stopped) return;
        this.#handledMessages++;
        this.#scheduleAck();
        arm();
      }
    } catch (error) {
      if (timedOut) throw new LinkError(`no message from the master for ${timeoutMs} ms`);
      throw error;
    } finally {
      clearTimeout(watchdog);
      this.#call = null;
      this.#streamReplid = null;
      this.#loadingStore = null;
      applier.abortFullSync();
      call.cancel();
    }
  }

  #handshake(): SyncRequest {
    const { applier, nodeId, ownAddress, previousHistory } = this.#options;
    const seq = applier.staging.committedSeq;
    const previous = previousHistory();
    return {
      replica_id: nodeId,
      replid: applier.replid,
      seq,
      address: ownAddress,
      acked_seq: seq,
      handled_messages: 0,
      reports_handled: true,
      previous_replid: previous?.replid ?? "",
      previous_last_seq: previous?.seq ?? 0,
    };
  }

  async #handle(message: SyncMessage): Promise<void> {
    switch (message.type) {
      case "SYNC_PARTIAL":
        return await this.#partialSync(message);
      case "SYNC_FULL":
        return await this.#beginFullSync(message);
      case "SYNC_SNAPSHOT":
        return this.#loadChunk(message);
      case "SYNC_FULL_END":
        return await this.#finishFullSync(message);
      case "SYNC_COMMANDS":
        return await this.#applyCommands(message);
      case "SYNC_PING":
        // Answered by the acknowledgement that follows every message handled.
        this.#masterLastSeq = Math.max(this.#masterLastSeq, int64(message.seq, "seq"));
        return;
      default:
        throw new LinkError(`the master sent a Sync message of unknown type ${JSON.stringify(message.type)}`);
    }
  }

  async #partialSync(message: SyncMessage): Promise<void> {
    const { applier, persistence, clock } = this.#options;
    const seq = int64(message.seq, "seq");
    // Both must match: a command staged but not yet durable (a push from another master,
    // during a split-brain failover) would otherwise be filed under the renamed history.
    if (seq !== applier.staging.committedSeq || seq !== applier.lastSeq) {
      throw new LinkError(
        `the master's partialSync starts after seq ${seq}, not this replica's ${applier.staging.committedSeq}` +
          (applier.lastSeq === applier.staging.committedSeq ? "" : ` (with writes staged up to ${applier.lastSeq})`),
      );
    }
    if (message.replid !== applier.replid) {
      // The master continues our history under a new name (it was promoted or restarted).
      applier.renameHistory(message.replid);
      await persistence.startHistory({ replid: message.replid, seq });
    }
    this.#streamReplid = message.replid;
    this.#log(this.status.up(`partialSync after seq ${seq}`, clock()));
  }

  async #beginFullSync(message: SyncMessage): Promise<void> {
    const { applier, pipeline, logger } = this.#options;
    const dropped = int64(message.dropped, "dropped");
    this.#log(this.status.syncing(message.reason || "the master chose a fullSync"));
    if (dropped > 0) {
      logger.warn(`This replica was ahead of its master's history: the fullSync drops ${plural(dropped, "command")}`, {
        dropped,
        lastSeq: applier.staging.committedSeq,
      });
    }
    await pipeline.drain();
    this.#loadingStore = applier.beginFullSync(message.replid, int64(message.seq, "seq"));
  }

  #loadChunk(message: SyncMessage): void {
    const store = this.#loadingStore;
    if (store === null) throw new LinkError("the master sent snapshot entries outside a fullSync");
    for (const entry of message.entries) store.apply(entryFromWire(entry));
  }

  async #finishFullSync(message: SyncMessage): Promise<void> {
    const { applier, pipeline, persistence, clock, onDatasetReplaced } = this.#options;
    if (this.#loadingStore === null) throw new LinkError("the master ended a fullSync that had not begun");
    await pipeline.drain();
    const keys = this.#loadingStore.size;
    const history = applier.finishFullSync();
    this.#loadingStore = null;
    onDatasetReplaced(history.seq);
    applier.suspend();
    try {
      await persistence.replaceWith(applier.staging.store, history);
    } catch (error) {
      // The files still hold the old dataset: claim no history, so the next attempt is
      // a fullSync again rather than commands the log cannot follow.
      applier.forgetHistory();
      throw error;
    } finally {
      applier.resume();
    }
    this.#streamReplid = history.replid;
    this.#masterLastSeq = Math.max(this.#masterLastSeq, int64(message.seq, "seq"));
    this.#log(this.status.up(`fullSync of ${plural(keys, "key")} at seq ${history.seq}`, clock()));
  }

  async #applyCommands(message: SyncMessage): Promise<void> {
    const { applier, pipeline, clock } = this.#options;
    const replid = this.#streamReplid;
    if (replid === null) throw new LinkError("the master sent commands before a partialSync or fullSync");
    const nowMs = clock();
    let last: SequencedCommand | null = null;
    for (const wire of message.commands) {
      const { seq, command } = commandFromWire(wire, nowMs);
      this.#masterLastSeq = Math.max(this.#masterLastSeq, seq);
      const verdict = applier.offer(replid, seq, command);
      if (verdict.kind === "applied") last = verdict.staged;
      else if (verdict.kind === "gap") {
        throw new LinkError(`the stream skipped from seq ${verdict.lastSeq} to ${seq}; resyncing`);
      } else if (verdict.kind !== "duplicate") {
        throw new LinkError(`the stream's command seq ${seq} cannot be applied (${verdict.kind}); resyncing`);
      }
    }
    // Every command of the message is staged; the last one committing means all did.
    if (last !== null) await pipeline.commit(last);
  }

  /** Tells the master the last seq durable here (-1 while a fullSync loads: none of its
   * history yet) and how many of the stream's messages were handled. */
  #sendAck(): void {
    const call = this.#call;
    if (call === null) return;
    const seq = this.#streamReplid === null ? -1 : this.#options.applier.staging.committedSeq;
    call.write({
      replica_id: "",
      replid: "",
      seq: 0,
      address: "",
      acked_seq: seq,
      handled_messages: this.#handledMessages,
      reports_handled: false,
    });
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#wakeSleep = null;
        resolve();
      }, ms);
      this.#wakeSleep = () => {
        clearTimeout(timer);
        this.#wakeSleep = null;
        resolve();
      };
    });
  }

  #log(event: LinkEvent | null): void {
    if (event === null) return;
    this.#options.logger[event.level](event.message, { master: this.masterAddress });
  }
}

/** One line saying why an attempt failed. */
function describe(error: unknown): string {
  const serviceError = error as Partial<grpc.ServiceError>;
  if (typeof serviceError.code === "number" && typeof serviceError.details === "string") {
    // grpc-js appends an empty "Resolution note:" to connection errors.
    return describeStatus(serviceError.code, serviceError.details.replace(/\s*Resolution note:\s*$/, ""));
  }
  return error instanceof Error ? error.message : String(error);
}
