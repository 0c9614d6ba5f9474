/**
 * The node's health as the standard gRPC health protocol (grpc.health.v1.Health)
 * reports it: a status per service name, a Check that answers the status now, and a
 * Watch that streams every change.
 *
 * Two service names are known: `""` (the node as a whole) and `kvstore.KeyValueStore`.
 * Their statuses move together today (see {@linkcode Health.setAllServing}); they are
 * kept apart because the protocol names them apart, and a future node could serve one
 * without the other.
 *
 * | node | status |
 * | --- | --- |
 * | master, listening | SERVING |
 * | replica, before its first sync from the master | NOT_SERVING |
 * | replica, after its first sync | SERVING |
 * | any node once shutdown starts | NOT_SERVING, for good |
 *
 * Replication makes a replica SERVING: when the replica has loaded its first full or
 * partial sync, it calls `node.health.setAllServing(true)` (and `false` again if it
 * loses its master for long enough that its data should not be read). A promoted replica
 * calls it too. Shutdown calls {@linkcode Health.enterShutdown}: every watcher hears
 * NOT_SERVING and its stream ends, so load balancers drain the node before its port
 * closes, and graceful shutdown is not held up by watch streams that never end.
 *
 * The state machine is pure; {@linkcode healthHandlers} adapts it to grpc-js.
 *
 * @module
 */

import { HEALTH_WATCHERS_MAX } from "../config/limits.ts";
import { KvError, quote } from "../errors.ts";
import type { grpc } from "../transport/grpc.ts";
import { KVSTORE_SERVICE } from "../transport/proto.ts";

/** The statuses of grpc.health.v1.HealthCheckResponse.ServingStatus. */
export type ServingStatus = "UNKNOWN" | "SERVING" | "NOT_SERVING" | "SERVICE_UNKNOWN";

/** The service names a node reports on: the node as a whole, and its data service. */
export const NODE_HEALTH_SERVICES: readonly string[] = ["", KVSTORE_SERVICE];

/** Someone watching one service's status. */
export interface HealthWatcher {
  /** Called with each new status of the service. */
  onStatus(status: ServingStatus): void;
  /** Called once when the node shuts down, after the final NOT_SERVING. */
  onClose(): void;
}

export class Health {
  #statuses = new Map<string, "SERVING" | "NOT_SERVING">();
  #watchers = new Map<string, Set<HealthWatcher>>();
  #watcherCount = 0;
  #shuttingDown = false;

  /** Knows `services`, each starting SERVING or NOT_SERVING. */
  constructor(services: readonly string[], serving: boolean) {
    for (const service of services) this.#statuses.set(service, serving ? "SERVING" : "NOT_SERVING");
  }

  /** The status of `service`; SERVICE_UNKNOWN for a name this node does not know. */
  status(service: string): ServingStatus {
    return this.#statuses.get(service) ?? "SERVICE_UNKNOWN";
  }

  /** Whether the node as a whole ("") is SERVING. */
  get serving(): boolean {
    return this.#statuses.get("") === "SERVING";
  }

  get shuttingDown(): boolean {
    return this.#shuttingDown;
  }

  /** Watch streams open now. */
  get watcherCount(): number {
    return this.#watcherCount;
  }

  /** Sets one known service's status. Ignored once shutdown started: a node that is
   * going away never says SERVING again. */
  setServing(service: string, serving: boolean): void {
    if (!this.#statuses.has(service)) throw new Error(`health: Unknown service ${quote(service)}`);
    if (this.#shuttingDown) return;
    this.#set(service, serving ? "SERVING" : "NOT_SERVING");
  }

  /** Sets every known service's status (what a replica calls after its first sync). */
  setAllServing(serving: boolean): void {
    for (const service of this.#statuses.keys()) this.setServing(service, serving);
  }

  /** Starts watching `service` (known or not); returns the function that stops. Refuses
   * with RESOURCE_EXHAUSTED past HEALTH_WATCHERS_MAX watchers. */
  watch(service: string, watcher: HealthWatcher): () => void {
    if (this.#watcherCount >= HEALTH_WATCHERS_MAX) {
      throw new KvError(
        "RESOURCE_EXHAUSTED",
        `health: Cannot watch ${quote(service)}: ${HEALTH_WATCHERS_MAX} watches are open already`,
      );
    }
    let watchers = this.#watchers.get(service);
    if (watchers === undefined) this.#watchers.set(service, watchers = new Set());
    watchers.add(watcher);
    this.#watcherCount++;
    let stopped = false;
    return () => {
      if (stopped) return;
      stopped = true;
      watchers.delete(watcher);
      this.#watcherCount--;
      if (watchers.size === 0 && this.#watchers.get(service) === watchers) this.#watchers.delete(service);
    };
  }

  /** Marks every service NOT_SERVING for good and ends every watch. */
  enterShutdown(): void {
    if (this.#shuttingDown) return;
    for (const service of this.#statuses.keys()) this.#set(service, "NOT_SERVING");
    this.#shuttingDown = true;
    for (const watchers of [...this.#watchers.values()]) {
      for (const watcher of [...watchers]) watcher.onClose();
    }
  }

  #set(service: string, status: "SERVING" | "NOT_SERVING"): void {
    if (this.#statuses.get(service) === status) return;
    this.#statuses.set(service, status);
    for (const watcher of [...(this.#watchers.get(service) ?? [])]) watcher.onStatus(status);
  }
}

// ---------------------------------------------------------------------------------------
// The gRPC adapter.

interface HealthCheckRequest {
  service: string;
}

interface HealthCheckResponse {
  status: ServingStatus;
}

/** grpc-js handlers for grpc.health.v1.Health over `health`. */
export function healthHandlers(health: Health): grpc.UntypedServiceImplementation {
  const check: grpc.handleUnaryCall<HealthCheckRequest, HealthCheckResponse> = (call, callback) => {
    const status = health.status(call.request.service);
    if (status === "SERVICE_UNKNOWN") {
      callback({ code: 5, /* NOT_FOUND */ details: unknownServiceMessage(call.request.service) });
    } else {
      callback(null, { status });
    }
  };
  const watch: grpc.handleServerStreamingCall<HealthCheckRequest, HealthCheckResponse> = (call) => {
    const service = call.request.service;
    const sender = new LatestStatusSender((status) => call.write({ status }));
    let stop: () => void;
    try {
      stop = health.watch(service, {
        onStatus: (status) => sender.send(status),
        onClose: () => {
          stop();
          call.end();
        },
      });
    } catch (error) {
      // grpc-js ends a server stream with the status of an emitted error.
      call.emit("error", { code: 8, /* RESOURCE_EXHAUSTED */ details: (error as Error).message });
      return;
    }
    call.on("drain", () => sender.drained());
    call.on("cancelled", () => stop());
    call.on("close", () => stop());
    call.on("error", () => stop());
    sender.send(health.status(service));
  };
  return { Check: check, Watch: watch };
}

function unknownServiceMessage(service: string): string {
  return `health: Unknown service ${quote(service)}: this node reports on ${
    NODE_HEALTH_SERVICES.map((name) => quote(name)).join(" and ")
  }`;
}

/**
 * Sends statuses to a watcher without buffering a backlog: while the stream is full,
 * only the latest status waits, and it goes out when the stream drains. A watcher only
 * ever needs the current status, so a slow reader costs one pending value, not a queue.
 */
export class LatestStatusSender {
  #write: (status: ServingStatus) => boolean;
  #lastSent: ServingStatus | undefined;
  #pending: ServingStatus | undefined;
  #blocked = false;

  /** `write` returns false when the stream is full (grpc-js's backpressure signal). */
  constructor(write: (status: ServingStatus) => boolean) {
    this.#write = write;
  }

  send(status: ServingStatus): void {
    if (this.#blocked) {
      this.#pending = status;
      return;
    }
    if (status === this.#lastSent) return;
    this.#lastSent = status;
    this.#blocked = !this.#write(status);
  }

  drained(): void {
    this.#blocked = false;
    const pending = this.#pending;
    this.#pending = undefined;
    if (pending !== undefined) this.send(pending);
  }
}
