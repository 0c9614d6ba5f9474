/**
 * The master's side of pull replication: one session per Sync or StreamReplication
 * stream, each a cursor into the shared {@linkcode Backlog}.
 *
 * A Sync session reads the replica's handshake, asks {@linkcode planSync} how the replica
 * catches up, sends either the partialSync header or the whole dataset in chunks (read
 * from the live store a chunk per event-loop turn, so the master keeps serving), then
 * streams commands as they are committed, with a ping when idle. The replica's
 * acknowledgements on the same stream feed the {@linkcode ReplicaRegistry}.
 *
 * Commands reach the backlog from the write pipeline's commit listener, after the log
 * holds them, so no replica ever receives a command its master could lose in a crash.
 *
 * A Sync session sends only while the messages its replica has not yet reported handled
 * stay under SYNC_UNHANDLED_BYTES_MAX ({@linkcode SendWindow}): the transport accepts
 * every write whether or not the peer reads, so that bound is what keeps a slow or
 * paused replica from making its master buffer every write. A session whose replica
 * reads more slowly than the master writes falls out of the backlog; it is then closed
 * with RESOURCE_EXHAUSTED and the replica resyncs. (StreamReplication clients report
 * nothing, so their streams have no such bound; the transport's keepalive closes the
 * stream of one that stops answering.)
 *
 * @module
 */

import { nextTurn } from "../event_loop.ts";
import {
  REPLICA_STREAMS_MAX,
  REPLICATION_PING_INTERVAL_MS,
  SYNC_HANDSHAKE_TIMEOUT_MS,
  SYNC_MESSAGE_BYTES_MAX,
  SYNC_MESSAGE_ITEMS_MAX,
  SYNC_UNHANDLED_BYTES_MAX,
} from "../config/limits.ts";
import { KvError } from "../errors.ts";
import type { Logger } from "../logging/logger.ts";
import { GRPC_STATUS, statusDetails } from "../server/status.ts";
import type { WriteStaging } from "../store/staging.ts";
import { grpc } from "../transport/grpc.ts";
import type {
  ReplicationCommand,
  ReplicationStreamRequest,
  SyncMessage,
  SyncRequest,
  WireEntry,
} from "../transport/messages.ts";
import type { Backlog, BacklogEntry } from "./backlog.ts";
import type { ReplicaRecord, ReplicaRegistry } from "./replica_registry.ts";
import { SendWindow } from "./send_window.ts";
import { StreamClosedError, StreamWriter } from "./stream_writer.ts";
import { type MasterPosition, planSync } from "./sync_plan.ts";
import { checkReplicaNaming, commandToWire, entryToWire, int64, syncMessageBytes, wireItemBytes } from "./wire.ts";

export interface MasterStreamsOptions {
  readonly staging: WriteStaging;
  readonly backlog: () => Backlog;
  readonly registry: ReplicaRegistry;
  readonly position: () => MasterPosition;
  /** This process's id; a handshake bearing it is the node syncing from itself. */
  readonly nodeId: string;
  /** Largest message the transport sends; Sync messages stay well under it. */
  readonly messageBytesMax: number;
  readonly logger: Logger;
  readonly clock: () => number;
  /** Counts each sync served by kind, for metrics. */
  readonly onSync?: (kind: "fullSync" | "partialSync") => void;
}

type SyncCall = grpc.ServerDuplexStream<SyncRequest, SyncMessage>;
type StreamCall = grpc.ServerWritableStream<ReplicationStreamRequest, ReplicationCommand>;

export class MasterStreams {
  #options: MasterStreamsOptions;
  #writers = new Set<StreamWriter<unknown>>();
  #wakers = new Set<() => void>();
  #readLimits: { itemsMax: number; bytesMax: number };
  #stopped = false;

  constructor(options: MasterStreamsOptions) {
    this.#options = options;
    this.#readLimits = {
      itemsMax: SYNC_MESSAGE_ITEMS_MAX,
      bytesMax: Math.min(SYNC_MESSAGE_BYTES_MAX, Math.floor(options.messageBytesMax / 2)),
    };
  }

  /** Streams open now. */
  get size(): number {
    return this.#writers.size;
  }

  /** Wakes every session waiting for new commands; called after each backlog append. */
  notifyAppended(): void {
    const wakers = [...this.#wakers];
    this.#wakers.clear();
    for (const wake of wakers) wake();
  }

  /** Serves one Sync stream until it closes. */
  serveSync(call: SyncCall): void {
    const writer = this.#admit(call);
    if (writer === null) return;
    this.#runSync(call, writer).catch((error) => this.#endWithError(writer, error, "Sync"))
      .finally(() => this.#writers.delete(writer));
  }

  /** Serves one StreamReplication stream (simple pull clients) until it closes. */
  serveStream(call: StreamCall): void {
    const writer = this.#admit(call);
    if (writer === null) return;
    this.#runStream(call, writer).catch((error) => this.#endWithError(writer, error, "StreamReplication"))
      .finally(() => this.#writers.delete(writer));
  }

  /** Closes every stream with UNAVAILABLE and `why`; the replicas reconnect elsewhere or
   * later. */
  stop(why: string): void {
    this.#stopped = true;
    for (const writer of this.#writers) writer.fail(grpc.status.UNAVAILABLE, why);
    this.#writers.clear();
    this.notifyAppended();
  }

  #admit<Out>(call: grpc.ServerWritableStream<unknown, Out> | grpc.ServerDuplexStream<unknown, Out>) {
    const writer = new StreamWriter<Out>(call);
    if (this.#stopped) {
      writer.fail(grpc.status.UNAVAILABLE, "replication: Cannot serve the stream: this node stopped being a master");
      return null;
    }
    if (this.#writers.size >= REPLICA_STREAMS_MAX) {
      writer.fail(
        grpc.status.RESOURCE_EXHAUSTED,
        `replication: Cannot serve another replica: ${REPLICA_STREAMS_MAX} replication streams are open`,
      );
      return null;
    }
    this.#writers.add(writer as StreamWriter<unknown>);
    return writer;
  }

  // MASTER: Sync sessions.

  async #runSync(call: SyncCall, writer: StreamWriter<SyncMessage>): Promise<void> {
    const { registry, logger, clock } = this.#options;
    const handshake = await firstMessage(call, writer, SYNC_HANDSHAKE_TIMEOUT_MS);
    const advertised = checkReplicaNaming(handshake.replica_id ?? "", handshake.address ?? "", "Sync");
    const replica = {
      id: handshake.replica_id || call.getPeer(),
      replid: String(handshake.replid ?? ""),
      seq: int64(handshake.seq, "seq"),
      previousReplid: handshake.previous_replid || null,
      previousLastSeq: int64(handshake.previous_last_seq, "previous_last_seq"),
    };
    if (replica.id === this.#options.nodeId) {
      throw new KvError(
        "FAILED_PRECONDITION",
        "replication: Cannot sync a node from itself: its --master-address (or ReplicaOf) names its own address",
      );
    }
    const address = replicaAddress(advertised, call.getPeer());
    const plan = planSync(this.#options.position(), replica);
    const record = registry.add({
      id: replica.id,
      address,
      mode: "pull",
      state: plan.kind === "fullSync" ? "fullsync" : "online",
      ackedSeq: plan.kind === "partialSync" ? plan.afterSeq : -1,
    }, clock());
    // A replica of an older kvstore reports nothing; its stream goes unbounded, as before.
    const window = handshake.reports_handled === true ? new SendWindow(SYNC_UNHANDLED_BYTES_MAX) : null;
    const room = new RoomSignal();
    // The seq the replica holds once it has handled everything sent so far. An
    // acknowledgement counts up to there only: one past it (a client that is not a
    // replica, or a broken one) would otherwise count for Wait calls on writes it never
    // received, and for every later one, as long as its stream stays open.
    let sentSeq = -1;
    call.on("data", (message: SyncRequest) => {
      try {
        if (window?.handled(int64(message.handled_messages, "handled_messages"))) room.wake();
        // While a fullSync loads, the replica holds no seq of this history to acknowledge.
        if (record.state !== "fullsync") {
          registry.ack(record, Math.min(int64(message.acked_seq, "acked_seq"), sentSeq), clock());
        }
      } catch {
        // A malformed report changes nothing; the next one will do.
      }
    });
    // Sends `message`, after which the stream continues with the commands after `nextAfterSeq`:
    // first waits for the replica to handle enough of what it was sent, and gives up as
    // soon as the backlog no longer holds those commands (the replica must resync anyway).
    const send = async (message: SyncMessage, nextAfterSeq: number) => {
      if (window !== null) {
        await this.#waitForRoom(writer, window, room, () => this.#checkBacklogCovers(nextAfterSeq, address));
        window.sent(syncMessageBytes(message));
      }
      await writer.send(message);
      sentSeq = Math.max(sentSeq, nextAfterSeq);
    };
    let ending = "its stream closed";
    try {
      let cursor: number;
      const { replid } = this.#options.position();
      this.#options.onSync?.(plan.kind);
      if (plan.kind === "partialSync") {
        logger.info(`Replica ${address} resyncs with a partialSync`, {
          replica: replica.id,
          afterSeq: plan.afterSeq,
          commands: this.#options.backlog().lastSeq - plan.afterSeq,
        });
        await send(syncMessage({ type: "SYNC_PARTIAL", replid, seq: plan.afterSeq }), plan.afterSeq);
        cursor = plan.afterSeq;
      } else {
        logger.info(`Replica ${address} needs a fullSync: ${plan.reason}`, {
          replica: replica.id,
          dropped: plan.dropped > 0 ? plan.dropped : undefined,
        });
        cursor = await this.#sendSnapshot(send, address, replid, plan.reason, plan.dropped);
        record.state = "online";
        logger.info(`Replica ${address} received its fullSync`, { replica: replica.id, seq: cursor });
      }
      await this.#streamCommands(writer, cursor, address, (entries) =>
        send(
          syncMessage({
            type: "SYNC_COMMANDS",
            commands: entries.map((entry) => commandToWire(entry.seq, entry.command, replid, clock())),
          }),
          entries[entries.length - 1].seq,
        ), (seq) => send(syncMessage({ type: "SYNC_PING", replid, seq }), seq));
    } catch (error) {
      ending = error instanceof StreamClosedError ? ending : error instanceof Error ? error.message : String(error);
      throw error;
    } finally {
      registry.remove(record);
      // As Redis says "Connection with replica ... lost": one line, so a replica's
      // comings and goings can be read from the master's log alone.
      logger.info(`Replica ${address} disconnected`, { replica: replica.id, ackedSeq: record.ackedSeq, why: ending });
    }
  }

  /** Waits until `window` has room for another message, checking now and then (with
   * `check`, which throws) that the stream is still worth continuing. Throws
   * StreamClosedError if the stream closes meanwhile. */
  async #waitForRoom(
    writer: StreamWriter<unknown>,
    window: SendWindow,
    room: RoomSignal,
    check: () => void,
  ): Promise<void> {
    while (!window.hasRoom) {
      if (writer.isClosed) throw new StreamClosedError();
      check();
      await room.wait(writer, REPLICATION_PING_INTERVAL_MS);
    }
    if (writer.isClosed) throw new StreamClosedError();
  }

  /** Throws RESOURCE_EXHAUSTED (and logs) when the backlog no longer holds the command
   * after `seq`, which a replica that has everything up to `seq` needs next. */
  #checkBacklogCovers(seq: number, address: string): void {
    if (!this.#options.backlog().covers(seq)) throw this.#fellBehind(seq, address);
  }

  /** Logs that the replica at `address` fell behind the backlog after `seq`, and returns
   * the error that ends its stream. */
  #fellBehind(seq: number, address: string): KvError {
    const backlog = this.#options.backlog();
    this.#options.logger.warn(`Replica ${address} fell behind the backlog and must resync`, {
      replicaSeq: seq,
      backlogFirstSeq: backlog.firstSeq,
    });
    return new KvError(
      "RESOURCE_EXHAUSTED",
      `replication: Cannot stream the commands after seq ${seq}: the backlog now starts at seq ` +
        `${backlog.firstSeq} (the replica read too slowly; raise --backlog-bytes on the master). Resync.`,
    );
  }

  /**
   * Sends the dataset as it is at the current seq: a SYNC_FULL header, entries in
   * chunks, SYNC_FULL_END. Returns that seq; the commands after it follow. The store is
   * read through a live iterator, a chunk per event-loop turn, so writes go on; entries
   * changed meanwhile may go out in their newer state, which the commands after the
   * snapshot's seq then repeat (they are idempotent).
   */
  async #sendSnapshot(
    send: (message: SyncMessage, nextAfterSeq: number) => Promise<void>,
    address: string,
    replid: string,
    reason: string,
    dropped: number,
  ): Promise<number> {
    const store = this.#options.staging.store;
    const seq = this.#options.staging.committedSeq;
    await send(syncMessage({ type: "SYNC_FULL", replid, seq, reason, dropped, keys: store.size }), seq);
    let entries: WireEntry[] = [];
    let bytes = 0;
    for (const [key, entry] of store.entries()) {
      entries.push(entryToWire(key, entry));
      bytes += wireItemBytes(key, entry.value);
      if (entries.length >= this.#readLimits.itemsMax || bytes >= this.#readLimits.bytesMax) {
        // A fullSync whose seq left the backlog cannot be followed by its commands: stop
        // now rather than after sending the rest of the dataset.
        this.#checkBacklogCovers(seq, address);
        await send(syncMessage({ type: "SYNC_SNAPSHOT", entries }), seq);
        entries = [];
        bytes = 0;
        await nextTurn();
      }
    }
    if (entries.length > 0) await send(syncMessage({ type: "SYNC_SNAPSHOT", entries }), seq);
    await send(syncMessage({ type: "SYNC_FULL_END", replid, seq }), seq);
    return seq;
  }

  /** Sends the commands after `cursor` as the backlog receives them, until the stream
   * closes or the replica falls out of the backlog; pings when idle. */
  async #streamCommands(
    writer: StreamWriter<unknown>,
    cursor: number,
    address: string,
    sendCommands: (entries: BacklogEntry[]) => Promise<void>,
    sendPing: ((seq: number) => Promise<void>) | null,
  ): Promise<void> {
    while (!writer.isClosed) {
      const backlog = this.#options.backlog();
      const entries = backlog.read(cursor, this.#readLimits);
      if (entries === null) throw this.#fellBehind(cursor, address);
      if (entries.length > 0) {
        await sendCommands(entries);
        cursor = entries[entries.length - 1].seq;
        // Let client calls run between messages when a replica has much to catch up on.
        if (entries.length >= this.#readLimits.itemsMax) await nextTurn();
        continue;
      }
      const appended = await this.#waitForAppend(writer, REPLICATION_PING_INTERVAL_MS);
      if (!appended && sendPing !== null && !writer.isClosed) await sendPing(backlog.lastSeq);
    }
  }

  /** Resolves true when a command is appended, false after `timeoutMs` or on close. It
   * leaves nothing registered once it resolves (see stream_writer.ts). */
  #waitForAppend(writer: StreamWriter<unknown>, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      if (writer.isClosed) return resolve(false);
      const finish = (appended: boolean) => {
        clearTimeout(timer);
        this.#wakers.delete(wake);
        unregister();
        resolve(appended);
      };
      const wake = () => finish(true);
      const timer = setTimeout(() => finish(false), timeoutMs);
      const unregister = writer.onClose(() => finish(false));
      this.#wakers.add(wake);
    });
  }

  // MASTER: StreamReplication, for simple pull clients.

  async #runStream(call: StreamCall, writer: StreamWriter<ReplicationCommand>): Promise<void> {
    const { registry, logger, clock } = this.#options;
    checkReplicaNaming(call.request.replica_id ?? "", "", "StreamReplication");
    const startSeq = Math.max(1, int64(call.request.start_sequence, "start_sequence"));
    const backlog = this.#options.backlog();
    if (startSeq - 1 > backlog.lastSeq) {
      throw new KvError(
        "FAILED_PRECONDITION",
        `replication: Cannot stream from seq ${startSeq}: this master's last seq is ${backlog.lastSeq}; the client ` +
          "holds writes this master does not (it followed another master or history): start it again empty",
      );
    }
    if (!backlog.covers(startSeq - 1)) {
      throw new KvError(
        "FAILED_PRECONDITION",
        `replication: Cannot stream from seq ${startSeq}: the backlog holds seqs ${backlog.firstSeq} to ` +
          `${backlog.lastSeq}; a replica this far behind needs a fullSync (use the Sync rpc)`,
      );
    }
    const address = replicaAddress("", call.getPeer());
    const record: ReplicaRecord = registry.add({
      id: call.request.replica_id || address,
      address,
      mode: "stream",
      state: "online",
      ackedSeq: startSeq - 1,
    }, clock());
    logger.info(`Pull client ${address} streams from seq ${startSeq}`, { replica: record.id });
    const { replid } = this.#options.position();
    try {
      await this.#streamCommands(writer, startSeq - 1, address, async (entries) => {
        for (const entry of entries) {
          await writer.send(commandToWire(entry.seq, entry.command, replid, clock()));
          // Without acknowledgements on this stream, what was sent is the best figure.
          registry.ack(record, entry.seq, clock());
        }
      }, null);
    } finally {
      registry.remove(record);
    }
  }

  #endWithError(writer: StreamWriter<unknown>, error: unknown, rpc: string): void {
    if (error instanceof StreamClosedError || writer.isClosed) return;
    if (error instanceof KvError) {
      writer.fail(GRPC_STATUS[error.code], statusDetails(error.message));
      return;
    }
    this.#options.logger.error(`${rpc} stream failed with an unexpected error`, {
      error: error instanceof Error ? error.message : String(error),
      stack: error instanceof Error ? error.stack : undefined,
    });
    writer.fail(grpc.status.INTERNAL, `replication: ${rpc} failed: ${String(error)} (this is a bug; see the log)`);
  }
}

/** A SyncMessage with defaults for the fields not given. */
function syncMessage(fields: Partial<SyncMessage> & Pick<SyncMessage, "type">): SyncMessage {
  return {
    replid: "",
    seq: 0,
    entries: [],
    commands: [],
    reason: "",
    dropped: 0,
    keys: 0,
    ...fields,
  };
}

/** The first message on a Sync stream, the handshake; rejects if none comes in time,
 * or at once if the replica closes its side of the stream first (none will come). */
function firstMessage(call: SyncCall, writer: StreamWriter<SyncMessage>, timeoutMs: number): Promise<SyncRequest> {
  return new Promise((resolve, reject) => {
    if (writer.isClosed) return reject(new StreamClosedError());
    const settle = (settled: () => void) => {
      clearTimeout(timer);
      unregister();
      call.removeListener("data", onData);
      call.removeListener("end", onEnd);
      settled();
    };
    const onData = (message: SyncRequest) => settle(() => resolve(message));
    const onEnd = () =>
      settle(() =>
        reject(
          new KvError(
            "INVALID_ARGUMENT",
            "replication: The Sync stream ended before its handshake: a replica's first message names it and the " +
              "history it holds",
          ),
        )
      );
    const timer = setTimeout(
      () =>
        settle(() => reject(new KvError("DEADLINE_EXCEEDED", `replication: No Sync handshake within ${timeoutMs} ms`))),
      timeoutMs,
    );
    const unregister = writer.onClose(() => settle(() => reject(new StreamClosedError())));
    call.once("data", onData);
    call.once("end", onEnd);
  });
}

/** Where a replica serves, for display: its own address, with a wildcard host replaced
 * by the host it connects from. */
export function replicaAddress(advertised: string, peer: string): string {
  const peerHostRaw = peer.replace(/^ipv[46]:/, "").replace(/:\d+$/, "").replace(/^::ffff:(?=\d+\.)/, "");
  const peerHost = peerHostRaw.includes(":") && !peerHostRaw.startsWith("[") ? `[${peerHostRaw}]` : peerHostRaw;
  if (advertised === "") return `${peerHost}:${/:(\d+)$/.exec(peer)?.[1] ?? "0"}`;
  const match = /^(.*):(\d+)$/.exec(advertised);
  if (match === null) return advertised;
  const host = match[1];
  return host === "0.0.0.0" || host === "[::]" || host === "::" ? `${peerHost}:${match[2]}` : advertised;
}

/** Where a Sync session waits for its replica to report messages handled. */
class RoomSignal {
  #wake: (() => void) | null = null;

  /** Ends the current wait, if any. */
  wake(): void {
    this.#wake?.();
  }

  /** Resolves when woken, after `timeoutMs`, or when the stream closes; leaves nothing
   * registered once it resolves (see stream_writer.ts). */
  wait(writer: StreamWriter<unknown>, timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      if (writer.isClosed) return resolve();
      const finish = () => {
        clearTimeout(timer);
        unregister();
        if (this.#wake === finish) this.#wake = null;
        resolve();
      };
      const timer = setTimeout(finish, timeoutMs);
      const unregister = writer.onClose(finish);
      this.#wake = finish;
    });
  }
}
