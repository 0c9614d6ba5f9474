/**
 * A client for the standard gRPC health service (grpc.health.v1.Health) of any node:
 * what `kvstore health` and the tests use.
 *
 * ```ts
 * using health = new HealthClient("127.0.0.1:50051");
 * await health.check("");                        // "SERVING"
 * const watch = health.watch("", (status) => console.log(status));
 * await watch.ended;                            // the node shut down, or the call failed
 * ```
 *
 * @module
 */

import { CLIENT_CALL_DEADLINE_MS_DEFAULT } from "../config/limits.ts";
import { CLIENT_TRANSPORT_LIMITS, createServiceClient, grpc, healthServiceDefinition } from "../transport/grpc.ts";
import { KvClientError } from "./client.ts";

export type ServingStatus = "UNKNOWN" | "SERVING" | "NOT_SERVING" | "SERVICE_UNKNOWN";

/** A running Watch: `ended` resolves when the server ends the stream (shutdown) and
 * rejects with a KvClientError when the call fails. */
export interface HealthWatch {
  readonly ended: Promise<void>;
  cancel(): void;
}

export class HealthClient {
  readonly address: string;
  #client: grpc.Client;
  #deadlineMs: number;

  constructor(address: string, options: { deadlineMs?: number } = {}) {
    this.address = address;
    this.#client = createServiceClient(address, healthServiceDefinition(), CLIENT_TRANSPORT_LIMITS);
    this.#deadlineMs = options.deadlineMs ?? CLIENT_CALL_DEADLINE_MS_DEFAULT;
  }

  /** The status of `service` ("" for the node). Rejects with NOT_FOUND for a service the
   * node does not know. */
  check(service = ""): Promise<ServingStatus> {
    const method = (this.#client as unknown as Record<string, CheckMethod>).Check;
    return new Promise((resolve, reject) => {
      method.call(
        this.#client,
        { service },
        new grpc.Metadata(),
        { deadline: Date.now() + this.#deadlineMs },
        (error, response) => {
          if (error !== null) reject(KvClientError.fromStatus(error, this.address, { rpc: "Check" }));
          else resolve(response!.status);
        },
      );
    });
  }

  /** Streams the status of `service`: the current one first, then each change. */
  watch(service: string, onStatus: (status: ServingStatus) => void): HealthWatch {
    const method = (this.#client as unknown as Record<string, WatchMethod>).Watch;
    const call = method.call(this.#client, { service }, new grpc.Metadata(), {});
    let cancelled = false;
    const ended = new Promise<void>((resolve, reject) => {
      call.on("data", (response: { status: ServingStatus }) => onStatus(response.status));
      call.on("end", () => resolve());
      call.on("error", (error: grpc.ServiceError) => {
        if (cancelled && error.code === grpc.status.CANCELLED) resolve();
        else reject(KvClientError.fromStatus(error, this.address, { rpc: "Watch", cancelledByCaller: cancelled }));
      });
    });
    return {
      ended,
      cancel: () => {
        cancelled = true;
        call.cancel();
      },
    };
  }

  close(): void {
    this.#client.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

type CheckMethod = (
  request: { service: string },
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, response?: { status: ServingStatus }) => void,
) => grpc.ClientUnaryCall;

type WatchMethod = (
  request: { service: string },
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
) => grpc.ClientReadableStream<{ status: ServingStatus }>;
