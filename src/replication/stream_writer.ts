/**
 * Writing to a server stream of grpc-js with backpressure, and knowing when it closed.
 *
 * grpc-js server streams are Node object-mode streams: `write` returns false once 16
 * messages wait to be handed to HTTP/2, whose own flow control stops taking data when
 * the receiver does not read. Awaiting `drain` there is what keeps a master from
 * buffering without bound for a slow or paused replica. A stream that the client
 * cancels never drains, so every wait also ends when the stream closes.
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
  /** Resolves when the stream is closed, by either side. */
  readonly closed: Promise<void>;

  constructor(call: ServerStream<Out>) {
    this.#call = call;
    this.closed = new Promise((resolve) => {
      const close = () => {
        this.#isClosed = true;
        resolve();
      };
      call.once("cancelled", close);
      call.once("close", close);
      call.once("finish", close);
      call.once("error", close);
    });
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  /** Sends `message`; resolves once the stream can take more. Throws
   * {@linkcode StreamClosedError} if the stream is or becomes closed. */
  async send(message: Out): Promise<void> {
    if (this.#isClosed) throw new StreamClosedError();
    if (!this.#call.write(message)) {
      await Promise.race([new Promise((resolve) => this.#call.once("drain", resolve)), this.closed]);
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
