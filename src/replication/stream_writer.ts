/**
 * Writing to a server stream of grpc-js with backpressure, and knowing when it closed.
 *
 * grpc-js server streams are Node object-mode streams: `write` returns false once 16
 * messages wait to be handed to HTTP/2, whose own flow control stops taking data when
 * the receiver does not read. Awaiting `drain` there is what keeps a master from
 * buffering without bound for a slow or paused replica. A stream that the client
 * cancels never drains, so every wait also ends when the stream closes.
 *
 * A stream lives as long as its replica stays connected (days) and waits on it many
 * times a second, so a wait must leave nothing behind once it ends: each registers with
 * {@linkcode StreamWriter.onClose} and unregisters when it is over. (A `then` on a
 * promise that stays pending while the stream is open would hold every wait's closure
 * until the stream closes: about 1 KB per command sent, gigabytes a day for a busy
 * replica.)
 *
 * @module
 */

import type { grpc } from "../transport/grpc.ts";

/** Thrown by {@linkcode StreamWriter.send} once the stream is closed. */
export class StreamClosedError extends Error {
  constructor() {
    super("replication: the stream is closed");
    this.name = "StreamClosedError";
  }
}

type ServerStream<Out> = grpc.ServerWritableStream<unknown, Out> | grpc.ServerDuplexStream<unknown, Out>;

export class StreamWriter<Out> {
  readonly #call: ServerStream<Out>;
  #isClosed = false;
  /** Called once when the stream closes, by either side. */
  #closeListeners = new Set<() => void>();

  constructor(call: ServerStream<Out>) {
    this.#call = call;
    const close = () => {
      this.#isClosed = true;
      const listeners = [...this.#closeListeners];
      this.#closeListeners.clear();
      for (const listener of listeners) listener();
    };
    call.once("cancelled", close);
    call.once("close", close);
    call.once("finish", close);
    call.once("error", close);
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  /** Calls `listener` once when the stream closes; returns a function that unregisters
   * it, for a wait that ended otherwise. A listener added after the close is not
   * called: check {@linkcode StreamWriter.isClosed} first. */
  onClose(listener: () => void): () => void {
    this.#closeListeners.add(listener);
    return () => this.#closeListeners.delete(listener);
  }

  /** Sends `message`; resolves once the stream can take more. Throws
   * {@linkcode StreamClosedError} if the stream is or becomes closed. */
  async send(message: Out): Promise<void> {
    if (this.#isClosed) throw new StreamClosedError();
    // write() may close the stream before it returns; then no drain comes.
    if (!this.#call.write(message) && !this.#isClosed) {
      await new Promise<void>((resolve) => {
        const done = () => {
          this.#call.removeListener("drain", done);
          unregister();
          resolve();
        };
        const unregister = this.onClose(done);
        this.#call.once("drain", done);
      });
    }
    if (this.#isClosed) throw new StreamClosedError();
  }

  /** Ends the stream with an error status the other side reads as `code: details`. */
  fail(code: grpc.status, details: string): void {
    if (this.#isClosed) return;
    this.#isClosed = true;
    this.#call.emit("error", { code, details } as grpc.ServiceError);
  }

  /** Ends the stream with status OK. */
  end(): void {
    if (this.#isClosed) return;
    this.#isClosed = true;
    this.#call.end();
  }
}
