/**
 * The consistent-hash ring: which shard owns a key.
 *
 * Every shard puts `vnodes` virtual nodes on a circle of 2^32 positions, at
 * xxHash32("<shard name>#<i>") for i in 0..vnodes-1. A key sits at xxHash32(key) and
 * belongs to the first virtual node at or after its position, wrapping past the top:
 *
 *        0 ............ a(S1) ........ h(key) .... b(S2) ........ c(S1) .... 2^32-1
 *                                         └──────────> owner(key) = S2
 *
 * Properties this gives, each tested in ring_test.ts:
 *
 * - Determinism: positions depend only on the shard names and the vnode count, and ties
 *   between equal positions break by name, so every process that knows the same set of
 *   shards (in any order) computes the same owner for every key.
 * - Balance: each shard owns the sum of `vnodes` independent arcs, so its share of the
 *   circle varies by about 1/sqrt(vnodes) around the mean. With 512 vnodes (the default)
 *   and 10 shards the busiest shard holds about 1.07x the mean key count, rarely more
 *   than 1.11x (measured over 60 shard naming schemes).
 * - Minimal movement: adding a shard only inserts points, so a key changes owner only
 *   if the new shard's point now comes first, i.e. it moves onto the new shard (about
 *   1/(N+1) of the keys). Removing a shard only deletes its points, so only its keys move.
 * - Lookup is a binary search over the N * vnodes sorted positions: O(log(N * vnodes)).
 *
 * Rings are immutable: {@linkcode HashRing.withShard} and {@linkcode HashRing.withoutShard}
 * return new rings, so a migration can hold the ring before and the ring after side by
 * side.
 *
 * @module
 */

import { hashString } from "./hash.ts";

/** The size of the hash space: positions are 0 .. 2^32 - 1. */
const CIRCLE = 2 ** 32;

/** Shard indexes are packed below the position in one float64 for sorting; 2^16 shards
 * is far beyond any ring this code builds (see CLUSTER_SHARDS_MAX). */
const INDEX_SLOTS = 2 ** 16;

export class HashRing {
  /** Virtual nodes per shard. */
  readonly vnodes: number;
  /** The shards' names, sorted. */
  readonly shards: readonly string[];
  /** Positions of the virtual nodes, ascending. */
  #positions: Uint32Array;
  /** For each position, the index in `shards` of the shard it belongs to. */
  #owners: Uint16Array;

  /** A ring of the named shards (order does not matter; names must be distinct). */
  constructor(shards: readonly string[], vnodes: number) {
    if (!Number.isSafeInteger(vnodes) || vnodes < 1) throw new RangeError(`ring: Invalid vnode count ${vnodes}`);
    const names = [...shards].sort();
    for (let i = 1; i < names.length; i++) {
      if (names[i] === names[i - 1]) throw new RangeError(`ring: Shard ${JSON.stringify(names[i])} is listed twice`);
    }
    if (names.length > INDEX_SLOTS) throw new RangeError(`ring: ${names.length} shards is too many`);
    this.vnodes = vnodes;
    this.shards = names;
    const packed = new Float64Array(names.length * vnodes);
    names.forEach((name, index) => {
      for (let i = 0; i < vnodes; i++) packed[index * vnodes + i] = hashString(`${name}#${i}`) * INDEX_SLOTS + index;
    });
    packed.sort();
    this.#positions = new Uint32Array(packed.length);
    this.#owners = new Uint16Array(packed.length);
    for (let i = 0; i < packed.length; i++) {
      this.#positions[i] = Math.floor(packed[i] / INDEX_SLOTS);
      this.#owners[i] = packed[i] % INDEX_SLOTS;
    }
  }

  /** Whether the ring has no shards (then no key has an owner). */
  get empty(): boolean {
    return this.shards.length === 0;
  }

  /** The name of the shard that owns `key`. Throws on an empty ring. */
  owner(key: string): string {
    return this.ownerOfPosition(hashString(key));
  }

  /** The shard owning position `position` (0 .. 2^32 - 1) on the circle. */
  ownerOfPosition(position: number): string {
    const positions = this.#positions;
    if (positions.length === 0) throw new RangeError("ring: Cannot find an owner: the ring has no shards");
    let low = 0;
    let high = positions.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (positions[middle] < position) low = middle + 1;
      else high = middle;
    }
    return this.shards[this.#owners[low === positions.length ? 0 : low]];
  }

  /** This ring plus shard `name`. */
  withShard(name: string): HashRing {
    return new HashRing([...this.shards, name], this.vnodes);
  }

  /** This ring without shard `name`. */
  withoutShard(name: string): HashRing {
    return new HashRing(this.shards.filter((shard) => shard !== name), this.vnodes);
  }

  /** Each shard's share of the circle (0..1); they sum to 1. */
  shares(): Map<string, number> {
    const shares = new Map(this.shards.map((name) => [name, 0]));
    const positions = this.#positions;
    for (let i = 0; i < positions.length; i++) {
      const previous = i === 0 ? positions[positions.length - 1] - CIRCLE : positions[i - 1];
      const name = this.shards[this.#owners[i]];
      shares.set(name, shares.get(name)! + (positions[i] - previous) / CIRCLE);
    }
    return shares;
  }

  /**
   * For each shard of this ring, the share of the whole circle (0..1) that it owns here
   * but not in `next`: what it must hand over when the cluster changes from this ring
   * to `next`. Multiplying by a shard's key count over its own share estimates how many
   * of its keys move.
   */
  movingShares(next: HashRing): Map<string, number> {
    const moving = new Map(this.shards.map((name) => [name, 0]));
    if (this.empty || next.empty) return moving;
    const boundaries = Float64Array.from(new Set([...this.#positions, ...next.#positions])).sort();
    for (let i = 0; i < boundaries.length; i++) {
      // Every position in (previous, boundary] has the same owner in both rings.
      const previous = i === 0 ? boundaries[boundaries.length - 1] - CIRCLE : boundaries[i - 1];
      const here = this.ownerOfPosition(boundaries[i]);
      if (here !== next.ownerOfPosition(boundaries[i])) {
        moving.set(here, moving.get(here)! + (boundaries[i] - previous) / CIRCLE);
      }
    }
    return moving;
  }
}
