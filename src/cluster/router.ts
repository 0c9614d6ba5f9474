/**
 * A router's lifecycle: load or create the cluster's membership, link to the shards,
 * serve kvstore.KeyValueStore on one address, resume an unfinished rebalancing, and shut
 * down gracefully.
 *
 * Start-up: the router locks its data directory (kvstore.lock, as a node does), so one
 * router alone writes its state file; the state file, if there is one, says which shards
 * form the ring (and whether a rebalancing was under way); --shards is only read to
 * create a new cluster, as etcd reads --initial-cluster. The router then binds its
 * address and logs `Listening on HOST:PORT role=router shards=N`.
 *
 * With --metrics-address, it serves Prometheus metrics and /healthz over HTTP as a node
 * does (the node's registry, exposition and endpoint; its own metrics are in
 * router_metrics.ts), and probes its shards every ROUTER_SHARD_PROBE_INTERVAL_MS for
 * kvstore_router_shard_up.
 *
 * Shutdown (SIGINT, SIGTERM): report NOT_SERVING, pause a running rebalancing (the state
 * file still records it, so the next start resumes it), stop accepting calls, let calls
 * in flight finish, close the metrics endpoint and the links to the shards.
 *
 * @module
 */

import { type Address, formatAddress } from "../config/address.ts";
import {
  FDS_RESERVED,
  MIGRATION_RETRY_MS,
  MIGRATION_SCAN_PAGE_KEYS,
  ROUTER_LINK_FDS_RESERVED,
  ROUTER_RETIRED_LINK_GRACE_MS,
  ROUTER_SHARD_INFO_DEADLINE_MS,
  ROUTER_SHARD_PROBE_INTERVAL_MS,
  SHUTDOWN_GRACE_MS,
} from "../config/limits.ts";
import { KvError } from "../errors.ts";
import type { Logger } from "../logging/logger.ts";
import { lockDataDir } from "../persistence/deno_storage.ts";
import { type MetricsServer, serveMetrics } from "../metrics/http.ts";
import { MetricsRegistry } from "../metrics/registry.ts";
import { connectionsLimit, openFilesLimit } from "../server/connection_limit.ts";
import { registerProcessMetrics, RpcMetrics } from "../server/node_metrics.ts";
import { Health, NODE_HEALTH_SERVICES } from "../server/health.ts";
import { prepareDataDir, stopServer } from "../server/node.ts";
import { addOperationsServices, processInfo } from "../server/operations.ts";
import {
  addService,
  CLIENT_TRANSPORT_LIMITS,
  countConnections,
  createServer,
  type grpc,
  kvstoreServiceDefinition,
  listen,
  transportLimitsFor,
} from "../transport/grpc.ts";
import type { InfoResponse } from "../transport/messages.ts";
import { VERSION } from "../version.ts";
import { ClusterAdmin, type ShardPool } from "./cluster_admin.ts";
import { initialMembership, type Membership, sameShards, shardsInvolved } from "./membership.ts";
import type { RouterConfig } from "./router_flags.ts";
import { RouterCore } from "./router_core.ts";
import { registerRouterMetrics, ShardCallMetrics, ShardProbes } from "./router_metrics.ts";
import { routerHandlers } from "./router_service.ts";
import type { ShardApi } from "./shard_api.ts";
import { ShardLink } from "./shard_link.ts";
import { formatShardSpec, type ShardSpec } from "./shard_spec.ts";
import { readState, STATE_FILE_NAME, writeState } from "./state_file.ts";
import { Topology } from "./topology.ts";

export class Router {
  readonly config: RouterConfig;
  readonly boundAddress: Address;
  readonly admin: ClusterAdmin;
  /** What grpc.health.v1 reports: SERVING from listening until shutdown begins. */
  readonly health: Health;
  /** The router's metrics (see router_metrics.ts); served with --metrics-address. */
  readonly metrics: MetricsRegistry;
  #server: grpc.Server;
  #pool: LinkPool;
  #logger: Logger;
  /** The data directory's lock, held while the router runs: one router per state file. */
  #dataDirLock: Deno.FsFile;
  #rpcMetrics: RpcMetrics;
  #metricsServer: MetricsServer | null;
  #probeLoop: ProbeLoop;
  #startedAtMs: number;
  #shutdown: Promise<void> | null = null;

  private constructor(
    config: RouterConfig,
    parts: {
      boundAddress: Address;
      admin: ClusterAdmin;
      health: Health;
      server: grpc.Server;
      pool: LinkPool;
      logger: Logger;
      dataDirLock: Deno.FsFile;
      metrics: MetricsRegistry;
      rpcMetrics: RpcMetrics;
      metricsServer: MetricsServer | null;
      probeLoop: ProbeLoop;
      startedAtMs: number;
    },
  ) {
    this.config = config;
    this.boundAddress = parts.boundAddress;
    this.admin = parts.admin;
    this.health = parts.health;
    this.#server = parts.server;
    this.#pool = parts.pool;
    this.#logger = parts.logger;
    this.#dataDirLock = parts.dataDirLock;
    this.metrics = parts.metrics;
    this.#rpcMetrics = parts.rpcMetrics;
    this.#metricsServer = parts.metricsServer;
    this.#probeLoop = parts.probeLoop;
    this.#startedAtMs = parts.startedAtMs;
  }

  /** Starts a router and resolves once it serves. Rejects with a KvError saying what
   * stopped it (no shards to serve, an unreadable state file, the address in use). */
  static async start(config: RouterConfig, logger: Logger): Promise<Router> {
    const log = logger.child("router");
    await prepareDataDir(config.dataDir, "router");
    // One router per state file, as one node per data directory: two routers writing one
    // state file would each record their own changes over the other's, and route by
    // rings that differ.
    const dataDirLock = await lockDataDir(config.dataDir, "router");
    try {
      return await Router.#start(config, logger, log, dataDirLock);
    } catch (error) {
      dataDirLock.close();
      throw error;
    }
  }

  static async #start(config: RouterConfig, logger: Logger, log: Logger, dataDirLock: Deno.FsFile): Promise<Router> {
    const startedAtMs = Date.now();
    const { membership, created } = await loadMembership(config, log);
    const metrics = new MetricsRegistry();
    // Every call on a shard is counted and timed by the link it goes through.
    const shardCalls = new ShardCallMetrics(metrics, () => performance.now());
    const pool = new LinkPool(config, log, (link) => shardCalls.wrap(link));
    const core = new RouterCore(new Topology(membership), (name) => pool.get(name), {
      limits: config.limits,
      clock: Date.now,
    });
    const admin = new ClusterAdmin(membership, {
      core,
      pool,
      persist: (next) => writeState(config.dataDir, next),
      logger: logger.child("rebalance"),
      clock: Date.now,
      sleep,
      scanPageKeys: MIGRATION_SCAN_PAGE_KEYS,
      batchKeys: config.migrationBatchKeys,
      pauseMs: config.migrationPauseMs,
      retryMs: MIGRATION_RETRY_MS,
    });
    // Calls are counted as a node counts them, for /metrics and Info's calls_total.
    const rpcMetrics = new RpcMetrics(metrics);
    const server = createServer(transportLimitsFor(config.limits.keyBytesMax, config.limits.valueBytesMax), {
      instrument: (definition, handlers) => rpcMetrics.instrument(definition, handlers),
    });
    const started: { router?: Router } = {};
    // A router serves the standard health service and reflection like a node, so load
    // balancers and grpcurl treat it as one. It is SERVING once it listens: a shard that
    // is down fails only the calls for its keys, with UNAVAILABLE naming it.
    const health = new Health(NODE_HEALTH_SERVICES, false);
    addService(
      server,
      kvstoreServiceDefinition(),
      routerHandlers({
        core,
        admin,
        readFrom: config.readFrom,
        info: (deadlineMs) => started.router!.info(deadlineMs),
        logger: log,
      }),
    );
    addOperationsServices(server, health);
    // As a node's: a router that ran out of descriptors while accepting would never accept
    // again (Deno's node:net), so client connections stay below the open-file limit, less
    // what its links to the shards need.
    const { connectionsMax, loweredBy } = connectionsLimit(
      config.connectionsMax,
      openFilesLimit(),
      FDS_RESERVED + ROUTER_LINK_FDS_RESERVED,
    );
    const probes = new ShardProbes({
      shards: () => shardsInvolved(admin.membership),
      link: (name) => pool.uncounted(name),
      clock: Date.now,
      deadlineMs: ROUTER_SHARD_INFO_DEADLINE_MS,
      onChange: (spec, up, reason) => {
        const shard = `Shard ${JSON.stringify(spec.name)} (${spec.master})`;
        if (up) log.info(`${shard} answers again`);
        else log.warn(`${shard} does not answer: calls for its keys fail until it does`, { reason });
      },
    });
    registerProcessMetrics(metrics, {
      role: () => "router",
      health,
      connections: () => countConnections(server),
      startedAtMs,
    });
    registerRouterMetrics(metrics, { core, admin, probes });
    let port: number;
    let metricsServer: MetricsServer | null = null;
    try {
      port = await listen(server, config.address, "router", connectionsMax);
      if (config.metricsAddress !== null) {
        metricsServer = await serveMetrics(config.metricsAddress, {
          registry: metrics,
          logger: logger.child("metrics"),
          serving: () => health.serving,
        }).catch((error) => {
          server.forceShutdown();
          throw error;
        });
      }
    } catch (error) {
      pool.closeAll();
      throw error;
    }
    if (loweredBy !== null) {
      log.warn(
        `The open-file limit is ${loweredBy}, so at most ${connectionsMax} client connections are kept open at ` +
          `once (--max-connections asks for ${config.connectionsMax}); raise the limit (ulimit -n) for more`,
      );
    }
    const boundAddress = { host: config.address.host, port };
    const router = new Router(config, {
      boundAddress,
      admin,
      health,
      server,
      pool,
      logger: log,
      dataDirLock,
      metrics,
      rpcMetrics,
      metricsServer,
      // Shards are probed for kvstore_router_shard_up and for the log, which says once
      // when a shard stops answering and once when it is back.
      probeLoop: new ProbeLoop(probes, log),
      startedAtMs,
    });
    started.router = router;
    health.setAllServing(true);
    router.#probeLoop.start();
    log.info(`Listening on ${formatAddress(boundAddress)}`, {
      role: "router",
      version: VERSION,
      pid: Deno.pid,
      shards: membership.shards.length,
      epoch: membership.epoch,
      vnodes: membership.vnodes,
      dataDir: config.dataDir,
      metrics: metricsServer === null ? undefined : `http://${formatAddress(metricsServer.address)}/metrics`,
      config: config.configFile ?? undefined,
    });
    admin.resume();
    admin.checkShards({ newCluster: created }).catch((error) =>
      log.error("Cannot check the shards", { error: String(error) })
    );
    return router;
  }

  /** What the Info rpc answers: the router itself, the sums over its shards, and the
   * cluster's status; shards that have not answered by `deadlineMs` (unix ms) are
   * reported unreachable (see ClusterAdmin.describe). */
  async info(deadlineMs?: number): Promise<InfoResponse> {
    const { status, infos } = await this.admin.describe(deadlineMs);
    const sum = (field: keyof InfoResponse) => infos.reduce((total, info) => total + Number(info?.[field] ?? 0), 0);
    return {
      role: "router",
      version: VERSION,
      address: formatAddress(this.boundAddress),
      keys: sum("keys"),
      expiring_keys: sum("expiring_keys"),
      expired_keys: sum("expired_keys"),
      dataset_bytes: sum("dataset_bytes"),
      replid: "",
      last_seq: 0,
      master_address: "",
      cluster: status,
      // Operations, as a node reports them.
      ...processInfo({
        server: this.#server,
        health: this.health,
        metricsServer: this.#metricsServer,
        rpcMetrics: this.#rpcMetrics,
        startedAtMs: this.#startedAtMs,
        configFile: this.config.configFile,
      }),
      // Where the ring is kept (kvstore-cluster.json): a router has no dataset of its own.
      data_dir: this.config.dataDir,
    };
  }

  /** Stops the router gracefully; safe to call more than once. */
  shutdown(reason: string): Promise<void> {
    this.#shutdown ??= this.#stop(reason);
    return this.#shutdown;
  }

  async #stop(reason: string): Promise<void> {
    this.#logger.info("Shutting down", { reason });
    this.health.enterShutdown();
    this.#probeLoop.stop();
    await this.admin.stop();
    await stopServer(this.#server, SHUTDOWN_GRACE_MS);
    await this.#metricsServer?.close();
    this.#pool.closeAll();
    this.#dataDirLock.close();
    this.#logger.info("Stopped");
  }
}

/** The membership from the state file, or a new one from --shards (saved at once);
 * `created` says which. */
async function loadMembership(
  config: RouterConfig,
  logger: Logger,
): Promise<{ membership: Membership; created: boolean }> {
  const saved = await readState(config.dataDir);
  const path = `${config.dataDir}/${STATE_FILE_NAME}`;
  if (saved !== null) {
    if (config.shards !== null && !sameShards(config.shards, saved.shards)) {
      logger.warn(
        `${config.shardsSetting} differs from the ring in the state file, which wins (add-shard and remove-shard ` +
          "change it); --shards is only read when a cluster is created",
        { stateFile: path, shards: saved.shards.map(formatShardSpec).join(",") },
      );
    }
    if (saved.vnodes !== config.vnodes) {
      logger.info("Using the vnode count the cluster was created with", { vnodes: saved.vnodes });
    }
    return { membership: saved, created: false };
  }
  if (config.shards === null) {
    throw new KvError(
      "FAILED_PRECONDITION",
      `router: No cluster to serve: ${path} does not exist; give --shards HOST:PORT,... to create one`,
    );
  }
  const membership = initialMembership(config.shards, config.vnodes);
  await writeState(config.dataDir, membership);
  logger.info("Created a new cluster", { stateFile: path, shards: config.shards.map(formatShardSpec).join(",") });
  return { membership, created: true };
}

/** Links to the shards by name, each with its calls counted (`instrument`). A shard that
 * leaves the ring keeps its link for a grace period, so calls routed to it before the
 * change can finish. */
class LinkPool implements ShardPool {
  #links = new Map<string, ShardLink>();
  #counted = new Map<string, ShardApi>();
  #config: RouterConfig;
  #logger: Logger;
  #instrument: (link: ShardLink) => ShardApi;
  #retiring = new Set<ReturnType<typeof setTimeout>>();

  constructor(config: RouterConfig, logger: Logger, instrument: (link: ShardLink) => ShardApi) {
    this.#config = config;
    this.#logger = logger;
    this.#instrument = instrument;
  }

  get(name: string): ShardApi {
    const link = this.#counted.get(name);
    if (link === undefined) throw noLink(name);
    return link;
  }

  /** The link to shard `name` without its calls counted: for the probes, whose Info
   * every few seconds would otherwise crowd the shard's call metrics. */
  uncounted(name: string): ShardApi {
    const link = this.#links.get(name);
    if (link === undefined) throw noLink(name);
    return link;
  }

  sync(specs: readonly ShardSpec[]): void {
    const wanted = new Map(specs.map((spec) => [spec.name, spec]));
    for (const [name, link] of this.#links) {
      const spec = wanted.get(name);
      if (spec !== undefined && formatShardSpec(spec) === formatShardSpec(link.spec)) continue;
      this.#links.delete(name);
      this.#counted.delete(name);
      this.#retire(link);
    }
    for (const spec of specs) {
      if (this.#links.has(spec.name)) continue;
      const link = new ShardLink(spec, {
        connectTimeoutMs: this.#config.connectTimeoutMs,
        limits: CLIENT_TRANSPORT_LIMITS,
      });
      this.#links.set(spec.name, link);
      this.#counted.set(spec.name, this.#instrument(link));
    }
  }

  closeAll(): void {
    for (const timer of this.#retiring) clearTimeout(timer);
    this.#retiring.clear();
    for (const link of this.#links.values()) link.close();
    this.#links.clear();
    this.#counted.clear();
  }

  #retire(link: ShardLink): void {
    this.#logger.debug("Closing the link to a shard that left the ring", { shard: link.spec.name });
    const timer = setTimeout(() => {
      this.#retiring.delete(timer);
      link.close();
    }, ROUTER_RETIRED_LINK_GRACE_MS);
    this.#retiring.add(timer);
  }
}

function noLink(name: string): KvError {
  return new KvError("INTERNAL", `router: No link to shard ${JSON.stringify(name)}`);
}

/** Runs a round of shard probes at once, then another ROUTER_SHARD_PROBE_INTERVAL_MS
 * after each ends, so rounds never overlap, until stopped. A round in flight when the
 * router stops is left to fail as the links close, rather than held for its deadline. */
class ProbeLoop {
  #probes: ShardProbes;
  #logger: Logger;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;

  constructor(probes: ShardProbes, logger: Logger) {
    this.#probes = probes;
    this.#logger = logger;
  }

  start(): void {
    if (this.#stopped) return;
    this.#probes.round().catch((error) => this.#logger.error("Cannot probe the shards", { error: String(error) }))
      .finally(() => {
        if (!this.#stopped) this.#timer = setTimeout(() => this.start(), ROUTER_SHARD_PROBE_INTERVAL_MS);
      });
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }
}

/** Resolves after `ms`; rejects with the abort reason if `signal` aborts first. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
