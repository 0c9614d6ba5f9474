/**
 * A membership as the router routes by it: the ring before and after the migration, and
 * for each key where it lives now (`from`) and where it belongs once the migration ends
 * (`to`). With no migration, or for a key the migration does not move, the two are the
 * same shard.
 *
 * @module
 */

import { type Membership, shardsAfter } from "./membership.ts";
import { HashRing } from "./ring.ts";

/** Where a key is: `from` holds it until it moves, `to` owns it after. */
export interface KeyRoute {
  readonly from: string;
  readonly to: string;
}

export class Topology {
  readonly membership: Membership;
  readonly before: HashRing;
  readonly after: HashRing;

  constructor(membership: Membership) {
    this.membership = membership;
    this.before = new HashRing(membership.shards.map((spec) => spec.name), membership.vnodes);
    this.after = membership.migration === null
      ? this.before
      : new HashRing(shardsAfter(membership).map((spec) => spec.name), membership.vnodes);
  }

  get epoch(): number {
    return this.membership.epoch;
  }

  get migrating(): boolean {
    return this.membership.migration !== null;
  }

  /** Where `key` lives and where it belongs. */
  route(key: string): KeyRoute {
    const from = this.before.owner(key);
    const to = this.before === this.after ? from : this.after.owner(key);
    return { from, to };
  }

  /** Whether the migration moves `key` (from one shard to another). */
  moves(key: string): boolean {
    if (this.before === this.after) return false;
    return this.before.owner(key) !== this.after.owner(key);
  }

  /**
   * The order in which a scan visits the shards: during a migration, the shards keys
   * move from come before the shards they move to. A key that moves while the scan runs
   * then either is still on its old shard when the scan gets there, or is already on the
   * new one, which the scan visits later: it can be returned twice, never missed.
   */
  scanOrder(): string[] {
    const migration = this.membership.migration;
    const names = this.membership.shards.map((spec) => spec.name);
    if (migration === null) return names;
    if (migration.kind === "add") return [...names, migration.shard.name];
    return [migration.shard.name, ...names.filter((name) => name !== migration.shard.name)];
  }

  /** Whether a scan of shard `name` should return `key`: the shard holds it now or will
   * own it, so copies left on other shards (by clients that wrote to shards directly)
   * are never listed. */
  scanKeeps(name: string, key: string): boolean {
    const { from, to } = this.route(key);
    return from === name || to === name;
  }
}
