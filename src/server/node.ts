/**
 * A kvstore node's lifecycle: assemble the engine, listen, serve, and shut down
 * gracefully.
 *
 * Start-up: check and lock the data directory, build store -> staging -> pipeline ->
 * keyspace, bind the gRPC port (failing fast and clearly when it is taken) with every
 * call answered UNAVAILABLE "loading" behind the loading gate, load the dataset
 * (snapshot, then log), open the gate, start the timers (expiry sweep, everysec fsync,
 * snapshots), and log one line, "Listening on", with the role and address: from then
 * on the node serves. A master then deletes, through the write path, the keys whose
 * deadline passed while it was down.
 *
 * Beside the data service the node serves health and reflection (operations.ts), and,
 * with --metrics-address, Prometheus metrics over HTTP (node_metrics.ts). A master
 * reports SERVING once it listens; a replica reports NOT_SERVING until replication
 * calls `node.health.setAllServing(true)` after its first sync.
 *
 * Shutdown (SIGINT, SIGTERM, or {@linkcode Node.shutdown}): report NOT_SERVING and end
 * health watches (so load balancers drain the node first); refuse further writes and
 * commit those under way; on a master, wait up to --shutdown-replica-wait-ms for the
 * replicas to acknowledge the last write; stop replication; stop accepting calls, let
 * in-flight calls finish for up to SHUTDOWN_GRACE_MS, then close connections; stop the
 * timers; drain the write pipeline so every acknowledged write is in the log; take a
 * snapshot if the data changed since the last one (so the next start loads fast); sync
 * and close the log; release the data directory. Each wait on the disk is bounded by
 * --shutdown-disk-wait-ms (SHUTDOWN_DISK_WAIT_MS_DEFAULT): past it the disk is stalled.
 * Writes still waiting for the log are then given up (not acknowledged), and the node
 * skips the snapshot and the log's close (both would wait on the stalled append, and a
 * snapshot would cut a log whose end is unknown); a snapshot is abandoned; a log whose
 * last fsync hangs is left to the OS. Either way the files are left as a crash would
 * leave them, which recovery handles, and shutdown resolves false. Stopping replication
 * is bounded the same way, since a replica's sync may be writing its files.
 *
 * @module
 */

import { type Address, formatAddress } from "../config/address.ts";
import {
  EXPIRY_KEYS_PER_TICK_MAX,
  EXPIRY_REPEAT_RATIO,
  EXPIRY_SAMPLE_KEYS,
  EXPIRY_SWEEP_INTERVAL_MS,
  SHUTDOWN_GRACE_MS,
} from "../config/limits.ts";
import type { ServerConfig } from "../config/server_flags.ts";
import { KvError, plural } from "../errors.ts";
import type { Logger } from "../logging/logger.ts";
import { createDirectoryDurably, lockDataDir } from "../persistence/deno_storage.ts";
import type { FilePersistence } from "../persistence/file_persistence.ts";
import type { History } from "../persistence/persistence.ts";
import { Store } from "../store/store.ts";
import { WriteStaging } from "../store/staging.ts";
import {
  addService,
  countConnections,
  createServer,
  type grpc,
  kvstoreServiceDefinition,
  listen,
  transportLimitsFor,
} from "../transport/grpc.ts";
import { MetricsRegistry } from "../metrics/registry.ts";
import { type MetricsServer, serveMetrics } from "../metrics/http.ts";
import { Health, NODE_HEALTH_SERVICES } from "./health.ts";
import { registerNodeMetrics, RpcMetrics } from "./node_metrics.ts";
import { registerPersistenceMetrics, registerReplicationMetrics } from "./subsystem_metrics.ts";
import { addOperationsServices, processInfo } from "./operations.ts";
import type { InfoRequest, InfoResponse } from "../transport/messages.ts";
import { VERSION } from "../version.ts";
import {
  deleteKeysExpiredWhileDown,
  durabilityHandlers,
  DurabilityTimers,
  openFilePersistence,
  persistenceInfo,
} from "./durability.ts";
import { connectionsLimit, openFilesLimit } from "./connection_limit.ts";
import { Keyspace } from "./keyspace.ts";
import { LoadingGate } from "./loading_gate.ts";
import { dataHandlers } from "./service.ts";
import { unaryHandler } from "./status.ts";
import { WritePipeline } from "./write_pipeline.ts";
import { Replication } from "../replication/mod.ts";

export class Node {
  readonly config: ServerConfig;
  readonly keyspace: Keyspace;
  /** The address actually bound (the port is resolved when 0 was asked for). */
  readonly boundAddress: Address;
  readonly persistence: FilePersistence;
  /** What the health service reports: SERVING on a master, and on a replica once it
   * completed its first sync (see #refreshHealth). */
  readonly health: Health;
  /** The node's metrics; subsystems register theirs here (see src/metrics/registry.ts). */
  readonly metrics: MetricsRegistry;
  readonly replication: Replication;
  #rpcMetrics: RpcMetrics;
  #metricsServer: MetricsServer | null = null;
  #server: grpc.Server;
  #logger: Logger;
  #startedAtMs: number;
  #sweepTimer: ReturnType<typeof setInterval>;
  #shutdown: Promise<boolean> | null = null;
  #durability: DurabilityTimers;
  #dataDirLock: Deno.FsFile;

  private constructor(
    config: ServerConfig,
    parts: {
      keyspace: Keyspace;
      server: grpc.Server;
      persistence: FilePersistence;
      logger: Logger;
      boundAddress: Address;
      health: Health;
      metrics: MetricsRegistry;
      rpcMetrics: RpcMetrics;
      replication: Replication;
      dataDirLock: Deno.FsFile;
    },
  ) {
    this.config = config;
    this.keyspace = parts.keyspace;
    this.boundAddress = parts.boundAddress;
    this.#server = parts.server;
    this.persistence = parts.persistence;
    this.#logger = parts.logger;
    this.health = parts.health;
    this.metrics = parts.metrics;
    this.#rpcMetrics = parts.rpcMetrics;
    this.replication = parts.replication;
    this.#startedAtMs = Date.now();
    this.#sweepTimer = setInterval(() => this.#sweep(), EXPIRY_SWEEP_INTERVAL_MS);
    this.#dataDirLock = parts.dataDirLock;
    this.#durability = new DurabilityTimers(this.persistence, this.keyspace.pipeline.staging, this.#logger);
    this.#durability.start(config);
  }

  /** Starts a node and resolves once it serves. Rejects with a KvError that says what
   * stopped it (data directory unusable, address in use). */
  static async start(config: ServerConfig, logger: Logger): Promise<Node> {
    await prepareDataDir(config.dataDir);
    const dataDirLock = await lockDataDir(config.dataDir, "server");
    try {
      return await Node.#startLocked(config, logger, dataDirLock);
    } catch (error) {
      // A node that got as far as its shutdown (the metrics endpoint or replication could
      // not start) has released the lock already.
      try {
        dataDirLock.close();
      } catch (closeError) {
        if (!(closeError instanceof Deno.errors.BadResource)) throw closeError;
      }
      throw error;
    }
  }

  static async #startLocked(config: ServerConfig, logger: Logger, dataDirLock: Deno.FsFile): Promise<Node> {
    const persistence = openFilePersistence(config, logger);
    const store = new Store();
    // The seq is set once the dataset is loaded; nothing is staged before that.
    const staging = new WriteStaging(store, 0);
    const pipeline = new WritePipeline(staging, persistence.log, logger.child("pipeline"));
    const keyspace = new Keyspace(pipeline, {
      role: config.role,
      masterAddress: config.masterAddress === null ? null : formatAddress(config.masterAddress),
      limits: config.limits,
      sweepLimits: {
        sampleKeys: EXPIRY_SAMPLE_KEYS,
        repeatRatio: EXPIRY_REPEAT_RATIO,
        keysMax: EXPIRY_KEYS_PER_TICK_MAX,
      },
      clock: Date.now,
      random: Math.random,
    });
    const metrics = new MetricsRegistry();
    const rpcMetrics = new RpcMetrics(metrics);
    const health = new Health(NODE_HEALTH_SERVICES, false);
    const transportLimits = transportLimitsFor(config.limits.keyBytesMax, config.limits.valueBytesMax);
    const server = createServer(transportLimits, {
      instrument: (definition, handlers) => rpcMetrics.instrument(definition, handlers),
    });
    const serverLogger = logger.child("server");
    // The handlers are registered before the port is bound, behind the loading gate: none
    // runs before the dataset is loaded and the node (which Info describes) and its
    // replication (which needs the recovered history) exist.
    const started: { node?: Node; replication?: Replication } = {};
    const loadingSinceMs = Date.now();
    const gate = new LoadingGate(() =>
      `loading its dataset from ${config.dataDir} (${Math.round((Date.now() - loadingSinceMs) / 1000)} s so far)`
    );
    addService(
      server,
      kvstoreServiceDefinition(),
      gate.guard(kvstoreServiceDefinition(), {
        ...dataHandlers(keyspace, serverLogger),
        ...Replication.handlersFor(() => started.replication!, logger.child("replication")),
        Info: unaryHandler<InfoRequest, InfoResponse>("Info", serverLogger, () => started.node!.info()),
        ...durabilityHandlers(persistence, staging, serverLogger),
      }),
    );
    // Health answers from the start: NOT_SERVING while loading.
    addOperationsServices(server, health);
    const { connectionsMax, loweredBy } = connectionsLimit(config.connectionsMax, openFilesLimit());
    const port = await listen(server, config.address, "server", connectionsMax);
    const boundAddress = { host: config.address.host, port };
    if (loweredBy !== null) {
      serverLogger.warn(
        `The open-file limit is ${loweredBy}, so at most ${connectionsMax} client connections are kept open at ` +
          `once (--max-connections asks for ${config.connectionsMax}); raise the limit (ulimit -n) for more`,
      );
    }
    serverLogger.info("Loading the dataset; calls are refused until it is loaded", {
      address: formatAddress(boundAddress),
      dataDir: config.dataDir,
    });
    let history: History;
    try {
      history = await persistence.recover(store);
    } catch (error) {
      server.forceShutdown();
      throw error;
    }
    staging.resetSeq(history.seq);
    const replication = new Replication({
      config,
      keyspace,
      persistence,
      history,
      messageBytesMax: transportLimits.messageBytesMax,
      logger: logger.child("replication"),
    });
    started.replication = replication;
    const node = new Node(config, {
      keyspace,
      server,
      persistence,
      logger: serverLogger,
      boundAddress,
      health,
      metrics,
      rpcMetrics,
      replication,
      dataDirLock,
    });
    started.node = node;
    registerNodeMetrics(metrics, {
      keyspace,
      health,
      connections: () => countConnections(server),
      startedAtMs: node.#startedAtMs,
    });
    registerPersistenceMetrics(metrics, persistence);
    registerReplicationMetrics(metrics, replication, staging);
    try {
      if (config.metricsAddress !== null) {
        node.#metricsServer = await serveMetrics(config.metricsAddress, {
          registry: metrics,
          logger: logger.child("metrics"),
          serving: () => health.serving,
        });
      }
      await replication.start(formatAddress(boundAddress));
    } catch (error) {
      // The node exists: its shutdown releases the port, the timers, the files and the lock.
      await node.shutdown("start-up failed");
      throw error;
    }
    gate.open();
    node.#refreshHealth();
    serverLogger.info(`Listening on ${formatAddress(boundAddress)}`, {
      role: config.role,
      version: VERSION,
      pid: Deno.pid,
      master: config.masterAddress === null ? undefined : formatAddress(config.masterAddress),
      dataDir: config.dataDir,
      metrics: node.#metricsServer === null
        ? undefined
        : `http://${formatAddress(node.#metricsServer.address)}/metrics`,
      config: config.configFile ?? undefined,
    });
    node.#deleteKeysExpiredWhileDown();
    return node;
  }

  /** What the Info rpc answers. */
  info(): InfoResponse {
    const staging = this.keyspace.pipeline.staging;
    return {
      role: this.keyspace.role,
      version: VERSION,
      address: formatAddress(this.boundAddress),
      keys: staging.store.size,
      expiring_keys: staging.store.expiringCount,
      expired_keys: this.keyspace.expiredKeys,
      dataset_bytes: staging.store.datasetBytes,
      replid: this.replication.replid,
      last_seq: staging.committedSeq,
      master_address: this.keyspace.masterAddress ?? "",
      ...this.replication.info(),
      ...persistenceInfo(this.persistence, staging, this.config),
      // Operations.
      ...processInfo({
        server: this.#server,
        health: this.health,
        metricsServer: this.#metricsServer,
        rpcMetrics: this.#rpcMetrics,
        startedAtMs: this.#startedAtMs,
        configFile: this.config.configFile,
      }),
    };
  }

  /** Stops the node gracefully; safe to call more than once. Resolves with whether its
   * files were closed cleanly: false when the disk stalled (see --shutdown-disk-wait-ms)
   * or the log's last fsync failed. */
  shutdown(reason: string): Promise<boolean> {
    this.#shutdown ??= this.#stop(reason);
    return this.#shutdown;
  }

  async #stop(reason: string): Promise<boolean> {
    this.#logger.info("Shutting down", { reason });
    this.health.enterShutdown();
    // Before the writes under way drain (up to --shutdown-disk-wait-ms on a stalled disk):
    // no new replica stream from the first moment.
    this.replication.beginShutdown();
    clearInterval(this.#sweepTimer);
    // The last seq is settled first (no more writes, those under way committed), so that
    // a master can give its replicas a bounded time to acknowledge it while its streams
    // still run; reads are answered meanwhile.
    this.keyspace.stopWrites();
    let diskAnswers = await this.#drainWrites();
    await this.replication.awaitReplicasBeforeShutdown(this.config.shutdownReplicaWaitMs);
    diskAnswers = await this.#stopReplication() && diskAnswers;
    this.#durability.stop();
    await stopServer(this.#server, SHUTDOWN_GRACE_MS);
    await this.#metricsServer?.close();
    // A replica's stream or an expiry deletion may have staged writes meanwhile.
    if (diskAnswers) diskAnswers = await this.#drainWrites();
    // With the disk stalled, a hung append holds the log's lock (or a sync's replacement of
    // the files holds the persistence), which the log's sync and close, and a snapshot,
    // would wait for: the OS closes the files at exit.
    const filesClosed = diskAnswers && await this.#closeFiles();
    this.#dataDirLock.close();
    const keys = this.keyspace.pipeline.staging.store.size;
    if (filesClosed) this.#logger.info("Stopped", { keys });
    else this.#logger.warn("Stopped without closing the log cleanly (see above)", { keys });
    return filesClosed;
  }

  /** Waits, at most --shutdown-disk-wait-ms, for the writes under way to reach the log;
   * returns false, having said so in the log, if they did not (a stalled disk). */
  async #drainWrites(): Promise<boolean> {
    const waitMs = this.config.shutdownDiskWaitMs;
    const abandoned = new KvError(
      "UNAVAILABLE",
      `server: The node shut down before the disk took this write (the log's append did not finish within ` +
        `${waitMs} ms): it may or may not have been applied (read it back to know)`,
      { outcomeUnknown: true },
    );
    const waiting = await this.keyspace.pipeline.drainWithin(waitMs, abandoned);
    if (waiting === 0) return true;
    this.#logger.error(
      `Shutting down with ${plural(waiting, "write")} still waiting for the disk after ${waitMs} ms: they were not ` +
        "acknowledged, and the log may or may not hold them; no snapshot is taken over a log whose end is unknown",
      { writes: waiting, waitedMs: waitMs },
    );
    return false;
  }

  /** Stops replication, waiting at most --shutdown-disk-wait-ms; returns false, having
   * said so in the log, if it did not stop: a replica's sync that replaces the data files
   * (a fullSync, a new history) waits for a stalled disk, and holds the files meanwhile. */
  async #stopReplication(): Promise<boolean> {
    const waitMs = this.config.shutdownDiskWaitMs;
    if (await settlesWithin(this.replication.stop(), waitMs)) return true;
    this.#logger.error(
      `Replication did not stop within ${waitMs} ms (--shutdown-disk-wait-ms): a sync from the master waits for ` +
        "the disk; shutting down without it, and without a snapshot",
    );
    return false;
  }

  /**
   * Takes a snapshot if the data changed since the last one (so the next start loads
   * fast), then syncs and closes the log; returns whether the log was closed. Each step
   * waits at most --shutdown-disk-wait-ms: a snapshot still running then is abandoned
   * (the log holds every write: the next start replays it instead), and a log whose last
   * fsync does not finish is left to the OS, which holds every acknowledged write and
   * writes it back on its own unless the machine loses power first.
   */
  async #closeFiles(): Promise<boolean> {
    const waitMs = this.config.shutdownDiskWaitMs;
    if (this.#durability.changedSinceSnapshot()) {
      // A failure is logged by the persistence and changes nothing: the log has it all.
      const snapshot = this.persistence.snapshot(this.keyspace.pipeline.staging).catch(() => {});
      if (!await settlesWithin(snapshot, waitMs)) {
        this.#logger.warn(
          `The snapshot did not finish within ${waitMs} ms (--shutdown-disk-wait-ms); it is abandoned, and the ` +
            "next start replays the log instead",
        );
      }
    }
    // Closing abandons a snapshot still running, then syncs the log.
    let closeError: unknown = null;
    const close = this.persistence.close().catch((error) => closeError = error);
    if (!await settlesWithin(close, waitMs)) {
      this.#logger.error(
        `Could not sync and close the log within ${waitMs} ms: the disk does not answer. Exiting without it: ` +
          "the writes not yet fsynced survive this exit in the OS's cache, but not a power cut before the OS " +
          "writes them",
      );
      return false;
    }
    if (closeError !== null) {
      this.#logger.error("Could not sync and close the log", { error: String(closeError) });
      return false;
    }
    return true;
  }

  /** On a master, right after start-up: removes, through the write path, the keys whose
   * deadline passed while the node was down (replicas hide them and wait for their
   * master's DELETE). Runs in the background; serving goes on meanwhile. */
  #deleteKeysExpiredWhileDown(): void {
    if (this.keyspace.role !== "master") return;
    deleteKeysExpiredWhileDown(this.keyspace.pipeline, {
      clock: Date.now,
      isMaster: () => this.keyspace.role === "master" && this.#shutdown === null,
    }).then((deleted) => {
      if (deleted > 0) this.#logger.info("Deleted the keys whose deadline passed while the node was down", { deleted });
    }, (error) => this.#logger.error("Could not delete the keys that expired while down", { error: String(error) }));
  }

  #sweep(): void {
    try {
      this.keyspace.sweepExpired();
    } catch (error) {
      this.#logger.error("Expiry sweep failed", { error: String(error) });
    }
    // Here rather than only when a Scan comes: an abandoned cursor holds the dataset it
    // walks, a replaced one included, until it is dropped.
    this.keyspace.pruneScanCursors();
    this.#refreshHealth();
  }

  /**
   * Health follows the role, checked on every timer tick (100 ms) and after role changes
   * settle: a master serves; a replica serves once it has completed a sync with its master
   * (until then its reads would come from an empty or stale dataset), or when its master
   * only pushes (a C++ master knows no sync, so there is no first sync to wait for). A
   * master told to follow another becomes NOT_SERVING until it has synced from it.
   */
  #refreshHealth(): void {
    const serving = this.keyspace.role === "master" || this.replication.firstSyncDone ||
      this.replication.linkState === "push-only";
    this.health.setAllServing(serving);
  }
}

/** Creates the data directory if needed and checks that it is a writable directory.
 * `subsystem` prefixes the error (the router prepares its own with "router"). */
export async function prepareDataDir(dataDir: string, subsystem = "server"): Promise<void> {
  try {
    await createDirectoryDurably(dataDir);
    const probe = await Deno.makeTempFile({ dir: dataDir, prefix: ".kvstore-probe-" });
    await Deno.remove(probe);
  } catch (error) {
    const detail = error instanceof Deno.errors.PermissionDenied
      ? "permission denied"
      : error instanceof Deno.errors.AlreadyExists || error instanceof Deno.errors.NotADirectory
      ? "it is not a directory"
      : error instanceof Error
      ? error.message
      : String(error);
    throw new KvError(
      "FAILED_PRECONDITION",
      `${subsystem}: Cannot use data directory ${JSON.stringify(dataDir)}: ${detail}`,
    );
  }
}

/** Stops accepting calls, waits up to `graceMs` for in-flight calls, then closes every
 * connection. */
export function stopServer(server: grpc.Server, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Whether `work` settles within `ms`; if it does not, it is left to finish (or not) on
 * its own. */
async function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), ms));
  try {
    return await Promise.race([work.then(() => true, () => true), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}
