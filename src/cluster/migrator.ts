/**
 * The mover of a rebalancing: walks every shard keys move from and settles each moving
 * key it finds onto its new owner, a batch at a time, while clients keep using the
 * cluster (the protocol is in router_core.ts).
 *
 * Sources: adding a shard moves keys off every existing shard (about 1/(N+1) of each
 * one's keys); removing a shard moves all of the leaving shard's keys. Each source is
 * scanned once from the start with a keys-only Scan; scan cursors are live iterators, so
 * every key present for the whole scan is seen, and moving keys are never written to a
 * source during the migration. One pass therefore leaves no moving key behind.
 *
 * Failures: any failed step (a shard unreachable, a deadline passed) is retried after
 * a pause, for as long as it takes, with the state "waiting" and the error shown in the
 * progress; settle is idempotent, so a retried step is safe. A source's scan cursor
 * lost meanwhile (a shard restarted, or idle past its lifetime) restarts that source's
 * scan. A router that stops or crashes resumes the migration from scratch on restart.
 *
 * @module
 */

import { ROUTER_FORWARD_DEADLINE_MS } from "../config/limits.ts";
import { KvError } from "../errors.ts";
import type { Logger } from "../logging/logger.ts";
import type { InfoResponse, ScanResponse } from "../transport/messages.ts";
import type { RouterCore, ShardDirectory } from "./router_core.ts";
import type { CallContext } from "./shard_api.ts";
import type { Topology } from "./topology.ts";

export type MigrationState = "moving" | "waiting" | "done";

/** How far a migration has got. */
export interface MigrationProgress {
  state: MigrationState;
  /** Why the last step failed, while waiting to retry it. */
  error: string;
  keysMoved: number;
  /** An estimate, from the shards' key counts and the ring. */
  keysToMove: number;
  keysScanned: number;
  keysToScan: number;
}

export interface MigratorOptions {
  /** Keys per Scan page on a source. */
  readonly scanPageKeys: number;
  /** Keys settled per locked step. */
  readonly batchKeys: number;
  /** Pause after each step, in ms (0: none). */
  readonly pauseMs: number;
  /** Pause before a failed step is retried, in ms. */
  readonly retryMs: number;
  readonly clock: () => number;
  /** Resolves after `ms`, or rejects when `signal` aborts. */
  readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  readonly logger: Logger;
  /** Called after every step with the progress so far (the same object, updated). */
  readonly onProgress: (progress: MigrationProgress) => void;
}

export class Migrator {
  readonly progress: MigrationProgress = {
    state: "moving",
    error: "",
    keysMoved: 0,
    keysToMove: 0,
    keysScanned: 0,
    keysToScan: 0,
  };
  #core: RouterCore;
  #shards: ShardDirectory;
  #topology: Topology;
  #options: MigratorOptions;

  /** A mover for the migration `topology` describes (it must be migrating). */
  constructor(core: RouterCore, shards: ShardDirectory, topology: Topology, options: MigratorOptions) {
    if (!topology.migrating) throw new Error("migrator: The topology has no migration");
    this.#core = core;
    this.#shards = shards;
    this.#topology = topology;
    this.#options = options;
  }

  /** The shards keys move from. */
  sources(): string[] {
    const migration = this.#topology.membership.migration!;
    if (migration.kind === "remove") return [migration.shard.name];
    return this.#topology.membership.shards.map((spec) => spec.name);
  }

  /** Moves every moving key; resolves when every source is drained (the progress state
   * stays "moving"), rejects if `signal` aborts first. */
  async run(signal: AbortSignal): Promise<void> {
    await this.#estimate(signal);
    for (const source of this.sources()) await this.#drain(source, signal);
    // Not "done" yet: that is for whoever records the completed membership.
    this.#options.onProgress(this.progress);
  }

  /** Fills in the totals from each source's key count and the share of it that moves. */
  async #estimate(signal: AbortSignal): Promise<void> {
    const { before, after } = this.#topology;
    const shares = before.shares();
    const moving = before.movingShares(after);
    for (const source of this.sources()) {
      const info = await this.#retrying(
        `read the key count of shard ${JSON.stringify(source)}`,
        signal,
        () => this.#shards(source).call<InfoResponse>("Info", {}, this.#context()),
      );
      const keys = Number(info.keys);
      this.progress.keysToScan += keys;
      const share = shares.get(source) ?? 0;
      this.progress.keysToMove += share === 0 ? 0 : Math.round(keys * (moving.get(source) ?? 0) / share);
    }
    this.#options.onProgress(this.progress);
  }

  /** Scans `source` to the end, settling the moving keys of each page. */
  async #drain(source: string, signal: AbortSignal): Promise<void> {
    let cursor = "";
    while (true) {
      let page: ScanResponse;
      try {
        page = await this.#retrying(
          `scan shard ${JSON.stringify(source)}`,
          signal,
          () =>
            this.#shards(source).call<ScanResponse>("Scan", {
              cursor,
              prefix: "",
              limit: this.#options.scanPageKeys,
              include_values: false,
            }, this.#context()),
          (error) => !(cursor !== "" && error instanceof KvError && error.code === "INVALID_ARGUMENT"),
        );
      } catch (error) {
        if (signal.aborted || !(error instanceof KvError) || error.code !== "INVALID_ARGUMENT") throw error;
        // The shard no longer knows the cursor: start its scan again; keys already moved
        // are gone from it, so nothing is moved twice.
        this.#options.logger.warn("Restarting the scan of a shard whose cursor was lost", {
          shard: source,
          error: error.message,
        });
        cursor = "";
        continue;
      }
      this.progress.keysScanned += page.entries.length;
      const keys = page.entries.map((entry) => entry.key);
      for (let start = 0; start < keys.length; start += this.#options.batchKeys) {
        const batch = keys.slice(start, start + this.#options.batchKeys);
        this.progress.keysMoved += await this.#retrying(
          `move keys from shard ${JSON.stringify(source)}`,
          signal,
          () => this.#core.moveFound(source, batch, this.#context()),
        );
        if (this.#options.pauseMs > 0) await this.#options.sleep(this.#options.pauseMs, signal);
      }
      this.#options.onProgress(this.progress);
      if (page.cursor === "") return;
      cursor = page.cursor;
    }
  }

  /**
   * Runs `step` until it succeeds, pausing `retryMs` after each failure with the state
   * "waiting". Errors for which `retry` says false are thrown at once. Rejects when
   * `signal` aborts.
   */
  async #retrying<T>(
    what: string,
    signal: AbortSignal,
    step: () => Promise<T>,
    retry: (error: unknown) => boolean = () => true,
  ): Promise<T> {
    while (true) {
      signal.throwIfAborted();
      try {
        const result = await step();
        if (this.progress.state === "waiting") {
          this.progress.state = "moving";
          this.progress.error = "";
          this.#options.logger.info("Rebalancing resumed");
          this.#options.onProgress(this.progress);
        }
        return result;
      } catch (error) {
        if (signal.aborted || !retry(error)) throw error;
        const message = `Cannot ${what}: ${error instanceof Error ? error.message : String(error)}`;
        if (this.progress.state !== "waiting" || this.progress.error !== message) {
          this.#options.logger.warn("Rebalancing waits: a step failed and will be retried", {
            error: message,
            retryMs: this.#options.retryMs,
          });
        }
        this.progress.state = "waiting";
        this.progress.error = message;
        this.#options.onProgress(this.progress);
        await this.#options.sleep(this.#options.retryMs, signal);
      }
    }
  }

  #context(): CallContext {
    return { deadlineMs: this.#options.clock() + ROUTER_FORWARD_DEADLINE_MS, readFrom: "master" };
  }
}
