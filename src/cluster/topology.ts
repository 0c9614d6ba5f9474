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

/** Where a scan across shards is: the index of a shard in the scan order, and that
 * shard's own cursor ("" to start it). */
export interface ScanPosition {
  readonly index: number;
  readonly shardCursor: string;
}

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
    return scanOrderOf(this.membership);
  }

  /** Whether a scan of shard `name` should return `key`: the shard holds it now or will
   * own it, so copies left on other shards (by clients that wrote to shards directly)
   * are never listed. */
  scanKeeps(name: string, key: string): boolean {
    const { from, to } = this.route(key);
    return from === name || to === name;
  }
}

/** The order in which a scan visits the shards of `membership` (see Topology.scanOrder). */
export function scanOrderOf(membership: Membership): string[] {
  const migration = membership.migration;
  const names = membership.shards.map((spec) => spec.name);
  if (migration === null) return names;
  if (migration.kind === "add") return [...names, migration.shard.name];
  return [migration.shard.name, ...names.filter((name) => name !== migration.shard.name)];
}

/**
 * Where a scan that was at `position` under `before` goes on under `after`, the
 * membership recorded next (epoch one higher); null when the change between them could
 * make it miss a key, and the scan must start again.
 *
 * A scan misses no key present throughout as long as keys only ever move from shards it
 * has not finished to shards it has not finished (scanOrder puts the shards keys move
 * from first), and a change of the order keeps every unfinished shard after the one the
 * scan is on. That holds for:
 *
 * - **an add beginning**: the order gains the new shard at the end, and keys move only
 *   onto it; the position stays.
 * - **a move ending** (completed, or called off with --forget): nothing moves any more,
 *   and the shards still on the ring keep their order. The shard that left holds no key
 *   present throughout: a removed shard was drained before its removal was recorded,
 *   and the keys of a forgotten one are lost to the cluster. A scan on a shard that left
 *   goes on at the start of the next shard that stayed.
 *
 * A removal beginning is not carried: the leaving shard goes first in the order, so its
 * keys would move onto shards the scan has already finished. Nor is a forgotten shard of
 * a stable ring, which is rare enough to restart for.
 */
export function carryScanPosition(before: Membership, after: Membership, position: ScanPosition): ScanPosition | null {
  if (after.epoch !== before.epoch + 1) return null;
  const names = (membership: Membership) => membership.shards.map((spec) => spec.name).join("\n");
  const addBegins = before.migration === null && after.migration?.kind === "add" && names(after) === names(before);
  if (addBegins) return position;
  const migration = before.migration;
  if (migration === null || after.migration !== null) return null;
  const completed = shardsAfter(before).map((spec) => spec.name).join("\n");
  const forgotten = before.shards.filter((spec) => spec.name !== migration.shard.name).map((spec) => spec.name)
    .join("\n");
  if (names(after) !== completed && names(after) !== forgotten) return null;
  const orderBefore = scanOrderOf(before);
  const orderAfter = scanOrderOf(after);
  for (let index = position.index; index < orderBefore.length; index++) {
    const found = orderAfter.indexOf(orderBefore[index]);
    if (found === -1) continue;
    return { index: found, shardCursor: index === position.index ? position.shardCursor : "" };
  }
  return { index: orderAfter.length, shardCursor: "" };
}
