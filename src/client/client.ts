/**
 * The typed client library: a promise for every rpc, a deadline on every call.
 *
 * ```ts
 * const client = new KvClient("127.0.0.1:50051");
 * await client.set("greeting", "hello");
 * console.log(await client.get("greeting")); // "hello"
 * client.close();
 * ```
 *
 * A failed call rejects with a {@linkcode KvClientError} carrying the gRPC status name
 * and the server's message. grpc-js reconnects a broken channel by itself, with
 * backoff; calls made while it is down fail fast with UNAVAILABLE rather than queueing
 * past their deadline.
 *
 * @module
 */

import { CLIENT_CALL_DEADLINE_MS_DEFAULT } from "../config/limits.ts";
import { CLIENT_TRANSPORT_LIMITS, createKvstoreClient, grpc, type TransportLimits } from "../transport/grpc.ts";
import type {
  ContainsResponse,
  DeleteResponse,
  ExpireResponse,
  GetResponse,
  InfoResponse,
  SetResponse,
  TtlResponse,
} from "../transport/messages.ts";

export interface KvClientOptions {
  /** Deadline of each call unless the call gives its own, in ms. */
  readonly deadlineMs?: number;
  readonly limits?: TransportLimits;
}

/** A failed call: the gRPC status (number and name) and the server's message. */
export class KvClientError extends Error {
  readonly code: grpc.status;
  readonly codeName: string;
  readonly details: string;

  constructor(code: grpc.status, details: string, address: string) {
    const codeName = grpc.status[code] ?? `STATUS_${code}`;
    super(`${codeName}: ${details} (from ${address})`);
    this.name = "KvClientError";
    this.code = code;
    this.codeName = codeName;
    this.details = details;
  }
}

export class KvClient {
  readonly address: string;
  #client: grpc.Client;
  #deadlineMs: number;

  constructor(address: string, options: KvClientOptions = {}) {
    this.address = address;
    this.#client = createKvstoreClient(address, options.limits ?? CLIENT_TRANSPORT_LIMITS);
    this.#deadlineMs = options.deadlineMs ?? CLIENT_CALL_DEADLINE_MS_DEFAULT;
  }

  /** The value of `key`, or undefined when it does not exist. */
  async get(key: string): Promise<string | undefined> {
    const response = await this.call<GetResponse>("Get", { key });
    return response.found ? response.value : undefined;
  }

  async set(key: string, value: string): Promise<boolean> {
    return (await this.call<SetResponse>("Set", { key, value })).success;
  }

  async contains(key: string): Promise<boolean> {
    return (await this.call<ContainsResponse>("Contains", { key })).exists;
  }

  /** Deletes `key`; resolves with whether it existed. */
  async delete(key: string): Promise<boolean> {
    return (await this.call<DeleteResponse>("Delete", { key })).found;
  }

  /** Gives `key` a TTL; resolves with whether the key existed. */
  async expire(key: string, seconds: number): Promise<boolean> {
    return (await this.call<ExpireResponse>("Expire", { key, seconds })).success;
  }

  /** Seconds left on `key`: -1 when it has no TTL, -2 when it does not exist. */
  async ttl(key: string): Promise<number> {
    return (await this.call<TtlResponse>("TTL", { key })).seconds;
  }

  info(): Promise<InfoResponse> {
    return this.call<InfoResponse>("Info", {});
  }

  /** Makes a unary call by rpc name; the building block of the methods above. */
  call<Response>(rpc: string, request: object, deadlineMs = this.#deadlineMs): Promise<Response> {
    const method = (this.#client as unknown as Record<string, UnaryMethod<Response>>)[rpc];
    if (typeof method !== "function") {
      return Promise.reject(new Error(`client: Unknown rpc ${JSON.stringify(rpc)}`));
    }
    return new Promise((resolve, reject) => {
      method.call(
        this.#client,
        request,
        new grpc.Metadata(),
        { deadline: Date.now() + deadlineMs },
        (error: grpc.ServiceError | null, response?: Response) => {
          if (error !== null) reject(new KvClientError(error.code, error.details, this.address));
          else resolve(response!);
        },
      );
    });
  }

  /** Waits until the channel is connected, or rejects after `timeoutMs`. */
  waitForReady(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#client.waitForReady(Date.now() + timeoutMs, (error) => error ? reject(error) : resolve());
    });
  }

  close(): void {
    this.#client.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

type UnaryMethod<Response> = (
  request: object,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, response?: Response) => void,
) => grpc.ClientUnaryCall;
