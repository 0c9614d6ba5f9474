/**
 * A set of strings that can hand out uniformly random members in O(1).
 *
 * The active expiry sweep samples keys that carry a deadline, as Redis samples its
 * `expires` dictionary. A JavaScript Set cannot be indexed, so members live in a dense
 * array with a map from member to position; removal swaps the last member into the hole.
 *
 * @module
 */

export class SampleSet {
  #members: string[] = [];
  #positions = new Map<string, number>();

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
    return true;
  }

  clear(): void {
    this.#members = [];
    this.#positions.clear();
  }

  /** A member chosen by `random` (a function returning [0, 1)), or undefined if empty. */
  pick(random: () => number): string | undefined {
    if (this.#members.length === 0) return undefined;
    return this.#members[Math.floor(random() * this.#members.length)];
  }
}
