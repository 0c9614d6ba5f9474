/**
 * A router's own metrics. It reports the calls it answers and its process as a node
 * does, with the node's code (RpcMetrics, registerProcessMetrics in
 * src/server/node_metrics.ts); these are what only a router has:
 *
 * - the calls it makes on each shard, by status, and their latency
 *   ({@linkcode ShardCallMetrics}, which wraps each shard's link, so every call made on a
 *   shard for a client, a key move or a cluster status is observed; the probes below are
 *   not);
 * - whether each shard's master answers ({@linkcode ShardProbes}: an Info every
 *   ROUTER_SHARD_PROBE_INTERVAL_MS, whose verdict a scrape reads);
 * - the ring: its epoch and shards, the rebalancing under way, and the keys moved.
 *
 * Names follow src/metrics/registry.ts, with `kvstore_router_` for a router's own.
 * Gauges read state when scraped (`collect`); nothing on a call's path but the shard
 * call counters and histograms is updated.
 *
 * @module
 */

import { KvError } from "../errors.ts";
import {
  type Counter,
  type CounterSeries,
  DURATION_BUCKETS_SECONDS,
  type Histogram,
  type HistogramSeriesHandle,
  type MetricsRegistry,
} from "../metrics/registry.ts";
import type { ClusterAdmin } from "./cluster_admin.ts";
import { shardsInvolved } from "./membership.ts";
import type { RouterCore } from "./router_core.ts";
import type { CallContext, ShardApi } from "./shard_api.ts";
import type { ShardSpec } from "./shard_spec.ts";

/** Counts and times the calls the router makes on its shards. */
export class ShardCallMetrics {
  readonly #calls: Counter;
  readonly #duration: Histogram;
  readonly #clockMs: () => number;

  /** `clockMs` reads a monotonic clock in ms (performance.now in the router). */
  constructor(registry: MetricsRegistry, clockMs: () => number) {
    this.#calls = registry.counter({
      name: "kvstore_router_shard_requests_total",
      help: "Calls the router made on each shard (for clients, key moves and cluster status), by gRPC status code.",
      labelNames: ["shard", "code"],
    });
    this.#duration = registry.histogram({
      name: "kvstore_router_shard_duration_seconds",
      help: "Time from sending a call to a shard to its answer (or failure), in seconds.",
      labelNames: ["shard"],
      buckets: DURATION_BUCKETS_SECONDS,
    });
    this.#clockMs = clockMs;
  }

  /** Calls made on shard `shard` so far that ended with `code` (for tests). */
  calls(shard: string, code: string): number {
    return this.#calls.value({ shard, code });
  }

  /** `link`, with each call counted by the status it ended with and timed. A call that
   * fails with something other than a KvError (a bug) counts as UNKNOWN. */
  wrap(link: ShardApi): ShardApi {
    const shard = link.spec.name;
    const duration: HistogramSeriesHandle = this.#duration.series({ shard });
    // One handle per status, made on first use, so a call allocates no labels.
    const byCode = new Map<string, CounterSeries>();
    const count = (code: string) => {
      let series = byCode.get(code);
      if (series === undefined) byCode.set(code, series = this.#calls.series({ shard, code }));
      series.inc();
    };
    const clockMs = this.#clockMs;
    return {
      spec: link.spec,
      async call<Response>(rpc: string, request: object, context: CallContext): Promise<Response> {
        const startedMs = clockMs();
        try {
          const response = await link.call<Response>(rpc, request, context);
          count("OK");
          return response;
        } catch (error) {
          count(error instanceof KvError ? error.code : "UNKNOWN");
          throw error;
        } finally {
          duration.observe((clockMs() - startedMs) / 1000);
        }
      },
      close: () => link.close(),
    };
  }
}

export interface ShardProbesOptions {
  /** The shards to probe: those the ring involves now. */
  readonly shards: () => readonly ShardSpec[];
  /** The link to shard `name`, uncounted by {@linkcode ShardCallMetrics}. */
  readonly link: (name: string) => ShardApi;
  readonly clock: () => number;
  /** Each probe's deadline, in ms. */
  readonly deadlineMs: number;
  /** Called when a shard's verdict changes from one round to the next: it stops
   * answering (`reason` says how it failed), or answers again (`reason` null). The
   * router logs each change once, so an outage is one line and its end another. */
  readonly onChange?: (spec: ShardSpec, up: boolean, reason: string | null) => void;
}

/**
 * Whether each shard's master answers: a round of probes asks every shard's master for
 * its Info at once, with a deadline, and records which answered. A shard that is down,
 * hung (stopped, or slower than the deadline), or still loading its dataset (it refuses
 * every call until loaded) is down; one that answers is up. The shell runs a round every
 * ROUTER_SHARD_PROBE_INTERVAL_MS, one at a time.
 */
export class ShardProbes {
  readonly #options: ShardProbesOptions;
  #up = new Map<string, boolean>();

  constructor(options: ShardProbesOptions) {
    this.#options = options;
  }

  /** Probes every shard involved now; resolves once each has answered or failed. */
  async round(): Promise<void> {
    const shards = this.#options.shards();
    const deadlineMs = this.#options.clock() + this.#options.deadlineMs;
    const failures = await Promise.all(shards.map(async (spec) => {
      try {
        await this.#options.link(spec.name).call("Info", {}, { deadlineMs, readFrom: "master" });
        return null;
      } catch (error) {
        return error instanceof Error ? error.message : String(error);
      }
    }));
    const before = this.#up;
    // Only the shards of this round: one that left the ring meanwhile is forgotten.
    this.#up = new Map(shards.map((spec, i) => [spec.name, failures[i] === null]));
    shards.forEach((spec, i) => {
      const up = failures[i] === null;
      const was = before.get(spec.name);
      // A first verdict is no change: the router checks its shards at start and says
      // then which do not answer.
      if (was === undefined || was === up) return;
      this.#options.onChange?.(spec, up, failures[i]);
    });
  }

  /** The last verdict on shard `name`: true when it answered the last probe, false when
   * it did not, undefined before its first probe. */
  up(name: string): boolean | undefined {
    return this.#up.get(name);
  }
}

/** Where the router's ring metrics read from. */
export interface RouterState {
  readonly core: RouterCore;
  readonly admin: ClusterAdmin;
  /** Whose verdicts kvstore_router_shard_up reports (none before a first round). */
  readonly probes: ShardProbes;
}

/** Registers the metrics of the ring, the rebalancing and the shards' health. */
export function registerRouterMetrics(registry: MetricsRegistry, state: RouterState): void {
  const { core, admin, probes } = state;
  registry.gauge({
    name: "kvstore_router_ring_epoch",
    help: "The epoch of the ring the router routes by; it grows by one with every change of the ring.",
    collect: () => admin.membership.epoch,
  });
  registry.gauge({
    name: "kvstore_router_shards",
    help: "Shards on the ring (while one is added, without it; while one is removed, with it).",
    collect: () => admin.membership.shards.length,
  });
  registry.gauge({
    name: "kvstore_router_shard_up",
    help: "1 when the shard's master answered the router's last probe (an Info every few seconds), " +
      "0 when it did not (down, hung, or loading its dataset).",
    labelNames: ["shard"],
    collect: () =>
      shardsInvolved(admin.membership).flatMap((spec) => {
        const up = probes.up(spec.name);
        return up === undefined ? [] : [{ labels: { shard: spec.name }, value: up ? 1 : 0 }];
      }),
  });
  registry.gauge({
    name: "kvstore_router_rebalancing",
    help: "1 while a shard is being added or removed (keys move), else 0.",
    collect: () => admin.membership.migration === null ? 0 : 1,
  });
  registry.gauge({
    name: "kvstore_router_rebalancing_info",
    help: "Always 1 while a rebalancing runs (absent otherwise); the labels describe it: the change (add, " +
      "remove), its shard, and its state (moving, or waiting while a shard it needs does not answer).",
    labelNames: ["kind", "shard", "state"],
    collect: () => {
      const current = admin.current();
      if (current === null) return [];
      return [{ labels: { kind: current.kind, shard: current.shard, state: current.state }, value: 1 }];
    },
  });
  registry.gauge({
    name: "kvstore_router_rebalance_keys_to_move",
    help: "Keys the running rebalancing has yet to move, estimated from the shards' key counts (0 when none runs).",
    collect: () => {
      const current = admin.current();
      return current === null ? 0 : Math.max(0, Number(current.keys_to_move) - Number(current.keys_moved));
    },
  });
  registry.counter({
    name: "kvstore_router_rebalance_keys_moved_total",
    help: "Keys moved from one shard to another since the router started (by the rebalancing, and by writes " +
      "that moved their key first).",
    collect: () => core.keysMoved,
  });
}
