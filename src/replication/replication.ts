/**
 * A node's replication: its history, its role's machinery, and the rpcs that reach it.
 *
 * Every node keeps a history (replid + seq) and a {@linkcode Backlog} of its recent
 * commits, whatever its role, so that a replica promoted to master can feed the other
 * replicas from where they are. Then, by role:
 *
 * - master: {@linkcode MasterStreams} serves Sync and StreamReplication from the backlog,
 *   a {@linkcode PushLink} per `--replicas` address pushes, and Wait blocks on the
 *   replicas' acknowledgements in the {@linkcode ReplicaRegistry}.
 * - replica: a {@linkcode Follower} pulls from the master; ReplicateCommand pushes go to
 *   the {@linkcode PushReceiver}. Both apply through one {@linkcode ReplicaApplier}.
 *
 * Role changes (Promote, ReplicaOf) run one at a time. A master begins a new history
 * each time it starts or is promoted, remembering the previous one and where it ended:
 * replicas of the old history that are not ahead of that point resync with a
 * partialSync, and a replica that holds writes the new master never had (ahead of it)
 * is told with a fullSync that drops them, rather than quietly diverging.
 *
 * The getters at the end (role, linkState, firstSyncDone, replicaStatuses) are for
 * health checks and metrics.
 *
 * @module
 */

import { formatAddress, parseAddress } from "../config/address.ts";
import { WAIT_TIMEOUT_MS_MAX, WAITERS_MAX } from "../config/limits.ts";
import type { Role, ServerConfig } from "../config/server_flags.ts";
import { UsageError } from "../config/usage_error.ts";
import { invalidArgument, KvError } from "../errors.ts";
import type { Logger } from "../logging/logger.ts";
import { type History, newReplid, type Persistence } from "../persistence/persistence.ts";
import type { Keyspace } from "../server/keyspace.ts";
import type { Handlers } from "../server/service.ts";
import { toServiceError, unaryHandler } from "../server/status.ts";
import type { WritePipeline } from "../server/write_pipeline.ts";
import type { SequencedCommand } from "../store/command.ts";
import type { grpc } from "../transport/grpc.ts";
import type {
  InfoResponse,
  PromoteRequest,
  PromoteResponse,
  ReplicaOfRequest,
  ReplicaOfResponse,
  ReplicationCommand,
  ReplicationResponse,
  ReplicationStreamRequest,
  SyncMessage,
  SyncRequest,
  WaitRequest,
  WaitResponse,
} from "../transport/messages.ts";
import { Backlog } from "./backlog.ts";
import { Follower } from "./follower.ts";
import type { LinkState } from "./link_status.ts";
import { MasterStreams } from "./master_streams.ts";
import { PushLink } from "./push_link.ts";
import { PushReceiver } from "./push_receiver.ts";
import { ReplicaApplier } from "./replica_applier.ts";
import { ReplicaRegistry, type ReplicaStatus } from "./replica_registry.ts";
import { shortReplid } from "./sync_plan.ts";
import { int64 } from "./wire.ts";

export interface ReplicationOptions {
  readonly config: ServerConfig;
  readonly keyspace: Keyspace;
  readonly persistence: Persistence;
  /** The history recovery ended at. */
  readonly history: History;
  /** Largest message the node's transport sends or receives, in bytes. */
  readonly messageBytesMax: number;
  readonly logger: Logger;
  readonly clock?: () => number;
}

export class Replication {
  /** Names this process in handshakes, so a node told to follow itself finds out. */
  readonly nodeId: string = newReplid().slice(0, 16);
  #options: ReplicationOptions;
  #keyspace: Keyspace;
  #pipeline: WritePipeline;
  #persistence: Persistence;
  #logger: Logger;
  #clock: () => number;
  #applier: ReplicaApplier;
  #backlog: Backlog;
  #registry = new ReplicaRegistry();
  #previousReplid: string | null = null;
  #previousLastSeq = 0;
  #streams: MasterStreams | null = null;
  #pushLinks: PushLink[] = [];
  #follower: Follower | null = null;
  #pushReceiver: PushReceiver;
  #ownAddress = "";
  /** Role changes, one after another. */
  #transition: Promise<unknown> = Promise.resolve();
  #stopped = false;
  #syncsServed = { fullSync: 0, partialSync: 0 };

  constructor(options: ReplicationOptions) {
    this.#options = options;
    this.#keyspace = options.keyspace;
    this.#pipeline = options.keyspace.pipeline;
    this.#persistence = options.persistence;
    this.#logger = options.logger;
    this.#clock = options.clock ?? Date.now;
    this.#applier = new ReplicaApplier(this.#pipeline.staging, options.history.replid);
    this.#backlog = new Backlog({ bytesMax: options.config.backlogBytesMax, lastSeq: options.history.seq });
    this.#pushReceiver = new PushReceiver({
      nodeId: this.nodeId,
      applier: this.#applier,
      pipeline: this.#pipeline,
      persistence: this.#persistence,
      mayFollowForeignMaster: () => {
        // Not while no follower runs either: the node is changing roles.
        const state = this.#follower?.status.state;
        return state !== undefined && state !== "up" && state !== "syncing";
      },
      onDatasetReplaced: (seq) => this.#resetBacklog(seq),
      logger: this.#logger,
      clock: this.#clock,
    });
    this.#pipeline.onCommit((batch) => this.#onCommit(batch));
  }

  /** Starts the role's machinery once the node listens on `ownAddress`. */
  async start(ownAddress: string): Promise<void> {
    this.#ownAddress = ownAddress;
    const { config } = this.#options;
    if (this.#keyspace.role === "master") {
      await this.#beginHistory();
      this.#startMaster();
      for (const replica of config.replicas) this.#startPushLink(formatAddress(replica));
    } else {
      this.#startFollower(formatAddress(config.masterAddress!));
    }
  }

  /** Shutdown begins: from now on a new Sync or StreamReplication is refused (a fullSync
   * begun now would only hold the shutdown), and so is a role change. Streams open go on
   * until {@linkcode stop}. */
  beginShutdown(): void {
    this.#stopped = true;
  }

  /**
   * Shutdown, first step, once the node takes no more writes and has committed those
   * under way: a master waits up to `timeoutMs` for every replica attached to
   * acknowledge its last seq (Redis's shutdown-timeout), streaming to them meanwhile,
   * then logs which did not. A replica that has every write resumes with a partialSync
   * when its master comes back, and can be promoted without losing any. Role changes are
   * refused from now on. Resolves with the replicas still behind (none on a replica).
   */
  async awaitReplicasBeforeShutdown(timeoutMs: number): Promise<ReplicaStatus[]> {
    this.#stopped = true;
    await this.#transition;
    if (this.#keyspace.role !== "master") return [];
    const seq = this.#seq;
    const startedMs = this.#clock();
    if (this.#registry.behind(seq).length > 0 && timeoutMs > 0) {
      this.#logger.info(
        `Waiting up to ${timeoutMs} ms for ${describeReplicas(this.#registry.behind(seq))} to acknowledge seq ${seq} ` +
          "before shutting down",
      );
      await new Promise<void>((resolve) => {
        const finish = () => {
          clearTimeout(timer);
          unregister();
          resolve();
        };
        const timer = setTimeout(finish, timeoutMs);
        const unregister = this.#registry.onChange(() => {
          if (this.#registry.behind(seq).length === 0) finish();
        });
      });
    }
    const behindIds = new Set(this.#registry.behind(seq).map((record) => record.id));
    const behind = this.replicaStatuses().filter((status) => behindIds.has(status.id));
    const waitedMs = this.#clock() - startedMs;
    const caughtUp = this.#registry.countAcked(seq);
    if (behind.length === 0) {
      if (caughtUp > 0) {
        this.#logger.info(`Every replica has seq ${seq}, the last write`, { replicas: caughtUp, waitedMs });
      }
      return behind;
    }
    this.#logger.warn(
      `Shutting down before ${describeReplicas(behind)} acknowledged seq ${seq}, the last write: ` +
        behind.map((status) => `${status.address} (${status.mode}) ${holding(status)}`).join(", ") +
        (timeoutMs > 0 ? `; waited ${waitedMs} ms (--shutdown-replica-wait-ms ${timeoutMs})` : "") +
        ". They resync when a master is back; promoting one of them would lose the writes it lacks",
      { replicasWithSeq: caughtUp },
    );
    return behind;
  }

  /** Stops every stream and link (the node is shutting down). */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#transition;
    this.#stopMaster("replication: The master is shutting down");
    await Promise.all(this.#pushLinks.map((link) => link.stop()));
    this.#pushLinks = [];
    await this.#follower?.stop();
  }

  /** The rpcs of replication, by name, for the node's gRPC service. */
  handlers(): Handlers {
    return Replication.handlersFor(() => this, this.#logger);
  }

  /**
   * The replication rpcs' handlers, finding the Replication through `get` when a call
   * arrives. The node registers them before it binds its port, while it cannot yet make
   * the Replication (that needs the history recovery returns); its loading gate holds
   * every call until then.
   */
  static handlersFor(get: () => Replication, logger: Logger): Handlers {
    return {
      ReplicateCommand: unaryHandler<ReplicationCommand, ReplicationResponse>(
        "ReplicateCommand",
        logger,
        (request) => get().#replicateCommand(request),
      ),
      StreamReplication: ((call: grpc.ServerWritableStream<ReplicationStreamRequest, ReplicationCommand>) => {
        serveOrRefuse(
          call,
          "StreamReplication",
          logger,
          () => get().#masterStreams("StreamReplication").serveStream(call),
        );
      }) as grpc.UntypedHandleCall,
      Sync: ((call: grpc.ServerDuplexStream<SyncRequest, SyncMessage>) => {
        serveOrRefuse(call, "Sync", logger, () => get().#masterStreams("Sync").serveSync(call));
      }) as grpc.UntypedHandleCall,
      Promote: unaryHandler<PromoteRequest, PromoteResponse>("Promote", logger, () => get().promote()),
      ReplicaOf: unaryHandler<ReplicaOfRequest, ReplicaOfResponse>(
        "ReplicaOf",
        logger,
        ({ master_address }) => get().replicaOf(master_address),
      ),
      Wait: unaryHandler<WaitRequest, WaitResponse>("Wait", logger, ({ num_replicas, timeout_ms }, call) => {
        // A caller that gives up (its deadline, a Ctrl-C) ends the wait, rather than
        // leaving it registered for up to WAIT_TIMEOUT_MS_MAX.
        const cancelled = new AbortController();
        call.once("cancelled", () => cancelled.abort());
        return get().wait(num_replicas, int64(timeout_ms, "timeout_ms"), cancelled.signal);
      }),
    };
  }

  // ROLE CHANGES.

  /**
   * Turns this replica into a master that keeps its data and starts a new history; the
   * old history's replid is remembered so its other replicas resync partially. A master
   * answers `promoted: false` and changes nothing.
   *
   * The node takes writes only once its files record the new history. If they cannot (a
   * full disk), it stays a replica of its master: a master whose restart would not
   * resume what it acknowledged must not acknowledge anything.
   */
  promote(): Promise<PromoteResponse> {
    return this.#serially(async () => {
      if (this.#keyspace.role === "master") {
        return { promoted: false, replid: this.#applier.replid, seq: this.#seq, previous_replid: "" };
      }
      const oldMaster = this.#keyspace.masterAddress!;
      await this.#follower?.stop();
      this.#follower = null;
      await this.#pipeline.drain();
      try {
        if (this.#applier.replid === "") {
          throw new KvError(
            "FAILED_PRECONDITION",
            "its files do not hold the dataset it serves (its last fullSync could not be saved; its log says " +
              "why): let it sync with its master first",
          );
        }
        await this.#beginHistory();
      } catch (error) {
        this.#startFollower(oldMaster);
        if (!(error instanceof KvError)) throw error;
        throw new KvError(
          error.code,
          `replication: Cannot promote: ${error.message}; this node is still a replica of ${oldMaster}`,
        );
      }
      this.#keyspace.setRole("master", null);
      this.#startMaster();
      // A master started with --replicas that was made a replica (ReplicaOf) and is now
      // promoted pushes to them again, from its next write.
      for (const replica of this.#options.config.replicas) this.#startPushLink(formatAddress(replica));
      this.#logger.warn(`Promoted to master (was a replica of ${oldMaster})`, {
        replid: shortReplid(this.#applier.replid),
        previousReplid: shortReplid(this.#previousReplid ?? ""),
        seq: this.#seq,
      });
      return {
        promoted: true,
        replid: this.#applier.replid,
        seq: this.#seq,
        previous_replid: this.#previousReplid ?? "",
      };
    });
  }

  /**
   * Makes this node a replica of `masterAddressText`: a master stops taking writes and
   * closes its replicas' streams (they reconnect, and find it a replica), a replica
   * switches masters. Either way the node then syncs from the new master.
   */
  replicaOf(masterAddressText: string): Promise<ReplicaOfResponse> {
    let masterAddress: string;
    try {
      masterAddress = formatAddress(parseAddress(masterAddressText, "master_address"));
    } catch (error) {
      if (error instanceof UsageError) throw invalidArgument(`replication: ${error.message}`);
      throw error;
    }
    if (this.#isOwnAddress(masterAddress)) {
      throw invalidArgument(`replication: Cannot follow ${masterAddress}: that is this node's own address`);
    }
    return this.#serially(async () => {
      const previousRole = this.#keyspace.role;
      const was = previousRole === "master" ? "a master" : `a replica of ${this.#follower?.masterAddress}`;
      if (previousRole === "master") {
        this.#keyspace.setRole("replica", masterAddress);
        this.#stopMaster(`replication: This node became a replica of ${masterAddress}`);
        await Promise.all(this.#pushLinks.map((link) => link.stop()));
        this.#pushLinks = [];
        await this.#pipeline.drain();
      } else {
        await this.#follower?.stop();
        this.#keyspace.setRole("replica", masterAddress);
      }
      this.#logger.warn(`Now a replica of ${masterAddress} (was ${was})`);
      this.#startFollower(masterAddress);
      return { success: true, previous_role: previousRole };
    });
  }

  /**
   * Wait (like Redis WAIT): resolves with how many replicas acknowledged the master's
   * last seq as of the call, once `replicasWanted` have, after `timeoutMs` (0: the
   * longest wait allowed), or when `cancelled` aborts (the caller went away).
   */
  wait(replicasWanted: number, timeoutMs: number, cancelled?: AbortSignal): Promise<WaitResponse> {
    if (this.#keyspace.role !== "master") {
      throw new KvError(
        "FAILED_PRECONDITION",
        `replication: Cannot wait for replicas: this node is a replica; call Wait on the master at ` +
          `${this.#keyspace.masterAddress}`,
      );
    }
    if (!Number.isSafeInteger(replicasWanted) || replicasWanted < 0) {
      throw invalidArgument(`replication: Invalid num_replicas ${replicasWanted}: expected 0 or more`);
    }
    if (timeoutMs < 0 || timeoutMs > WAIT_TIMEOUT_MS_MAX) {
      throw invalidArgument(
        `replication: Invalid timeout_ms ${timeoutMs}: expected 0 (the longest) to ${WAIT_TIMEOUT_MS_MAX}`,
      );
    }
    if (this.#registry.waiterCount >= WAITERS_MAX) {
      throw new KvError("RESOURCE_EXHAUSTED", `replication: Cannot wait: ${WAITERS_MAX} Wait calls already block`);
    }
    const targetSeq = this.#seq;
    return new Promise((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined = undefined;
      const cancel = () => this.#registry.cancelWait(waiter);
      const waiter = {
        targetSeq,
        replicasWanted,
        resolve: (replicas: number) => {
          clearTimeout(timer);
          cancelled?.removeEventListener("abort", cancel);
          resolve({ replicas, seq: targetSeq });
        },
      };
      if (this.#registry.addWaiter(waiter)) {
        timer = setTimeout(cancel, timeoutMs === 0 ? WAIT_TIMEOUT_MS_MAX : timeoutMs);
        if (cancelled?.aborted) cancel();
        else cancelled?.addEventListener("abort", cancel, { once: true });
      }
    });
  }

  /** Wait calls blocked now. */
  get waitsBlocked(): number {
    return this.#registry.waiterCount;
  }

  // VISIBILITY.

  get role(): Role {
    return this.#keyspace.role;
  }

  /** The replication id naming this node's history. */
  get replid(): string {
    return this.#applier.replid;
  }

  /** For a replica, the state of its link to the master; null on a master. */
  get linkState(): LinkState | null {
    return this.#follower?.status.state ?? null;
  }

  /** For a replica, whether a sync with its master has completed (true on a master). */
  get firstSyncDone(): boolean {
    return this.#follower === null ? true : this.#follower.status.firstSyncDone;
  }

  /** For a replica, its master's last seq as last heard (null on a master); with
   * `staging.committedSeq` it gives the replica's own lag in writes. */
  get masterLastSeq(): number | null {
    return this.#follower?.masterLastSeq ?? null;
  }

  /** Syncs this node served as a master, by kind, since start. */
  get syncsServed(): Readonly<Record<"fullSync" | "partialSync", number>> {
    return this.#syncsServed;
  }

  /** For a master, every replica attached with its acknowledged seq and lag. */
  replicaStatuses(): ReplicaStatus[] {
    if (this.#keyspace.role !== "master") return [];
    return this.#registry.status(
      this.#seq,
      this.#clock(),
      (seq) => this.#backlog.committedAtMs(seq),
      this.#backlog.oldestCommittedAtMs,
    );
  }

  /** The replication fields of the Info rpc. */
  info(): Partial<InfoResponse> {
    const follower = this.#follower;
    const nowMs = this.#clock();
    return {
      replid: this.#applier.replid,
      link_state: follower?.status.state ?? "",
      first_sync_done: this.firstSyncDone,
      master_last_seq: follower?.masterLastSeq ?? 0,
      link_down_ms: follower?.status.downForMs(nowMs) ?? 0,
      link_error: follower?.status.lastError ?? "",
      replicas: this.replicaStatuses().map((status) => ({
        replica_id: status.id,
        address: status.address,
        mode: status.mode,
        state: status.state,
        acked_seq: status.ackedSeq,
        lag_seqs: status.lagSeqs,
        lag_ms: status.lagMs,
      })),
      backlog_bytes: this.#backlog.bytes,
      backlog_bytes_max: this.#backlog.bytesMax,
      backlog_first_seq: this.#backlog.firstSeq,
      previous_replid: this.#previousReplid ?? "",
      previous_replid_last_seq: this.#previousLastSeq,
    };
  }

  // INTERNALS.

  get #seq(): number {
    return this.#pipeline.staging.committedSeq;
  }

  #onCommit(batch: readonly SequencedCommand[]): void {
    this.#backlog.append(batch, this.#clock());
    this.#streams?.notifyAppended();
    for (const link of this.#pushLinks) link.notifyAppended();
    this.#follower?.noteCommitted();
    this.#pushReceiver.notify();
  }

  /** The dataset or its seq was reset (fullSync, a foreign master): the backlog's
   * commands no longer lead to the current state, so it starts over at `seq`, and the
   * history held continues none that this node had before. */
  #resetBacklog(seq: number): void {
    this.#backlog = new Backlog({ bytesMax: this.#backlog.bytesMax, lastSeq: seq });
    this.#previousReplid = null;
    this.#previousLastSeq = 0;
  }

  /** Starts a new history at the current seq, remembering the one it continues. If the
   * files cannot record it, nothing changes. */
  async #beginHistory(): Promise<void> {
    const continued = this.#applier.replid;
    const seq = this.#seq;
    const replid = newReplid();
    // Renamed first, so that no command of the old history is applied meanwhile.
    this.#applier.renameHistory(replid);
    try {
      await this.#persistence.startHistory({ replid, seq });
    } catch (error) {
      this.#applier.renameHistory(continued);
      throw error;
    }
    // An empty history has nothing a replica could continue from.
    this.#previousReplid = seq > 0 ? continued : null;
    this.#previousLastSeq = seq;
  }

  #startMaster(): void {
    this.#streams = new MasterStreams({
      staging: this.#pipeline.staging,
      backlog: () => this.#backlog,
      registry: this.#registry,
      position: () => ({
        replid: this.#applier.replid,
        seq: this.#seq,
        previousReplid: this.#previousReplid,
        previousLastSeq: this.#previousLastSeq,
        backlogFirstSeq: this.#backlog.firstSeq,
      }),
      nodeId: this.nodeId,
      messageBytesMax: this.#options.messageBytesMax,
      logger: this.#logger,
      clock: this.#clock,
      onSync: (kind) => this.#syncsServed[kind]++,
    });
  }

  #stopMaster(why: string): void {
    this.#streams?.stop(why);
    this.#streams = null;
    this.#registry.cancelAllWaits();
  }

  #startPushLink(address: string): void {
    const link = new PushLink({
      address,
      backlog: () => this.#backlog,
      registry: this.#registry,
      replid: () => this.#applier.replid,
      logger: this.#logger,
      clock: this.#clock,
    });
    this.#pushLinks.push(link);
    link.start();
  }

  #startFollower(masterAddress: string): void {
    this.#follower = new Follower({
      masterAddress,
      applier: this.#applier,
      pipeline: this.#pipeline,
      persistence: this.#persistence,
      nodeId: this.nodeId,
      ownAddress: this.#ownAddress,
      timeoutMs: this.#options.config.replicationTimeoutMs,
      previousHistory: () =>
        this.#previousReplid === null ? null : { replid: this.#previousReplid, seq: this.#previousLastSeq },
      onDatasetReplaced: (seq) => this.#resetBacklog(seq),
      logger: this.#logger,
      clock: this.#clock,
    });
    this.#follower.start();
  }

  /** The master's streams, for a new Sync or StreamReplication; throws the refusal when
   * this node serves none: it is a replica, or it is shutting down (a fullSync begun
   * now would hold the master's shutdown, and the stream would close before long). */
  #masterStreams(rpc: string): MasterStreams {
    if (this.#stopped) {
      throw new KvError(
        "UNAVAILABLE",
        `replication: Cannot serve ${rpc}: this node is shutting down; retry once it has restarted, or follow ` +
          "the node that takes its place",
      );
    }
    if (this.#streams !== null && this.#keyspace.role === "master") return this.#streams;
    throw new KvError(
      "FAILED_PRECONDITION",
      `replication: Cannot serve ${rpc}: this node is a replica of ${this.#keyspace.masterAddress}; ` +
        "follow that master instead, or promote this node",
    );
  }

  #replicateCommand(request: ReplicationCommand): Promise<ReplicationResponse> {
    if (this.#keyspace.role !== "replica") {
      throw new KvError(
        "FAILED_PRECONDITION",
        "replication: Cannot apply a pushed command: this node is a master; ReplicateCommand is accepted " +
          "only by replicas (start this node with --replica, or run ReplicaOf)",
      );
    }
    return this.#pushReceiver.receive(request);
  }

  #serially<T>(work: () => Promise<T>): Promise<T> {
    if (this.#stopped) {
      return Promise.reject(new KvError("UNAVAILABLE", "replication: Cannot change role: the node is shutting down"));
    }
    const result = this.#transition.then(work);
    this.#transition = result.catch(() => {});
    return result;
  }

  /** Whether `address` names this node (same port on a loopback, wildcard or own host). */
  #isOwnAddress(address: string): boolean {
    const own = /^(.*):(\d+)$/.exec(this.#ownAddress);
    const other = /^(.*):(\d+)$/.exec(address);
    if (own === null || other === null || own[2] !== other[2]) return false;
    const local = new Set(["127.0.0.1", "localhost", "0.0.0.0", "[::1]", "[::]", own[1]]);
    return local.has(other[1]);
  }
}

/** Runs `serve` for a streaming call, answering the call with the refusal it throws: a
 * streaming handler that throws would reach grpc-js, which answers UNKNOWN "Unknown
 * error" and never ends the call's metrics. */
function serveOrRefuse(
  call: grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>,
  rpc: string,
  logger: Logger,
  serve: () => void,
): void {
  try {
    serve();
  } catch (error) {
    call.emit("error", toServiceError(error, rpc, logger));
  }
}

/** "1 replica" or "3 replicas". */
function describeReplicas(replicas: readonly unknown[]): string {
  return replicas.length === 1 ? "1 replica" : `${replicas.length} replicas`;
}

/** What a replica holds, for a log line: "has seq 200". */
function holding(status: ReplicaStatus): string {
  if (status.state === "fullsync") return "is loading a fullSync";
  return status.ackedSeq < 0 ? "has acknowledged nothing yet" : `has seq ${status.ackedSeq}`;
}
