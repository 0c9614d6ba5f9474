/**
 * A first-come, first-served lock for async sections: the log's appends, its cut and its
 * replacement take turns through one.
 *
 * @module
 */

export class Mutex {
  #tail: Promise<void> = Promise.resolve();
  #held = false;

  /** Whether a section holds the lock now. */
  get held(): boolean {
    return this.#held;
  }

  /** Runs `section` once every section queued before it has finished; resolves or
   * rejects with its outcome. */
  async run<T>(section: () => Promise<T>): Promise<T> {
    const previous = this.#tail;
    let release!: () => void;
    this.#tail = new Promise((resolve) => release = resolve);
    await previous;
    this.#held = true;
    try {
      return await section();
    } finally {
      this.#held = false;
      release();
    }
  }
}
