/**
 * The node's own metrics: every call by service, rpc and status with its latency, and
 * the state of the dataset, the process, the connections and health. A router reports
 * its calls and its process the same way, with these same functions (RpcMetrics,
 * registerProcessMetrics; its own are in src/cluster/router_metrics.ts).
 *
 * Calls are observed by wrapping each service's handlers as it is added to the server
 * (RpcMetrics.instrument, applied by transport/grpc.ts's addService), so every service
 * (the data rpcs, health, reflection, replication's streams) is counted the same way
 * without its handlers knowing. State is read when /metrics is scraped (`collect`),
 * so nothing on the write or read path updates a gauge.
 *
 * Persistence and replication register their own metrics on the same registry (see the
 * naming guide in src/metrics/registry.ts).
 *
 * @module
 */

import {
  type Counter,
  type CounterSeries,
  DURATION_BUCKETS_SECONDS,
  type Histogram,
  type HistogramSeriesHandle,
  type MetricsRegistry,
} from "../metrics/registry.ts";
import { grpc } from "../transport/grpc.ts";
import type { SequencedCommand } from "../store/command.ts";
import { VERSION } from "../version.ts";
import type { Health } from "./health.ts";
import type { Keyspace } from "./keyspace.ts";

/** Sizes of a committed write batch, in commands: group commit puts many writes in one. */
const BATCH_COMMANDS_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384];

type UnaryHandler = (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => void;
type StreamHandler = (call: grpc.ServerWritableStream<unknown, unknown>) => void;

/** The series of one method: its latency, and its count per status answered, each made
 * once so that a call allocates no labels and looks none up. */
class MethodSeries {
  readonly duration: HistogramSeriesHandle;
  readonly #requests: Counter;
  readonly #service: string;
  readonly #rpc: string;
  #byCode = new Map<number, CounterSeries>();

  constructor(requests: Counter, duration: Histogram, service: string, rpc: string) {
    this.#requests = requests;
    this.#service = service;
    this.#rpc = rpc;
    this.duration = duration.series({ service, rpc });
  }

  /** The count of calls answered with `code`. */
  requests(code: number): CounterSeries {
    let series = this.#byCode.get(code);
    if (series === undefined) {
      series = this.#requests.series({
        service: this.#service,
        rpc: this.#rpc,
        code: grpc.status[code] ?? String(code),
      });
      this.#byCode.set(code, series);
    }
    return series;
  }
}

/** Counts and times every call that reaches the server. */
export class RpcMetrics {
  readonly #requests: Counter;
  readonly #duration: Histogram;
  /** "/pkg.Service/Method" -> its series, made once per method. */
  readonly #methods = new Map<string, MethodSeries>();
  #inFlight = 0;
  #total = 0;

  constructor(registry: MetricsRegistry) {
    this.#requests = registry.counter({
      name: "kvstore_rpc_requests_total",
      help: "Calls answered, by service, rpc and gRPC status code.",
      labelNames: ["service", "rpc", "code"],
    });
    this.#duration = registry.histogram({
      name: "kvstore_rpc_duration_seconds",
      help: "Time from receiving a unary call to sending its status, in seconds.",
      labelNames: ["service", "rpc"],
      buckets: DURATION_BUCKETS_SECONDS,
    });
    registry.gauge({ name: "kvstore_rpc_in_flight", help: "Calls being served now.", collect: () => this.#inFlight });
  }

  /** Calls answered so far for `rpc` with status `code` (for Info and tests). */
  requests(service: string, rpc: string, code: string): number {
    return this.#requests.value({ service, rpc, code });
  }

  /** Calls answered so far, every rpc and status together. */
  get total(): number {
    return this.#total;
  }

  /**
   * Wraps a service's handlers so that each call is observed once: a unary call when its
   * handler answers (status and time), a streaming call when it ends (status only: a
   * stream's lifetime says nothing about latency). Installed on the node's server, so
   * every service (the data rpcs, health, reflection, replication's streams) is counted
   * the same way without its handlers knowing.
   */
  instrument(
    definition: grpc.ServiceDefinition,
    handlers: grpc.UntypedServiceImplementation,
  ): grpc.UntypedServiceImplementation {
    const wrapped: grpc.UntypedServiceImplementation = {};
    for (const [rpc, handler] of Object.entries(handlers)) {
      const method = definition[rpc];
      if (method === undefined || method.requestStream) {
        wrapped[rpc] = handler;
        continue;
      }
      const series = this.#seriesOf(method.path);
      wrapped[rpc] = method.responseStream
        ? this.#streaming(series, handler as StreamHandler)
        : this.#unary(series, handler as UnaryHandler);
    }
    return wrapped;
  }

  #unary(series: MethodSeries, handler: UnaryHandler): grpc.UntypedHandleCall {
    return ((call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      const startedMs = performance.now();
      this.#inFlight++;
      handler(call, (error, value, trailer, flags) => {
        this.#finish(series, error?.code ?? grpc.status.OK);
        series.duration.observe((performance.now() - startedMs) / 1000);
        callback(error, value, trailer, flags);
      });
    }) as grpc.UntypedHandleCall;
  }

  #streaming(series: MethodSeries, handler: StreamHandler): grpc.UntypedHandleCall {
    return ((call: grpc.ServerWritableStream<unknown, unknown>) => {
      this.#inFlight++;
      let done = false;
      const finish = (code: number) => {
        if (done) return;
        done = true;
        this.#finish(series, code);
      };
      // An error a handler emits becomes the stream's status; "finish" follows any end.
      call.on("error", (error: Partial<grpc.StatusObject>) => finish(error?.code ?? grpc.status.UNKNOWN));
      call.on("cancelled", () => finish(grpc.status.CANCELLED));
      call.on("finish", () => finish(grpc.status.OK));
      handler(call);
    }) as grpc.UntypedHandleCall;
  }

  #finish(series: MethodSeries, code: number): void {
    this.#inFlight--;
    this.#total++;
    series.requests(code).inc();
  }

  #seriesOf(path: string): MethodSeries {
    let series = this.#methods.get(path);
    if (series === undefined) {
      const [, service = "", rpc = ""] = path.split("/");
      series = new MethodSeries(this.#requests, this.#duration, service, rpc);
      this.#methods.set(path, series);
    }
    return series;
  }
}

/** Where the metrics every kvstore process reports (a node's and a router's) read from. */
export interface ProcessState {
  /** The role kvstore_info names: master, replica or router. */
  readonly role: () => string;
  readonly health: Health;
  /** Client connections open now. */
  readonly connections: () => number;
  readonly startedAtMs: number;
}

/** Where the node's state metrics read from. */
export interface NodeState {
  readonly keyspace: Keyspace;
  readonly health: Health;
  /** Client connections open now. */
  readonly connections: () => number;
  readonly startedAtMs: number;
}

/** Registers what every kvstore process reports, a node or a router: what it is, whether
 * it serves, its memory, when it started, its client connections and health watchers. */
export function registerProcessMetrics(registry: MetricsRegistry, state: ProcessState): void {
  registry.gauge({
    name: "kvstore_info",
    help: "Always 1; the labels describe the process.",
    labelNames: ["version", "role"],
    collect: () => [{ labels: { version: VERSION, role: state.role() }, value: 1 }],
  });
  registry.gauge({
    name: "kvstore_health_serving",
    help: "1 while the health service reports SERVING for the service name, else 0.",
    labelNames: ["service"],
    collect: () =>
      ["", "kvstore.KeyValueStore"].map((service) => ({
        labels: { service },
        value: state.health.status(service) === "SERVING" ? 1 : 0,
      })),
  });
  registry.gauge({
    name: "process_resident_memory_bytes",
    help: "Resident memory of the process, in bytes.",
    collect: () => Deno.memoryUsage().rss,
  });
  registry.gauge({
    name: "kvstore_heap_used_bytes",
    help: "JavaScript heap in use, in bytes.",
    collect: () => Deno.memoryUsage().heapUsed,
  });
  registry.gauge({
    name: "process_start_time_seconds",
    help: "When the process started, in unix seconds.",
    collect: () => state.startedAtMs / 1000,
  });
  registry.gauge({
    name: "kvstore_uptime_seconds",
    help: "Seconds since the process started.",
    collect: () => (Date.now() - state.startedAtMs) / 1000,
  });
  registry.gauge({ name: "kvstore_connections", help: "Client connections open now.", collect: state.connections });
  registry.gauge({
    name: "kvstore_health_watchers",
    help: "Health Watch streams open now.",
    collect: () => state.health.watcherCount,
  });
}

/** Registers the process metrics of a node, and those of its dataset and write path. */
export function registerNodeMetrics(registry: MetricsRegistry, state: NodeState): void {
  const store = () => state.keyspace.pipeline.staging.store;
  registerProcessMetrics(registry, { ...state, role: () => state.keyspace.role });
  registry.gauge({
    name: "kvstore_keys",
    help: "Keys held, including expired keys not yet removed.",
    collect: () => store().size,
  });
  registry.gauge({
    name: "kvstore_expiring_keys",
    help: "Keys that carry a deadline.",
    collect: () => store().expiringCount,
  });
  registry.counter({
    name: "kvstore_expired_keys_total",
    help: "Keys removed because their deadline passed, since start, each once its deletion is in the log.",
    collect: () => state.keyspace.expiredKeys,
  });
  registry.gauge({
    name: "kvstore_dataset_bytes",
    help: "Estimated bytes held by keys, values and per-entry overhead.",
    collect: () => store().datasetBytes,
  });

  const committed = registry.counter({
    name: "kvstore_commands_committed_total",
    help: "Write commands made durable and applied, by kind (set, delete, expireAt).",
    labelNames: ["kind"],
  });
  const batches = registry.histogram({
    name: "kvstore_write_batch_commands",
    help: "Commands per write batch (group commit: writes arriving together share one log write).",
    buckets: BATCH_COMMANDS_BUCKETS,
  });
  // One handle per kind, so a committed command costs an increment, not a label lookup.
  const committedByKind = new Map<string, CounterSeries>();
  state.keyspace.pipeline.onCommit((batch: readonly SequencedCommand[]) => {
    batches.observe(batch.length);
    for (const { command } of batch) {
      let series = committedByKind.get(command.kind);
      if (series === undefined) committedByKind.set(command.kind, series = committed.series({ kind: command.kind }));
      series.inc();
    }
  });
}
