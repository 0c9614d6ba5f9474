/**
 * A client for a master and its replicas: writes go to the master, reads go where
 * `readFrom` says (the master by default, or spread over the replicas), and a call moves
 * on to another endpoint when one is down.
 *
 * ```ts
 * const client = new KvReplicaSetClient(["10.0.0.1:50051", "10.0.0.2:50051", "10.0.0.3:50051"], {
 *   readFrom: "replicas",
 * });
 * await client.set("greeting", "hello");   // to whichever endpoint says it is the master
 * await client.get("greeting");            // from a replica, in turn; the master if none is up
 * client.close();
 * ```
 *
 * Roles are discovered, not configured: the client asks every endpoint for Info on its
 * first call, again when a call fails (at most every CLIENT_DISCOVERY_INTERVAL_MS_MIN),
 * and when what it knows is older than CLIENT_ROLES_MAX_AGE_MS. So a replica promoted
 * after its master died takes the writes as soon as a write to the old master fails.
 * While no endpoint can take a call (no master during a failover, every replica down),
 * the call keeps rediscovering, once per interval, until its deadline.
 *
 * Deadlines: `deadlineMs` bounds a whole operation, every attempt and discovery
 * included; each attempt at one endpoint is further bounded by `attemptDeadlineMs`, so
 * an endpoint that hangs costs at most that before the next is tried. When the
 * operation's deadline passes, it rejects with the last error seen.
 *
 * Failover rules:
 * - Reads move on after UNAVAILABLE or DEADLINE_EXCEEDED: reads have no effect, so a
 *   retry is always safe.
 * - Writes move on after UNAVAILABLE (the connection failed, before or during the
 *   call, or the node cannot take writes now), or FAILED_PRECONDITION from a node that
 *   turned out to be a replica (nothing was written), once discovery names a master.
 *   An attempt cut off mid-call (KvClientError.outcomeUnknown) may have been applied
 *   before the connection broke; kvstore's writes are idempotent (SET, DEL and MSET
 *   write absolute state), so it is retried, except that a repeated EXPIRE counts its
 *   seconds from the retry and a repeated DEL may answer that the key was not found.
 *   If the operation fails in the end, its error still says the write may or may not
 *   have been applied. Writes are not retried after DEADLINE_EXCEEDED: the first attempt
 *   may still be in flight, and a slow master is not helped by more work.
 * - Any other error (INVALID_ARGUMENT, RESOURCE_EXHAUSTED, ...) is the answer, and is
 *   returned at once.
 *
 * Reconnection is grpc-js's: each endpoint has one channel, reopened after 1 s and
 * then at most every 5 s while its node is down (transport/grpc.ts).
 *
 * @module
 */

import {
  CLIENT_ATTEMPT_DEADLINE_MS,
  CLIENT_CALL_DEADLINE_MS_DEFAULT,
  CLIENT_DISCOVERY_INTERVAL_MS_MIN,
  CLIENT_ENDPOINT_DOWN_MS,
  CLIENT_ROLES_MAX_AGE_MS,
} from "../config/limits.ts";
import type { InfoResponse } from "../transport/messages.ts";
import { type EntryInput, KvClient, KvClientError, type ScannedEntry } from "./client.ts";
import { EndpointTable, type ReadFrom } from "./endpoint_table.ts";

export interface ReplicaSetClientOptions {
  /** Where reads go (default "master"). */
  readonly readFrom?: ReadFrom;
  /** Bound on a whole operation, retries included, in ms. */
  readonly deadlineMs?: number;
  /** Bound on one attempt at one endpoint, in ms. */
  readonly attemptDeadlineMs?: number;
  /** How long an endpoint that failed is tried last, in ms. */
  readonly endpointDownMs?: number;
}

/** What a failing attempt means for the next one. */
type Verdict = "final" | "tryNext" | "rediscover";

export class KvReplicaSetClient {
  readonly readFrom: ReadFrom;
  readonly #table: EndpointTable;
  readonly #clients = new Map<string, KvClient>();
  readonly #deadlineMs: number;
  readonly #attemptDeadlineMs: number;
  #discoveredAtMs = -Infinity;
  #discovering: Promise<void> | null = null;

  constructor(endpoints: readonly string[], options: ReplicaSetClientOptions = {}) {
    this.#table = new EndpointTable(endpoints, {
      clock: Date.now,
      downMs: options.endpointDownMs ?? CLIENT_ENDPOINT_DOWN_MS,
    });
    this.readFrom = options.readFrom ?? "master";
    this.#deadlineMs = options.deadlineMs ?? CLIENT_CALL_DEADLINE_MS_DEFAULT;
    this.#attemptDeadlineMs = options.attemptDeadlineMs ?? CLIENT_ATTEMPT_DEADLINE_MS;
    for (const endpoint of this.#table.endpoints) this.#clients.set(endpoint, new KvClient(endpoint));
  }

  get endpoints(): readonly string[] {
    return this.#table.endpoints;
  }

  /** The endpoint that last said it is the master, if any. */
  get master(): string | undefined {
    return this.#table.master();
  }

  // Reads.

  get(key: string): Promise<string | undefined> {
    return this.#read((client) => client.get(key));
  }

  contains(key: string): Promise<boolean> {
    return this.#read((client) => client.contains(key));
  }

  ttl(key: string): Promise<number> {
    return this.#read((client) => client.ttl(key));
  }

  mget(keys: readonly string[]): Promise<(string | undefined)[]> {
    return this.#read((client) => client.mget(keys));
  }

  /** Every key with `prefix` from one endpoint (scan cursors belong to one node, so a
   * scan does not move between endpoints once it has begun). */
  async *scanAll(
    options: { prefix?: string; pageSize?: number; includeValues?: boolean } = {},
  ): AsyncGenerator<ScannedEntry> {
    const endpoint = await this.#read((client) => client.info().then(() => client.address));
    yield* this.#clients.get(endpoint)!.withDeadline(this.#deadlineMs).scanAll(options);
  }

  // Writes.

  set(key: string, value: string, options: { ttlMs?: number } = {}): Promise<boolean> {
    return this.#write((client) => client.set(key, value, options));
  }

  delete(key: string): Promise<boolean> {
    return this.#write((client) => client.delete(key));
  }

  expire(key: string, seconds: number): Promise<boolean> {
    return this.#write((client) => client.expire(key, seconds));
  }

  mset(entries: readonly EntryInput[]): Promise<number> {
    return this.#write((client) => client.mset(entries));
  }

  // The group.

  /** Asks every endpoint for Info now; resolves with each one's role ("unknown" for an
   * endpoint that did not answer, "syncing" for a replica that has not synced yet). */
  async discover(): Promise<ReadonlyMap<string, string>> {
    await this.#discover(Date.now() + this.#deadlineMs);
    return new Map(this.#table.endpoints.map((endpoint) => [endpoint, this.#table.role(endpoint)]));
  }

  /** Info from one endpoint. */
  info(endpoint: string): Promise<InfoResponse> {
    const client = this.#clients.get(endpoint);
    if (client === undefined) {
      return Promise.reject(new Error(`client: ${endpoint} is not one of this client's endpoints`));
    }
    return client.withDeadline(this.#deadlineMs).info();
  }

  close(): void {
    for (const client of this.#clients.values()) client.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  // Routing.

  async #read<T>(operation: (client: KvClient) => Promise<T>): Promise<T> {
    return await this.#attempt(
      () => this.#table.readOrder(this.readFrom),
      operation,
      (error) => isConnectionFailure(error) || error.codeName === "DEADLINE_EXCEEDED" ? "tryNext" : "final",
    );
  }

  async #write<T>(operation: (client: KvClient) => Promise<T>): Promise<T> {
    return await this.#attempt(
      () => {
        const master = this.#table.master();
        return master === undefined ? [] : [master];
      },
      operation,
      (error) => {
        if (isConnectionFailure(error)) return "rediscover";
        if (error.codeName === "FAILED_PRECONDITION" && error.details.includes("read-only replica")) {
          return "rediscover";
        }
        return "final";
      },
    );
  }

  /** Tries the candidates in order until one answers, the error is final, or the
   * operation's deadline passes. A "rediscover" verdict refreshes the roles and
   * starts again from the new candidates. */
  async #attempt<T>(
    candidates: () => string[],
    operation: (client: KvClient) => Promise<T>,
    judge: (error: KvClientError) => Verdict,
  ): Promise<T> {
    const deadline = Date.now() + this.#deadlineMs;
    let lastError: KvClientError | undefined = undefined;
    // The first attempt cut off mid-call, if any: a write retried after it may already
    // have been applied by then, which the error that ends the operation must still say.
    let cutOff: KvClientError | undefined = undefined;
    const failure = () =>
      cutOff === undefined || lastError?.outcomeUnknown ? lastError : outcomeUnknown(lastError, cutOff);
    let tried = new Set<string>();
    if (Date.now() - this.#discoveredAtMs > CLIENT_ROLES_MAX_AGE_MS) await this.#discover(deadline);
    for (;;) {
      const order = candidates().filter((endpoint) => !tried.has(endpoint));
      const endpoint = order[0];
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw failure() ?? noEndpointError(this.#table.endpoints, this.readFrom);
      if (endpoint === undefined) {
        // Nothing left to try with what we know: a failover may be under way (a replica
        // being promoted, a master restarting). Learn the roles again, once per interval,
        // until the deadline.
        const waitMs = this.#discoveredAtMs + CLIENT_DISCOVERY_INTERVAL_MS_MIN - Date.now();
        if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(waitMs, remaining)));
        if (Date.now() < deadline) await this.#discover(deadline);
        tried = new Set();
        continue;
      }
      tried.add(endpoint);
      const client = this.#clients.get(endpoint)!.withDeadline(Math.min(this.#attemptDeadlineMs, remaining));
      try {
        const result = await operation(client);
        this.#table.markUp(endpoint);
        return result;
      } catch (error) {
        if (!(error instanceof KvClientError)) throw error;
        lastError = error;
        if (error.outcomeUnknown) cutOff ??= error;
        const verdict = judge(error);
        if (verdict === "final") throw failure();
        if (isConnectionFailure(error) || error.codeName === "DEADLINE_EXCEEDED") this.#table.markDown(endpoint);
        if (verdict === "rediscover" && Date.now() - this.#discoveredAtMs >= CLIENT_DISCOVERY_INTERVAL_MS_MIN) {
          await this.#discover(deadline);
          tried = new Set([endpoint].filter((failed) => this.#table.isDown(failed)));
        }
      }
    }
  }

  /** Asks every endpoint for its role, in parallel; one discovery at a time. */
  #discover(deadline: number): Promise<void> {
    this.#discovering ??= (async () => {
      const attemptMs = Math.max(1, Math.min(this.#attemptDeadlineMs, deadline - Date.now()));
      await Promise.all(this.#table.endpoints.map(async (endpoint) => {
        try {
          const info = await this.#clients.get(endpoint)!.withDeadline(attemptMs).info();
          // A replica that has not synced yet answers every read from nothing (or from
          // an old copy): it is not a replica to read from until it has.
          this.#table.setRole(
            endpoint,
            info.role === "master" ? "master" : info.first_sync_done ? "replica" : "syncing",
          );
          this.#table.markUp(endpoint);
        } catch {
          this.#table.setRole(endpoint, "unknown");
          this.#table.markDown(endpoint);
        }
      }));
      this.#discoveredAtMs = Date.now();
    })().finally(() => this.#discovering = null);
    return this.#discovering;
  }
}

/** Whether the call failed because the node could not take it: the connection failed
 * (KvClient reports every transport failure as UNAVAILABLE, a stream reset mid-call by a
 * node killed while answering included; see transport/transport_failure.ts), or the node said it
 * cannot serve now (loading, shutting down). */
export function isConnectionFailure(error: KvClientError): boolean {
  return error.codeName === "UNAVAILABLE";
}

/** `last`, the error that ends a write, saying that an earlier attempt (`cutOff`) lost
 * its connection mid-call and so may have been applied. */
function outcomeUnknown(last: KvClientError | undefined, cutOff: KvClientError): KvClientError {
  const error = last ?? cutOff;
  if (error === cutOff) return cutOff;
  return new KvClientError(
    error.code,
    `${error.details}; an earlier attempt at ${cutOff.address} lost its connection mid-call, so the write may or ` +
      "may not have been applied",
    error.address,
    { transport: error.transport, outcomeUnknown: true },
  );
}

function noEndpointError(endpoints: readonly string[], readFrom: ReadFrom): Error {
  return new KvClientError(
    14, // UNAVAILABLE
    `client: No endpoint can take this call (read from ${readFrom}); none of ${endpoints.join(", ")} ` +
      "answered as a master" + (readFrom === "master" ? "" : " or replica"),
    endpoints.join(","),
  );
}
