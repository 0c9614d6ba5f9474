/**
 * The one table from kvstore's errors to gRPC statuses, and the conversion every
 * handler's failure goes through. An error that is not a {@linkcode KvError} is a bug:
 * the client gets INTERNAL with the message, the log gets the stack, and the server
 * keeps running.
 *
 * @module
 */

import { grpc } from "../transport/grpc.ts";
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

/** The gRPC error a failed call answers with. */
export function toServiceError(error: unknown, rpc: string, logger: Logger): Partial<grpc.ServiceError> {
  if (error instanceof KvError) {
    if (!error.outcomeUnknown) return { code: GRPC_STATUS[error.code], details: error.message };
    const metadata = new grpc.Metadata();
    metadata.set(OUTCOME_METADATA_KEY, OUTCOME_UNKNOWN);
    return { code: GRPC_STATUS[error.code], details: error.message, metadata };
  }
  const message = error instanceof Error ? error.message : String(error);
  logger.error(`${rpc} failed with an unexpected error`, {
    error: message,
    stack: error instanceof Error ? error.stack : undefined,
  });
  return {
    code: grpc.status.INTERNAL,
    details: `server: ${rpc} failed: ${message} (this is a bug; see the server log)`,
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
