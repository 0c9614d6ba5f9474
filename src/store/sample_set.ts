/**
 * A set of strings that can hand out uniformly random members in O(1).
 *
 * The active expiry sweep samples keys that carry a deadline, as Redis samples its
 * `expires` dictionary. A JavaScript Set cannot be indexed, so members live in a dense
 * array with a map from member to position; removal swaps the last member into the hole.
 *
 * V8 never gives back an array's storage as it is popped, so after a burst of keys with
 * a deadline (an import of sessions, say) the array would keep its peak's storage, 8
 * bytes a slot, for good, after the keys expired (the map shrinks on its own). It is
 * copied to its size once it falls to a quarter of its peak since the last copy: each
 * copy costs the members left, paid for by the removals before it.
 *
 * @module
 */

/** Below this many slots the array is never copied smaller: the storage kept is small. */
const SHRINK_SLOTS_MIN = 1024;

export class SampleSet {
  #members: string[] = [];
  #positions = new Map<string, number>();
  /** The most members held since the array was last made (its storage's size, roughly). */
  #peak = 0;

  get size(): number {
    return this.#members.length;
  }

  has(member: string): boolean {
    return this.#positions.has(member);
  }

  add(member: string): void {
    if (this.#positions.has(member)) return;
    this.#positions.set(member, this.#members.length);
    this.#members.push(member);
    if (this.#members.length > this.#peak) this.#peak = this.#members.length;
  }

  delete(member: string): boolean {
    const position = this.#positions.get(member);
    if (position === undefined) return false;
    const last = this.#members.pop()!;
    this.#positions.delete(member);
    if (position < this.#members.length) {
      this.#members[position] = last;
      this.#positions.set(last, position);
    }
    if (this.#peak > SHRINK_SLOTS_MIN && this.#members.length * 4 < this.#peak) {
      this.#members = this.#members.slice();
      this.#peak = this.#members.length;
    }
    return true;
  }

  clear(): void {
    this.#members = [];
    this.#positions.clear();
    this.#peak = 0;
  }

  /** A member chosen by `random` (a function returning [0, 1)), or undefined if empty. */
  pick(random: () => number): string | undefined {
    if (this.#members.length === 0) return undefined;
    return this.#members[Math.floor(random() * this.#members.length)];
  }
}
