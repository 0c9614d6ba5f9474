/**
 * The one table from kvstore's errors to gRPC statuses, and the conversion every
 * handler's failure goes through. An error that is not a {@linkcode KvError} is a bug:
 * the client gets INTERNAL with the message, the log gets the stack, and the server
 * keeps running.
 *
 * @module
 */

import { grpc } from "../transport/grpc.ts";
import { STATUS_DETAILS_CHARS_MAX } from "../config/limits.ts";
import { type ErrorCode, KvError } from "../errors.ts";
import { OUTCOME_METADATA_KEY, OUTCOME_UNKNOWN } from "../transport/transport_failure.ts";
import type { Logger } from "../logging/logger.ts";

export const GRPC_STATUS: Record<ErrorCode, grpc.status> = {
  INVALID_ARGUMENT: grpc.status.INVALID_ARGUMENT,
  RESOURCE_EXHAUSTED: grpc.status.RESOURCE_EXHAUSTED,
  FAILED_PRECONDITION: grpc.status.FAILED_PRECONDITION,
  NOT_FOUND: grpc.status.NOT_FOUND,
  UNAVAILABLE: grpc.status.UNAVAILABLE,
  DEADLINE_EXCEEDED: grpc.status.DEADLINE_EXCEEDED,
  INTERNAL: grpc.status.INTERNAL,
  UNIMPLEMENTED: grpc.status.UNIMPLEMENTED,
};

/** `message` as a status may carry it: cut to STATUS_DETAILS_CHARS_MAX, saying so. The
 * cut never splits a surrogate pair: grpc-js URI-encodes the message, which throws on a
 * lone surrogate. */
export function statusDetails(message: string): string {
  if (message.length <= STATUS_DETAILS_CHARS_MAX) return message;
  const cut = " ... (cut)";
  let end = STATUS_DETAILS_CHARS_MAX - cut.length;
  const last = message.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return message.slice(0, end) + cut;
}

/** The gRPC error a failed call answers with. */
export function toServiceError(error: unknown, rpc: string, logger: Logger): Partial<grpc.ServiceError> {
  if (error instanceof KvError) {
    const details = statusDetails(error.message);
    if (!error.outcomeUnknown) return { code: GRPC_STATUS[error.code], details };
    const metadata = new grpc.Metadata();
    metadata.set(OUTCOME_METADATA_KEY, OUTCOME_UNKNOWN);
    return { code: GRPC_STATUS[error.code], details, metadata };
  }
  const message = error instanceof Error ? error.message : String(error);
  logger.error(`${rpc} failed with an unexpected error`, {
    error: message,
    stack: error instanceof Error ? error.stack : undefined,
  });
  return {
    code: grpc.status.INTERNAL,
    details: statusDetails(`server: ${rpc} failed: ${message} (this is a bug; see the server log)`),
  };
}

/** Wraps a handler that returns a response (or a promise of one) into a grpc-js unary
 * handler that can never throw out of the transport. The handler also gets the call, for
 * its metadata and deadline (the router forwards both). */
export function unaryHandler<Request, Response>(
  rpc: string,
  logger: Logger,
  handle: (request: Request, call: grpc.ServerUnaryCall<Request, Response>) => Response | Promise<Response>,
): grpc.handleUnaryCall<Request, Response> {
  return (call, callback) => {
    let result: Response | Promise<Response>;
    try {
      result = handle(call.request, call);
    } catch (error) {
      callback(toServiceError(error, rpc, logger));
      return;
    }
    if (result instanceof Promise) {
      result.then(
        (response) => callback(null, response),
        (error) => callback(toServiceError(error, rpc, logger)),
      );
    } else {
      callback(null, result);
    }
  };
}
