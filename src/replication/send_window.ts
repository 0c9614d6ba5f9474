/**
 * Flow control of one Sync stream: the master sends a message only while the bytes of the
 * messages its replica has not yet handled stay under a bound.
 *
 * The transport cannot be relied on for that. On Deno, a grpc-js server stream accepts
 * every write at once (its callbacks fire and it drains) whether or not the peer reads,
 * and holds what the peer has not taken in the master's memory: a replica that is paused,
 * partitioned or merely slower than the writes made its master buffer every write for it,
 * hundreds of megabytes a minute under load, and it never fell out of the backlog, so it
 * was never sent to resync. So the replica says how many of the stream's messages it has
 * handled (a snapshot chunk loaded, commands applied and made durable, a ping answered),
 * and the master stops sending while more than `bytesMax` of them are outstanding. What
 * it holds for a replica is then bounded by that, and a replica that does not keep up
 * falls out of the backlog and resyncs, as the backlog's design intends.
 *
 * One message may always be outstanding, however large, so a message bigger than the
 * bound still goes.
 *
 * Pure: no I/O, no timers.
 *
 * @module
 */

/** Removed entries at the front of the queue before it is compacted. */
const COMPACT_AFTER_MESSAGES = 1024;

export class SendWindow {
  readonly bytesMax: number;
  /** Sizes of the messages sent and not yet handled, oldest first, from #head. */
  #sizes: number[] = [];
  #head = 0;
  #bytes = 0;
  #sent = 0;
  #handled = 0;

  constructor(bytesMax: number) {
    this.bytesMax = bytesMax;
  }

  /** Bytes of the messages sent that the replica has not handled yet. */
  get outstandingBytes(): number {
    return this.#bytes;
  }

  /** Messages sent that the replica has not handled yet. */
  get outstandingMessages(): number {
    return this.#sent - this.#handled;
  }

  /** Whether another message may be sent now: nothing is outstanding, or less than the
   * bound. */
  get hasRoom(): boolean {
    return this.outstandingMessages === 0 || this.#bytes < this.bytesMax;
  }

  /** Records a message of `bytes` sent. */
  sent(bytes: number): void {
    this.#sizes.push(bytes);
    this.#bytes += bytes;
    this.#sent++;
  }

  /**
   * Records the replica's report that it has handled `handledMessages` of the stream's
   * messages (a running count from the stream's start). A count that goes back (a late,
   * reordered report) changes nothing; one beyond what was sent is held to it. Returns
   * whether the report freed anything.
   */
  handled(handledMessages: number): boolean {
    const upTo = Math.min(handledMessages, this.#sent);
    if (upTo <= this.#handled) return false;
    while (this.#handled < upTo) {
      this.#bytes -= this.#sizes[this.#head];
      this.#head++;
      this.#handled++;
    }
    if (this.#head >= COMPACT_AFTER_MESSAGES && this.#head * 2 >= this.#sizes.length) {
      this.#sizes = this.#sizes.slice(this.#head);
      this.#head = 0;
    }
    return true;
  }
}
