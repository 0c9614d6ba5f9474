/**
 * Which endpoint of a master-and-replicas group a call should try, and in what order:
 * the routing decisions of {@linkcode KvReplicaSetClient}, kept pure (time comes in as
 * a clock) so they are tested without servers.
 *
 * The table knows each endpoint's role from the last discovery (an Info call to every
 * endpoint), and which endpoints failed recently. An endpoint that failed is "down" for
 * `downMs`: it is tried only after every endpoint that is up, so one dead replica costs
 * each read nothing once it is known, while a recovered one is back in rotation within
 * `downMs`.
 *
 * @module
 */

/** Where reads go. */
export type ReadFrom =
  /** The master only: a client reads its own writes. */
  | "master"
  /** The replicas in turn, the master when no replica is up: spreads read load, may
   * read slightly stale data (replication is asynchronous). */
  | "replicas"
  /** Every endpoint in turn. */
  | "any";

export const READ_FROM_CHOICES: readonly ReadFrom[] = ["master", "replicas", "any"];

/** What discovery learned about an endpoint. "syncing" is a replica that has not yet
 * completed a sync with its master since it started: what it holds may be nothing or an
 * old copy, and its health check says NOT_SERVING, so reads never go there. */
export type EndpointRole = "master" | "replica" | "syncing" | "unknown";

export class EndpointTable {
  readonly endpoints: readonly string[];
  #roles = new Map<string, EndpointRole>();
  #downUntilMs = new Map<string, number>();
  #clock: () => number;
  #downMs: number;
  #next = 0;

  constructor(endpoints: readonly string[], options: { clock: () => number; downMs: number }) {
    if (endpoints.length === 0) throw new Error("client: Cannot make a client without endpoints");
    this.endpoints = [...new Set(endpoints)];
    for (const endpoint of this.endpoints) this.#roles.set(endpoint, "unknown");
    this.#clock = options.clock;
    this.#downMs = options.downMs;
  }

  /** Records what discovery found. */
  setRole(endpoint: string, role: EndpointRole): void {
    if (this.#roles.has(endpoint)) this.#roles.set(endpoint, role);
  }

  role(endpoint: string): EndpointRole {
    return this.#roles.get(endpoint) ?? "unknown";
  }

  /** The master: the first endpoint, in the order given, that said it is one. */
  master(): string | undefined {
    return this.endpoints.find((endpoint) => this.#roles.get(endpoint) === "master");
  }

  markDown(endpoint: string): void {
    this.#downUntilMs.set(endpoint, this.#clock() + this.#downMs);
  }

  markUp(endpoint: string): void {
    this.#downUntilMs.delete(endpoint);
  }

  isDown(endpoint: string): boolean {
    const until = this.#downUntilMs.get(endpoint);
    return until !== undefined && until > this.#clock();
  }

  /** The endpoints a read tries, in order: those that are up first (rotating, so load
   * spreads), then those marked down, as a last resort. */
  readOrder(readFrom: ReadFrom): string[] {
    const master = this.master();
    let preferred: string[];
    let fallback: string[];
    if (readFrom === "master") {
      preferred = master === undefined ? [] : [master];
      fallback = [];
    } else if (readFrom === "replicas") {
      preferred = this.endpoints.filter((endpoint) => this.#roles.get(endpoint) === "replica");
      fallback = master === undefined ? [] : [master];
    } else {
      preferred = this.endpoints.filter((endpoint) => this.#roles.get(endpoint) !== "syncing");
      fallback = [];
    }
    const rotated = this.#rotate(preferred);
    const candidates = [...rotated, ...fallback];
    return [
      ...candidates.filter((endpoint) => !this.isDown(endpoint)),
      ...candidates.filter((endpoint) => this.isDown(endpoint)),
    ];
  }

  #rotate(list: string[]): string[] {
    if (list.length <= 1) return list;
    const start = this.#next++ % list.length;
    return [...list.slice(start), ...list.slice(0, start)];
  }
}
