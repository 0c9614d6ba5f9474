/**
 * Per-key locks for the router's migration path: while keys move between shards, every
 * call that touches a moving key, and every step of the mover, holds the locks of the
 * keys it touches, so a key's move and a client's write to it never interleave.
 *
 * A holder locks all its keys in one synchronous step: it queues behind the current last
 * holder of each key and becomes the new last holder. Because every holder's whole set
 * is queued at once, waits only ever point at holders queued earlier, so there is no
 * cycle and no deadlock, in whatever order the keys are given. Memory is one map entry
 * per key that is locked or awaited; an entry goes when its last holder releases.
 *
 * @module
 */

/** Releases the locks taken by one {@linkcode KeyLocks.lock} call. */
export type Release = () => void;

export class KeyLocks {
  /** For each locked key, a promise that settles when its last queued holder releases. */
  #tails = new Map<string, Promise<void>>();

  /** Keys locked or awaited right now. */
  get size(): number {
    return this.#tails.size;
  }

  /** Resolves, once every key in `keys` is free, with the function that frees them. */
  async lock(keys: Iterable<string>): Promise<Release> {
    const unique = [...new Set(keys)];
    let release!: () => void;
    const held = new Promise<void>((resolve) => release = resolve);
    const waits: Promise<void>[] = [];
    for (const key of unique) {
      const previous = this.#tails.get(key);
      if (previous !== undefined) waits.push(previous);
      this.#tails.set(key, held);
    }
    if (waits.length > 0) await Promise.all(waits);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      for (const key of unique) {
        if (this.#tails.get(key) === held) this.#tails.delete(key);
      }
      release();
    };
  }
}
