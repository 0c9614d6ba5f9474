/**
 * Talking to a router about its cluster: status, and adding or removing a shard while
 * watching the keys move.
 *
 * ```ts
 * using admin = new ClusterClient("127.0.0.1:50051");
 * for await (const progress of admin.addShard("127.0.0.1:7004")) {
 *   console.log(`${progress.keys_moved} of about ${progress.keys_to_move} keys moved`);
 * }
 * ```
 *
 * The progress stream has no overall deadline (moving many keys takes as long as it
 * takes) but an idle one: the router sends progress at least every 250 ms, so a stream
 * silent for longer than the idle limit means the router is gone, and the iteration
 * fails with UNAVAILABLE. Ending the iteration early stops watching; the change goes on.
 *
 * @module
 */

import { CLIENT_CALL_DEADLINE_MS_DEFAULT } from "../config/limits.ts";
import { CLIENT_TRANSPORT_LIMITS, createKvstoreClient, grpc } from "../transport/grpc.ts";
import type { ClusterChangeRequest, ClusterStatusResponse, MigrationStatus } from "../transport/messages.ts";
import { KvClient, KvClientError } from "./client.ts";

export interface ClusterClientOptions {
  /** Deadline of a status call, in ms. */
  readonly deadlineMs?: number;
  /** How long a progress stream may stay silent before it is given up, in ms (default
   * 15 s; the router sends progress every 250 ms). */
  readonly progressIdleMs?: number;
}

const PROGRESS_IDLE_MS_DEFAULT = 15_000;

type StreamMethod = (request: object, metadata: grpc.Metadata, options: grpc.CallOptions) => grpc.ClientReadableStream<
  MigrationStatus
>;

export class ClusterClient {
  readonly address: string;
  #client: grpc.Client;
  #unary: KvClient;
  #deadlineMs: number;
  #progressIdleMs: number;

  constructor(address: string, options: ClusterClientOptions = {}) {
    this.address = address;
    this.#deadlineMs = options.deadlineMs ?? CLIENT_CALL_DEADLINE_MS_DEFAULT;
    this.#progressIdleMs = options.progressIdleMs ?? PROGRESS_IDLE_MS_DEFAULT;
    this.#client = createKvstoreClient(address, CLIENT_TRANSPORT_LIMITS);
    this.#unary = new KvClient(address, { deadlineMs: this.#deadlineMs });
  }

  /** The router's description of its cluster. */
  status(): Promise<ClusterStatusResponse> {
    return this.#unary.call<ClusterStatusResponse>("ClusterStatus", {});
  }

  /** Adds `shard` ([NAME=]MASTER[+REPLICA...]) and yields progress until it is done. */
  addShard(shard: string, options: { force?: boolean } = {}): AsyncGenerator<MigrationStatus> {
    return this.#watch("AddShard", { shard, force: options.force ?? false, forget: false });
  }

  /** Removes the shard `shard` names and yields progress until it is done. */
  removeShard(shard: string, options: { forget?: boolean } = {}): AsyncGenerator<MigrationStatus> {
    return this.#watch("RemoveShard", { shard, force: false, forget: options.forget ?? false });
  }

  close(): void {
    this.#client.close();
    this.#unary.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  async *#watch(rpc: string, request: ClusterChangeRequest): AsyncGenerator<MigrationStatus> {
    const method = (this.#client as unknown as Record<string, StreamMethod>)[rpc];
    const stream = method.call(this.#client, request, new grpc.Metadata(), {});
    const queue: MigrationStatus[] = [];
    let ended = false;
    let failure: Error | null = null;
    let wake: (() => void) | null = null;
    const notify = () => {
      wake?.();
      wake = null;
    };
    stream.on("data", (status: MigrationStatus) => {
      queue.push(status);
      notify();
    });
    stream.on("error", (error: grpc.ServiceError) => {
      failure = KvClientError.fromStatus(error, this.address, { rpc });
      notify();
    });
    stream.on("end", () => {
      ended = true;
      notify();
    });
    try {
      while (true) {
        if (queue.length > 0) {
          yield queue.shift()!;
          continue;
        }
        if (failure !== null) throw failure;
        if (ended) return;
        const idle = await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(true), this.#progressIdleMs);
          wake = () => {
            clearTimeout(timer);
            resolve(false);
          };
        });
        if (idle) {
          throw new KvClientError(
            grpc.status.UNAVAILABLE,
            `no progress from the router for ${this.#progressIdleMs} ms (the change goes on if the router is up; ` +
              `see kvstore cluster status)`,
            this.address,
          );
        }
      }
    } finally {
      if (!ended) stream.cancel();
    }
  }
}
