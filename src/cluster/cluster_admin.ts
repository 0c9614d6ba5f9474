/**
 * Changes to the cluster's membership, as the router carries them out: adding a shard,
 * removing one, and describing the cluster.
 *
 * A change goes: check it (the shard answers, is a master, is empty unless forced) ->
 * record the new membership in the state file -> route by it -> wait until calls that
 * started under the old ring have finished -> move the keys (migrator.ts) -> record the
 * completed membership -> route by the new ring alone -> close links to shards that
 * left. Recording before acting means a router that stops at any point finds on restart
 * a membership it can route by and a migration it can finish ({@linkcode resume}).
 *
 * One change runs at a time; asking to add the shard that is being added watches the
 * running change instead of failing, so an operator whose terminal dropped can simply
 * run the command again.
 *
 * @module
 */

import { MIGRATION_PROGRESS_INTERVAL_MS, ROUTER_SHARD_INFO_DEADLINE_MS } from "../config/limits.ts";
import { isLoadingRefusal, KvError, plural, quote } from "../errors.ts";
import type { Logger } from "../logging/logger.ts";
import type {
  ClusterStatusResponse,
  DigestResponse,
  InfoResponse,
  MigrationStatus,
  ShardStatus,
} from "../transport/messages.ts";
import { KeyLocks } from "./key_locks.ts";
import {
  completeMigration,
  describeMigration,
  findShard,
  forgetShard,
  type Membership,
  shardsAfter,
  shardsInvolved,
  startAdd,
  startRemove,
} from "./membership.ts";
import { type MigrationProgress, Migrator } from "./migrator.ts";
import type { RouterCore } from "./router_core.ts";
import type { ShardApi } from "./shard_api.ts";
import { formatShardSpec, shardMatches, type ShardSpec } from "./shard_spec.ts";
import { Topology } from "./topology.ts";

/** The router's links to shards, opened and closed as the membership changes. */
export interface ShardPool {
  /** The link to shard `name`; it must have been opened by {@linkcode sync}. */
  get(name: string): ShardApi;
  /** Opens links to `specs` not yet linked, and retires links to shards not in it. */
  sync(specs: readonly ShardSpec[]): void;
}

export interface ClusterAdminOptions {
  readonly core: RouterCore;
  readonly pool: ShardPool;
  /** Records a membership durably; rejects if it could not. */
  readonly persist: (membership: Membership) => Promise<void>;
  readonly logger: Logger;
  readonly clock: () => number;
  /** Resolves after `ms`, or rejects when `signal` aborts. */
  readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  readonly scanPageKeys: number;
  readonly batchKeys: number;
  readonly pauseMs: number;
  readonly retryMs: number;
}

/** Receives the progress of the running change. */
export type ProgressListener = (status: MigrationStatus) => void;

interface ActiveMigration {
  readonly membership: Membership;
  readonly abort: AbortController;
  progress: MigrationProgress;
  finishedAtMs: number;
  lastNotifiedMs: number;
  lastState: string;
  done: Promise<void>;
}

export class ClusterAdmin {
  #membership: Membership;
  #options: ClusterAdminOptions;
  #active: ActiveMigration | null = null;
  #listeners = new Set<ProgressListener>();
  /** Serializes changes: one check-and-start at a time. */
  #changes = new KeyLocks();
  #stopped = false;

  constructor(membership: Membership, options: ClusterAdminOptions) {
    this.#membership = membership;
    this.#options = options;
    options.pool.sync(shardsInvolved(membership));
  }

  get membership(): Membership {
    return this.#membership;
  }

  /** Continues the migration the membership records, if any (after a restart). */
  resume(): void {
    if (this.#membership.migration === null || this.#active !== null) return;
    this.#options.logger.info("Resuming the rebalancing the state file records", {
      migration: describeMigration(this.#membership.migration),
    });
    this.#start(this.#membership);
  }

  /** The running change's progress, or null when the ring is stable. */
  current(): MigrationStatus | null {
    return this.#active === null ? null : this.#wireStatus(this.#active);
  }

  /** Calls `listener` with the progress of the running change; returns the unsubscribe. */
  watch(listener: ProgressListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Adds `shard`: checks that it answers, is a master and holds no keys (unless
   * `force`), then starts moving keys onto it. Resolves once the change is recorded and
   * under way. If the same shard is already being added, resolves at once (the caller
   * watches the running change).
   */
  async addShard(shard: ShardSpec, options: { force: boolean }): Promise<void> {
    const release = await this.#changes.lock(["change"]);
    try {
      const migration = this.#membership.migration;
      if (migration?.kind === "add" && migration.shard.name === shard.name) return;
      if (this.#membership.shards.some((spec) => spec.name === shard.name)) {
        throw new KvError(
          "FAILED_PRECONDITION",
          `cluster: Cannot add shard ${quote(shard.name)}: it is already on the ring`,
        );
      }
      const next = startAdd(this.#membership, shard, this.#options.clock());
      this.#options.pool.sync(shardsInvolved(next));
      try {
        await this.#checkJoining(shard, options.force);
      } catch (error) {
        this.#options.pool.sync(shardsInvolved(this.#membership));
        throw error;
      }
      await this.#adopt(next);
      this.#options.logger.info("Adding a shard: moving the keys it now owns", { shard: formatShardSpec(shard) });
      this.#start(next);
    } finally {
      release();
    }
  }

  /**
   * Removes the shard `reference` names: starts moving its keys to the others, or with
   * `forget` takes it off the ring at once without moving anything. Resolves with
   * "moving" or "forgotten" once the change is recorded.
   */
  async removeShard(reference: string, options: { forget: boolean }): Promise<"moving" | "forgotten"> {
    const release = await this.#changes.lock(["change"]);
    try {
      const migration = this.#membership.migration;
      if (migration?.kind === "remove" && shardMatches(migration.shard, reference) && !options.forget) {
        return "moving";
      }
      if (options.forget) {
        // Checked first, so a refused forget stops nothing.
        forgetShard(this.#membership, reference);
        // Forgetting the shard a running change moves keys to or from calls the change
        // off: stop its mover before the ring changes under it.
        const active = this.#active;
        if (active !== null) {
          active.abort.abort(new Error(`shard ${quote(reference)} was forgotten`));
          await active.done;
        }
        // The change may have completed meanwhile (its end was being recorded): forget
        // from the membership as it is now, so each recorded change has its own epoch. A
        // removal that completed has already taken the shard off the ring.
        if (findShard(this.#membership, reference) === undefined) return "forgotten";
        const next = forgetShard(this.#membership, reference);
        const gone = shardsInvolved(this.#membership).find((spec) => !next.shards.includes(spec))!;
        await this.#adopt(next);
        this.#options.pool.sync(shardsInvolved(next));
        this.#options.logger.warn("Forgot a shard: its keys are no longer part of the cluster", { shard: gone.name });
        return "forgotten";
      }
      const next = startRemove(this.#membership, reference, this.#options.clock());
      const leaving = next.migration!.shard;
      await this.#checkLeaving(leaving);
      await this.#adopt(next);
      this.#options.logger.info("Removing a shard: moving its keys to the others", { shard: leaving.name });
      this.#start(next);
      return "moving";
    } finally {
      release();
    }
  }

  /** Describes the cluster: every shard with what its master says of itself. */
  async status(deadlineMs?: number): Promise<ClusterStatusResponse> {
    return (await this.describe(deadlineMs)).status;
  }

  /** The cluster's status, and each involved shard's Info (null where it did not answer),
   * in the order of `status.shards`. Each shard has ROUTER_SHARD_INFO_DEADLINE_MS to
   * answer, or until `deadlineMs` (unix ms) when that comes first: a caller with less
   * time than that (`kvstore info --timeout-ms 1000`) still gets the shards that did
   * answer, and the others as unreachable, rather than no answer at all. */
  async describe(deadlineMs?: number): Promise<{ status: ClusterStatusResponse; infos: (InfoResponse | null)[] }> {
    const membership = this.#membership;
    const migration = membership.migration;
    const shares = new Topology(membership).after.shares();
    const probeDeadlineMs = Math.min(this.#options.clock() + ROUTER_SHARD_INFO_DEADLINE_MS, deadlineMs ?? Infinity);
    const infos: (InfoResponse | null)[] = [];
    const shards = await Promise.all(
      shardsInvolved(membership).map(async (spec, i): Promise<ShardStatus> => {
        infos[i] = null;
        const state = migration?.shard.name !== spec.name
          ? "serving"
          : migration.kind === "add"
          ? "joining"
          : "leaving";
        const status: ShardStatus = {
          name: spec.name,
          master: spec.master,
          replicas: [...spec.replicas],
          state,
          reachable: false,
          error: "",
          keys: 0,
          dataset_bytes: 0,
          ring_share: shares.get(spec.name) ?? 0,
        };
        try {
          const info = await this.#options.pool.get(spec.name).call<InfoResponse>("Info", {}, {
            deadlineMs: probeDeadlineMs,
            readFrom: "master",
          });
          infos[i] = info;
          status.reachable = true;
          status.keys = info.keys;
          status.dataset_bytes = info.dataset_bytes;
        } catch (error) {
          status.error = error instanceof Error ? error.message : String(error);
        }
        return status;
      }),
    );
    return { status: { epoch: membership.epoch, vnodes: membership.vnodes, shards, migration: this.current() }, infos };
  }

  /**
   * The digest of the whole cluster's data: the shards' digests combined. A digest is a
   * pair of 32-bit sums over the entries (src/persistence/digest.ts), so the sum over
   * shards is the digest one node holding every key would give: a cluster and a single
   * node, or a cluster before and after a rebalancing, compare directly. Refused while
   * keys move, when a key may be counted on two shards, and when a shard does not answer.
   */
  async digest(): Promise<DigestResponse> {
    const membership = this.#membership;
    if (membership.migration !== null) {
      throw new KvError(
        "FAILED_PRECONDITION",
        "cluster: Cannot digest the cluster while keys move between shards (see kvstore cluster status); " +
          "ask again when the rebalancing is done",
      );
    }
    const deadlineMs = this.#options.clock() + ROUTER_SHARD_INFO_DEADLINE_MS;
    const digests = await Promise.all(
      membership.shards.map((spec) =>
        this.#options.pool.get(spec.name).call<DigestResponse>("Digest", {}, { deadlineMs, readFrom: "master" })
      ),
    );
    return combineDigests(digests);
  }

  /**
   * Logs a warning for each shard that does not answer, is not a master, or is the same
   * node as another shard: a router started with a wrong --shards should say so at once,
   * not on the first call (or the first rebalancing). With `newCluster` (the router has
   * just created the cluster from --shards), also one naming the shards that already
   * hold keys: the ring places each key on one shard, and a key held by another is not
   * found there (add-shard refuses such a shard without --force for the same reason).
   */
  async checkShards(options: { newCluster?: boolean } = {}): Promise<void> {
    const { status, infos } = await this.describe();
    const holding = status.shards.filter((shard, i) => infos[i] !== null && Number(shard.keys) > 0);
    // With one shard every key is its own.
    if (options.newCluster === true && status.shards.length > 1 && holding.length > 0) {
      this.#options.logger.warn(
        `The new cluster's shards already hold keys (${
          holding.map((shard) => `${shard.name}: ${plural(shard.keys, "key")}`).join(", ")
        }): the ring may give a key to another shard than the one that holds it, and the router looks for it ` +
          "there, so it may not be found. To place them, export each such shard's keys (kvstore export FILE " +
          "--endpoint SHARD), " +
          "start it again empty, and import the files through the router (kvstore import FILE), which writes " +
          "each key to the shard that owns it",
        { shards: holding.map((shard) => shard.name).join(",") },
      );
    }
    status.shards.forEach((shard, i) => {
      const info = infos[i];
      const twin = info === null || info.replid === ""
        ? -1
        : infos.findIndex((other, j) => j < i && other?.replid === info.replid);
      if (twin !== -1) {
        this.#options.logger.warn(
          "Two shards are one node (the same replication id): a rebalancing between them would delete keys; " +
            "spell each shard's address one way",
          { shard: shard.name, sameAs: status.shards[twin].name, replid: info!.replid },
        );
      } else if (info === null && isLoadingRefusal(shard.error)) {
        this.#options.logger.warn(
          "A shard is loading its dataset; calls for its keys are refused until it has, and it is used once loaded",
          { shard: shard.name, error: shard.error },
        );
      } else if (info === null) {
        this.#options.logger.warn("A shard does not answer; calls for its keys fail until it does", {
          shard: shard.name,
          error: shard.error,
        });
      } else if (info.role !== "master") {
        this.#options.logger.warn("A shard's address is not a master; writes for its keys will fail", {
          shard: shard.name,
          role: info.role || "unknown",
        });
      }
    });
  }

  /** Stops the running change (it resumes when the router starts again). */
  async stop(): Promise<void> {
    this.#stopped = true;
    const active = this.#active;
    if (active === null) return;
    active.abort.abort(new Error("the router is stopping"));
    await active.done;
  }

  // ---- Internals -----------------------------------------------------------------

  /** Records `membership`, then routes by it. */
  async #adopt(membership: Membership): Promise<void> {
    await this.#options.persist(membership);
    this.#membership = membership;
    this.#options.core.setTopology(new Topology(membership));
  }

  async #checkJoining(shard: ShardSpec, force: boolean): Promise<void> {
    const info = await this.#probe(shard, "add");
    if (info.role !== "master") {
      const what = info.role === "router" ? "a router" : `a ${info.role || "node of unknown role"}`;
      throw new KvError(
        "FAILED_PRECONDITION",
        `cluster: Cannot add shard ${
          quote(shard.name)
        }: ${shard.master} is ${what}; a shard's address must be a master`,
      );
    }
    const twin = await this.#sameNode(info, this.#membership.shards);
    if (twin !== null) {
      throw new KvError(
        "FAILED_PRECONDITION",
        `cluster: Cannot add shard ${quote(shard.name)}: it answers as the node already on the ring as shard ` +
          `${quote(twin.name)} (the same replication id ${info.replid}), so its keys would be moved onto the node ` +
          `that holds them and then deleted; a shard must be a node of its own (is ${shard.master} another ` +
          `spelling of ${twin.master}?)`,
      );
    }
    const keys = Number(info.keys);
    if (keys > 0 && !force) {
      throw new KvError(
        "FAILED_PRECONDITION",
        `cluster: Cannot add shard ${quote(shard.name)}: it already holds ${
          plural(keys, "key")
        }; a new shard should be ` +
          `empty (keys it holds that it does not own would be invisible, and keys moving in would not replace ` +
          `its copies). Empty it, or pass --force to add it anyway`,
      );
    }
  }

  /**
   * The shard among `shards` whose master is the node that answered `info`, or null. A
   * node's replication id names its current history and no other master's (a replica's
   * is its master's, but a replica is never a shard), so two shards answering with the
   * same one are one node reached by two addresses. Shards that do not answer are
   * skipped: they cannot be told apart, and the check is a guard, not a proof.
   */
  async #sameNode(info: InfoResponse, shards: readonly ShardSpec[]): Promise<ShardSpec | null> {
    if (info.replid === "") return null;
    const deadlineMs = this.#options.clock() + ROUTER_SHARD_INFO_DEADLINE_MS;
    const replids = await Promise.all(shards.map(async (spec) => {
      try {
        const other = await this.#options.pool.get(spec.name).call<InfoResponse>("Info", {}, {
          deadlineMs,
          readFrom: "master",
        });
        return other.replid;
      } catch {
        return "";
      }
    }));
    const index = replids.indexOf(info.replid);
    return index === -1 ? null : shards[index];
  }

  async #checkLeaving(shard: ShardSpec): Promise<void> {
    let info: InfoResponse;
    try {
      info = await this.#probe(shard, "remove");
    } catch (error) {
      if (!(error instanceof KvError) || error.code !== "UNAVAILABLE") throw error;
      throw new KvError(
        "UNAVAILABLE",
        `${error.message}. Its keys can only move while it answers; if it is gone for good, ` +
          `remove it with --forget (its keys are then lost to the cluster)`,
      );
    }
    const twin = await this.#sameNode(info, this.#membership.shards.filter((spec) => spec.name !== shard.name));
    if (twin !== null) {
      throw new KvError(
        "FAILED_PRECONDITION",
        `cluster: Cannot remove shard ${quote(shard.name)}: it answers as the same node as shard ` +
          `${quote(twin.name)} (the same replication id ${info.replid}), so the keys moving to that shard would be ` +
          `found there and then deleted; the ring names one node twice (is ${shard.master} another spelling of ` +
          `${twin.master}?)`,
      );
    }
  }

  async #probe(shard: ShardSpec, action: string): Promise<InfoResponse> {
    try {
      return await this.#options.pool.get(shard.name).call<InfoResponse>("Info", {}, {
        deadlineMs: this.#options.clock() + ROUTER_SHARD_INFO_DEADLINE_MS,
        readFrom: "master",
      });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      throw new KvError(
        error instanceof KvError && error.code !== "UNIMPLEMENTED" ? error.code : "FAILED_PRECONDITION",
        `cluster: Cannot ${action} shard ${quote(shard.name)}: ${message}`,
      );
    }
  }

  /** Runs the migration `membership` records until it completes or the router stops. */
  #start(membership: Membership): void {
    const active: ActiveMigration = {
      membership,
      abort: new AbortController(),
      progress: { state: "moving", error: "", keysMoved: 0, keysToMove: 0, keysScanned: 0, keysToScan: 0 },
      finishedAtMs: 0,
      lastNotifiedMs: 0,
      lastState: "",
      done: Promise.resolve(),
    };
    this.#active = active;
    active.done = this.#run(active).finally(() => {
      if (this.#active === active) this.#active = null;
    });
    this.#notify(active, true);
  }

  async #run(active: ActiveMigration): Promise<void> {
    const { core, pool, logger, clock } = this.#options;
    const signal = active.abort.signal;
    const startedMs = clock();
    try {
      await core.drained();
      while (true) {
        const migrator = new Migrator(core, (name) => pool.get(name), core.topology, {
          scanPageKeys: this.#options.scanPageKeys,
          batchKeys: this.#options.batchKeys,
          pauseMs: this.#options.pauseMs,
          retryMs: this.#options.retryMs,
          clock,
          sleep: this.#options.sleep,
          logger,
          onProgress: (progress) => {
            active.progress = progress;
            this.#notify(active, false);
          },
        });
        try {
          await migrator.run(signal);
          break;
        } catch (error) {
          if (signal.aborted) throw error;
          // The migrator retries every failure it expects; anything else is a bug. Start
          // over (settling is idempotent) rather than leave the cluster half-moved.
          logger.error("Rebalancing failed unexpectedly; starting it over", { error: String(error) });
          await this.#options.sleep(this.#options.retryMs, signal);
        }
      }
      const completed = completeMigration(active.membership);
      while (true) {
        try {
          await this.#adopt(completed);
          break;
        } catch (error) {
          if (signal.aborted) throw error;
          active.progress = { ...active.progress, state: "waiting", error: String(error) };
          this.#notify(active, true);
          logger.error("Cannot record the completed rebalancing; retrying", { error: String(error) });
          await this.#options.sleep(this.#options.retryMs, signal);
        }
      }
      pool.sync(shardsInvolved(completed));
      active.finishedAtMs = clock();
      active.progress = { ...active.progress, state: "done", error: "" };
      logger.info("Rebalancing complete", {
        migration: describeMigration(active.membership.migration!),
        keysMoved: active.progress.keysMoved,
        seconds: Math.round((active.finishedAtMs - startedMs) / 100) / 10,
        shards: shardsAfter(active.membership).length,
      });
      // No change is running once its end is recorded; watchers hear "done" after that.
      if (this.#active === active) this.#active = null;
      this.#notify(active, true);
    } catch (error) {
      if (!signal.aborted) throw error;
      if (!this.#stopped) return;
      logger.info("Rebalancing paused: the router is stopping; it resumes when the router starts again", {
        keysMoved: active.progress.keysMoved,
      });
    }
  }

  /** Tells listeners, at most every MIGRATION_PROGRESS_INTERVAL_MS unless the state
   * changed or `force`. */
  #notify(active: ActiveMigration, force: boolean): void {
    const nowMs = this.#options.clock();
    const stateChanged = active.progress.state !== active.lastState;
    if (!force && !stateChanged && nowMs - active.lastNotifiedMs < MIGRATION_PROGRESS_INTERVAL_MS) return;
    active.lastNotifiedMs = nowMs;
    active.lastState = active.progress.state;
    const status = this.#wireStatus(active);
    for (const listener of [...this.#listeners]) {
      try {
        listener(status);
      } catch (error) {
        this.#options.logger.warn("A progress listener failed", { error: String(error) });
      }
    }
  }

  #wireStatus(active: ActiveMigration): MigrationStatus {
    const migration = active.membership.migration!;
    const progress = active.progress;
    return {
      kind: migration.kind,
      shard: migration.shard.name,
      started_at_ms: migration.startedAtMs,
      state: progress.state,
      error: progress.error,
      keys_moved: progress.keysMoved,
      keys_to_move: Math.max(progress.keysToMove, progress.keysMoved),
      keys_scanned: progress.keysScanned,
      keys_to_scan: Math.max(progress.keysToScan, progress.keysScanned),
      finished_at_ms: active.finishedAtMs,
    };
  }
}

/** The digest of the union of disjoint datasets: each half of the digest summed modulo
 * 2^32, and the key counts added. */
export function combineDigests(digests: readonly DigestResponse[]): DigestResponse {
  let first = 0;
  let second = 0;
  let keys = 0;
  for (const { digest, keys: count } of digests) {
    first = (first + parseInt(digest.slice(0, 8), 16)) >>> 0;
    second = (second + parseInt(digest.slice(8, 16), 16)) >>> 0;
    keys += Number(count);
  }
  const hex = (value: number) => value.toString(16).padStart(8, "0");
  return { digest: hex(first) + hex(second), keys, seq: 0, replid: "" };
}
