/**
 * The loading gate: while a node loads its dataset, every call is answered at once with
 * UNAVAILABLE and a message saying so, rather than from a partial dataset.
 *
 * The node binds its port before it loads (so a taken address fails in a second, not
 * after a long load) and registers its handlers behind this gate; once recovery is done
 * it opens the gate and the same handlers serve.
 *
 * @module
 */

import { KvError, loadingRefusalMessage } from "../errors.ts";
import type { grpc } from "../transport/grpc.ts";
import type { Handlers } from "./service.ts";
import { GRPC_STATUS } from "./status.ts";

export class LoadingGate {
  #open = false;
  #describe: () => string;

  /** `describe` says what is being loaded, for the refusal: "loading its dataset from
   * /data (12 s so far)". */
  constructor(describe: () => string) {
    this.#describe = describe;
  }

  get isOpen(): boolean {
    return this.#open;
  }

  open(): void {
    this.#open = true;
  }

  /** The error a call gets while the gate is shut. */
  refusal(rpc: string): KvError {
    return new KvError("UNAVAILABLE", loadingRefusalMessage(rpc, this.#describe()));
  }

  /** `handlers` wrapped so that each answers UNAVAILABLE until the gate opens.
   * `definition` tells unary calls (answered through their callback) from streaming
   * ones (ended with an error status). */
  guard(definition: grpc.ServiceDefinition, handlers: Handlers): Handlers {
    const guarded: Handlers = {};
    for (const [rpc, handler] of Object.entries(handlers)) {
      const streamsResponses = definition[rpc]?.responseStream === true;
      guarded[rpc] = streamsResponses
        ? ((call: grpc.ServerWritableStream<unknown, unknown>) => {
          if (this.#open) return (handler as (call: unknown) => void)(call);
          call.emit("error", this.#status(rpc));
        }) as grpc.UntypedHandleCall
        : ((call: unknown, callback: grpc.sendUnaryData<unknown>) => {
          if (this.#open) return (handler as (call: unknown, callback: unknown) => void)(call, callback);
          callback(this.#status(rpc));
        }) as grpc.UntypedHandleCall;
    }
    return guarded;
  }

  #status(rpc: string): Partial<grpc.StatusObject> {
    const error = this.refusal(rpc);
    return { code: GRPC_STATUS[error.code], details: error.message };
  }
}
