/**
 * Cluster membership: which shards are on the ring, and the migration under way, if any.
 *
 * A membership is a value; every change makes a new one with a higher `epoch`:
 *
 *   stable {shards}  --startAdd(S)-->     migrating {shards, add S}     --complete--> stable {shards + S}
 *   stable {shards}  --startRemove(S)-->  migrating {shards, remove S}  --complete--> stable {shards - S}
 *   stable {shards}  --forget(S)-->       stable {shards - S}      (S is gone; its keys are given up)
 *   migrating {shards, add|remove S}  --forget(S)-->  stable {shards - S}  (the move is called off)
 *
 * While a migration is under way, `shards` is still the ring before the change, and the
 * ring after it is derived ({@linkcode shardsAfter}). Keeping both lets the router route
 * every key during the move (see router_core.ts) and lets a restarted router resume the
 * move from its state file (see state_file.ts for the bytes on disk).
 *
 * The epoch orders memberships: a scan cursor records the epoch it was handed out
 * under, so a scan that spans a change goes on only where the change cannot make it miss
 * keys (topology.ts, carryScanPosition), and is refused plainly otherwise.
 *
 * @module
 */

import { CLUSTER_SHARDS_MAX } from "../config/limits.ts";
import { invalidArgument, KvError, quote } from "../errors.ts";
import { findConflict, formatShardSpec, shardMatches, type ShardSpec } from "./shard_spec.ts";

export type MigrationKind = "add" | "remove";

/** A change of the ring that is moving keys. */
export interface Migration {
  readonly kind: MigrationKind;
  /** The shard being added or removed. */
  readonly shard: ShardSpec;
  /** When the change began, unix ms. */
  readonly startedAtMs: number;
}

export interface Membership {
  /** Grows by one with every change. */
  readonly epoch: number;
  /** Virtual nodes per shard; fixed for the life of the cluster. */
  readonly vnodes: number;
  /** The shards on the ring (before the migration, while one is under way). */
  readonly shards: readonly ShardSpec[];
  readonly migration: Migration | null;
}

/** A new cluster of `shards`. */
export function initialMembership(shards: readonly ShardSpec[], vnodes: number): Membership {
  if (shards.length === 0) throw invalidArgument("cluster: Cannot start a cluster with no shards");
  checkShards(shards);
  return { epoch: 1, vnodes, shards, migration: null };
}

/** The shards on the ring once the migration (if any) completes. */
export function shardsAfter(membership: Membership): readonly ShardSpec[] {
  const migration = membership.migration;
  if (migration === null) return membership.shards;
  if (migration.kind === "add") return [...membership.shards, migration.shard];
  return membership.shards.filter((spec) => spec.name !== migration.shard.name);
}

/** Every shard the router must reach: the ring before and after the migration. */
export function shardsInvolved(membership: Membership): readonly ShardSpec[] {
  const migration = membership.migration;
  return migration?.kind === "add" ? [...membership.shards, migration.shard] : membership.shards;
}

/** The shard that `reference` (a name or a master address) names, among those involved. */
export function findShard(membership: Membership, reference: string): ShardSpec | undefined {
  return shardsInvolved(membership).find((spec) => shardMatches(spec, reference));
}

/** Begins adding `shard`. Refuses a shard already there, or a change while another runs. */
export function startAdd(membership: Membership, shard: ShardSpec, nowMs: number): Membership {
  refuseWhileMigrating(membership, `add shard ${formatShardSpec(shard)}`);
  if (membership.shards.length >= CLUSTER_SHARDS_MAX) {
    throw new KvError(
      "FAILED_PRECONDITION",
      `cluster: Cannot add shard ${JSON.stringify(shard.name)}: the cluster holds the most shards allowed ` +
        `(${CLUSTER_SHARDS_MAX})`,
    );
  }
  const problem = findConflict([...membership.shards, shard]);
  if (problem !== null) {
    throw new KvError("FAILED_PRECONDITION", `cluster: Cannot add shard ${formatShardSpec(shard)}: ${problem}`);
  }
  return { ...membership, epoch: membership.epoch + 1, migration: { kind: "add", shard, startedAtMs: nowMs } };
}

/** Begins removing the shard `reference` names; its keys move to the others. */
export function startRemove(membership: Membership, reference: string, nowMs: number): Membership {
  refuseWhileMigrating(membership, `remove shard ${quote(reference)}`);
  const shard = requireShard(membership, reference, "remove");
  if (membership.shards.length === 1) {
    throw new KvError(
      "FAILED_PRECONDITION",
      `cluster: Cannot remove shard ${
        JSON.stringify(shard.name)
      }: it is the last one; its keys would have nowhere to go`,
    );
  }
  return { ...membership, epoch: membership.epoch + 1, migration: { kind: "remove", shard, startedAtMs: nowMs } };
}

/**
 * Takes the shard `reference` names off the ring at once, without moving its keys: for
 * a shard that is gone for good. Its keys are lost to the cluster. During a migration,
 * only the shard being added or removed can be forgotten, which ends the migration: an
 * add is called off (keys already moved to the shard are lost with it), a remove is
 * completed at once (keys not yet moved off it are lost).
 */
export function forgetShard(membership: Membership, reference: string): Membership {
  const migration = membership.migration;
  if (migration !== null) {
    if (!shardMatches(migration.shard, reference)) {
      refuseWhileMigrating(membership, `forget shard ${quote(reference)}`);
    }
    const shards = membership.shards.filter((spec) => spec.name !== migration.shard.name);
    return { epoch: membership.epoch + 1, vnodes: membership.vnodes, shards, migration: null };
  }
  const shard = requireShard(membership, reference, "forget");
  if (membership.shards.length === 1) {
    throw new KvError(
      "FAILED_PRECONDITION",
      `cluster: Cannot forget shard ${JSON.stringify(shard.name)}: it is the last one`,
    );
  }
  return {
    ...membership,
    epoch: membership.epoch + 1,
    shards: membership.shards.filter((spec) => spec.name !== shard.name),
  };
}

/** The membership once the migration's keys have all moved. */
export function completeMigration(membership: Membership): Membership {
  if (membership.migration === null) return membership;
  return { epoch: membership.epoch + 1, vnodes: membership.vnodes, shards: shardsAfter(membership), migration: null };
}

/** Whether two memberships name the same shards with the same addresses, in any order. */
export function sameShards(a: readonly ShardSpec[], b: readonly ShardSpec[]): boolean {
  const text = (specs: readonly ShardSpec[]) => specs.map(formatShardSpec).sort().join(",");
  return text(a) === text(b);
}

/** One line describing a migration, for logs and errors. */
export function describeMigration(migration: Migration): string {
  return `${migration.kind === "add" ? "adding" : "removing"} shard ${JSON.stringify(migration.shard.name)}`;
}

function refuseWhileMigrating(membership: Membership, action: string): void {
  if (membership.migration === null) return;
  throw new KvError(
    "FAILED_PRECONDITION",
    `cluster: Cannot ${action}: the cluster is ${describeMigration(membership.migration)}; ` +
      `wait until it completes (see kvstore cluster status)`,
  );
}

function requireShard(membership: Membership, reference: string, action: string): ShardSpec {
  const shard = membership.shards.find((spec) => shardMatches(spec, reference));
  if (shard === undefined) {
    throw new KvError(
      "NOT_FOUND",
      `cluster: Cannot ${action} shard ${quote(reference)}: no shard has that name or master address ` +
        `(shards: ${membership.shards.map((spec) => spec.name).join(", ")})`,
    );
  }
  return shard;
}

function checkShards(shards: readonly ShardSpec[]): void {
  const problem = findConflict(shards);
  if (problem !== null) throw invalidArgument(`cluster: Invalid shards: ${problem}`);
  if (shards.length > CLUSTER_SHARDS_MAX) {
    throw invalidArgument(`cluster: ${shards.length} shards is over the limit of ${CLUSTER_SHARDS_MAX}`);
  }
}
