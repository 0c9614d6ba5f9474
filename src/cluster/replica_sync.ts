/**
 * Which of a shard's replicas a read may go to (the router's replica reads, and
 * ShardedClient's): not one that has not finished its first sync with its master since
 * it started, since it answers every read from nothing (or from an old copy), "not found"
 * for keys that exist. Pure: time comes in as a clock.
 *
 * What a replica's Info says (first_sync_done) is kept for `checkMs`; a read sent to a
 * replica whose verdict is older (or that was never asked) asks its Info first. A replica
 * known to be syncing is passed over for the next one in turn, or the master when every
 * replica is.
 *
 * @module
 */

import type { InfoResponse } from "../transport/messages.ts";

/** What a replica's Info said: it has synced (reads may go there) or not yet. */
export type ReplicaSyncVerdict = "synced" | "syncing";

/** The verdict of an Info answer: a replica that has not synced yet is "syncing"; any
 * other node (a master, one promoted since the client was made) has its data. */
export function syncVerdict(info: InfoResponse): ReplicaSyncVerdict {
  return info.role === "replica" && info.first_sync_done !== true ? "syncing" : "synced";
}

export class ReplicaSyncCache {
  #verdicts = new Map<string, { verdict: ReplicaSyncVerdict; atMs: number }>();
  #clock: () => number;
  #checkMs: number;

  constructor(options: { clock: () => number; checkMs: number }) {
    this.#clock = options.clock;
    this.#checkMs = options.checkMs;
  }

  /** The verdict on `address` if it is recent enough to trust, else undefined: ask its
   * Info before reading from it. */
  known(address: string): ReplicaSyncVerdict | undefined {
    const entry = this.#verdicts.get(address);
    if (entry === undefined || this.#clock() - entry.atMs >= this.#checkMs) return undefined;
    return entry.verdict;
  }

  record(address: string, verdict: ReplicaSyncVerdict): void {
    this.#verdicts.set(address, { verdict, atMs: this.#clock() });
  }

  /** The replica a read goes to: the first of `replicas`, from index `start` round, that
   * is not known to be syncing; undefined when every one is (the master answers). */
  choose(replicas: readonly string[], start: number): string | undefined {
    for (let i = 0; i < replicas.length; i++) {
      const address = replicas[(start + i) % replicas.length];
      if (this.known(address) !== "syncing") return address;
    }
    return undefined;
  }
}
