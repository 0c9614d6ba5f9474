/**
 * A kvstore node's lifecycle: assemble the engine, listen, serve, and shut down
 * gracefully.
 *
 * Start-up: check the data directory, build store -> staging -> pipeline -> keyspace,
 * bind the gRPC port (failing fast and clearly when it is taken), start the expiry
 * timer, log one line with the role and address.
 *
 * Shutdown (SIGINT, SIGTERM, or {@linkcode Node.shutdown}): stop accepting calls, let
 * in-flight calls finish for up to SHUTDOWN_GRACE_MS, then close connections; stop the
 * timers; drain the write pipeline so every acknowledged write is in the log; close
 * the log.
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
import { KvError } from "../errors.ts";
import type { Logger } from "../logging/logger.ts";
import { type History, type Persistence, VolatilePersistence } from "../persistence/persistence.ts";
import { Store } from "../store/store.ts";
import { WriteStaging } from "../store/staging.ts";
import { createServer, type grpc, kvstoreServiceDefinition, listen, transportLimitsFor } from "../transport/grpc.ts";
import type { InfoRequest, InfoResponse } from "../transport/messages.ts";
import { VERSION } from "../version.ts";
import { Keyspace } from "./keyspace.ts";
import { dataHandlers } from "./service.ts";
import { unaryHandler } from "./status.ts";
import { WritePipeline } from "./write_pipeline.ts";

export class Node {
  readonly config: ServerConfig;
  readonly keyspace: Keyspace;
  /** The address actually bound (the port is resolved when 0 was asked for). */
  readonly boundAddress: Address;
  readonly persistence: Persistence;
  #server: grpc.Server;
  #logger: Logger;
  #startedAtMs: number;
  #sweepTimer: ReturnType<typeof setInterval>;
  #replid: string;
  #shutdown: Promise<void> | null = null;

  private constructor(
    config: ServerConfig,
    parts: {
      keyspace: Keyspace;
      server: grpc.Server;
      persistence: Persistence;
      logger: Logger;
      boundAddress: Address;
      history: History;
    },
  ) {
    this.config = config;
    this.keyspace = parts.keyspace;
    this.boundAddress = parts.boundAddress;
    this.#server = parts.server;
    this.persistence = parts.persistence;
    this.#logger = parts.logger;
    this.#replid = parts.history.replid;
    this.#startedAtMs = Date.now();
    this.#sweepTimer = setInterval(() => this.#sweep(), EXPIRY_SWEEP_INTERVAL_MS);
  }

  /** Starts a node and resolves once it serves. Rejects with a KvError that says what
   * stopped it (data directory unusable, address in use). */
  static async start(config: ServerConfig, logger: Logger): Promise<Node> {
    await prepareDataDir(config.dataDir);
    const persistence: Persistence = new VolatilePersistence();
    const store = new Store();
    const history = await persistence.recover(store);
    const staging = new WriteStaging(store, history.seq);
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
    const server = createServer(transportLimitsFor(config.limits.keyBytesMax, config.limits.valueBytesMax));
    const serverLogger = logger.child("server");
    // The node is created before the port is bound so Info can describe it; its handlers
    // only run once the server listens.
    const started: { node?: Node } = {};
    server.addService(kvstoreServiceDefinition(), {
      ...dataHandlers(keyspace, serverLogger),
      Info: unaryHandler<InfoRequest, InfoResponse>("Info", serverLogger, () => started.node!.info()),
    });
    const port = await listen(server, config.address);
    const boundAddress = { host: config.address.host, port };
    const node = new Node(config, { keyspace, server, persistence, logger: serverLogger, boundAddress, history });
    started.node = node;
    serverLogger.info(`Listening on ${formatAddress(boundAddress)}`, {
      role: config.role,
      version: VERSION,
      pid: Deno.pid,
      master: config.masterAddress === null ? undefined : formatAddress(config.masterAddress),
      dataDir: config.dataDir,
    });
    if (config.role === "replica") {
      serverLogger.warn("Replication is not available yet: this replica serves reads of its own data only");
    }
    return node;
  }

  /** What the Info rpc answers. */
  info(): InfoResponse {
    const staging = this.keyspace.pipeline.staging;
    return {
      role: this.keyspace.role,
      version: VERSION,
      address: formatAddress(this.boundAddress),
      uptime_ms: Date.now() - this.#startedAtMs,
      keys: staging.store.size,
      expiring_keys: staging.store.expiringCount,
      expired_keys: this.keyspace.expiredKeys,
      dataset_bytes: staging.store.datasetBytes,
      rss_bytes: Deno.memoryUsage().rss,
      replid: this.#replid,
      last_seq: staging.committedSeq,
      master_address: this.keyspace.masterAddress ?? "",
    };
  }

  /** Stops the node gracefully; safe to call more than once. */
  shutdown(reason: string): Promise<void> {
    this.#shutdown ??= this.#stop(reason);
    return this.#shutdown;
  }

  async #stop(reason: string): Promise<void> {
    this.#logger.info("Shutting down", { reason });
    clearInterval(this.#sweepTimer);
    await stopServer(this.#server, SHUTDOWN_GRACE_MS);
    await this.keyspace.pipeline.drain();
    await this.persistence.close();
    this.#logger.info("Stopped", { keys: this.keyspace.pipeline.staging.store.size });
  }

  #sweep(): void {
    try {
      this.keyspace.sweepExpired();
    } catch (error) {
      this.#logger.error("Expiry sweep failed", { error: String(error) });
    }
  }
}

/** Creates the data directory if needed and checks that it is a writable directory. */
async function prepareDataDir(dataDir: string): Promise<void> {
  try {
    await Deno.mkdir(dataDir, { recursive: true });
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
    throw new KvError("FAILED_PRECONDITION", `server: Cannot use data directory ${JSON.stringify(dataDir)}: ${detail}`);
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
