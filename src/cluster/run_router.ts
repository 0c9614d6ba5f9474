/**
 * `kvstore router [flags]`: parse the command line, start a router, and run it until
 * SIGINT or SIGTERM. Exit status as for a node: 0 after a graceful shutdown or --help,
 * 1 when the router could not start (the reason is one line on stderr), 2 on a
 * command-line mistake, 4 when --help cannot write its text.
 *
 * @module
 */

import { UsageError } from "../config/usage_error.ts";
import { KvError } from "../errors.ts";
import { Logger } from "../logging/logger.ts";
import { stderrSink } from "../logging/stderr.ts";
import { isSystemError, printText, readConfigFileText, reportStartFailure, waitForSignal } from "../server/run.ts";
import { routeGrpcLogs } from "../transport/grpc.ts";
import { Router } from "./router.ts";
import { parseRouterArgs, routerUsage } from "./router_flags.ts";

/** Runs `kvstore router` with `args` (the words after `router`); resolves with the exit
 * status. */
export async function runRouter(args: readonly string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseRouterArgs(args, { env: Deno.env.toObject(), readFile: readConfigFileText });
  } catch (error) {
    if (error instanceof UsageError) return fail(error.message, 2);
    throw error;
  }
  if (parsed.help) return printText(routerUsage() + "\n", "kvstore router");
  const { config } = parsed;
  const logger = new Logger({ level: config.logLevel, format: config.logFormat, sink: stderrSink });
  for (const warning of parsed.warnings) logger.child("config").warn(warning);
  routeGrpcLogs(logger.child("grpc"));
  // Listen for signals before starting, so a signal that arrives as soon as the router
  // logs "Listening" (a supervisor, a test) still gets a graceful shutdown.
  const signalled = waitForSignal(() => logger.warn("Second signal: exiting without waiting"));
  // As for a node: one line, in the log's format once that is known.
  const failStart = (message: string) =>
    reportStartFailure(message, { program: "kvstore router", subsystem: "router", logger, format: config.logFormat });
  let router: Router;
  try {
    router = await Router.start(config, logger);
  } catch (error) {
    if (error instanceof KvError) return failStart(error.message);
    // The system's own errors stop the router with one line too, not a stack trace;
    // anything else is a bug, and its stack says where.
    if (isSystemError(error)) {
      return failStart(`router: Cannot start with data directory ${JSON.stringify(config.dataDir)}: ${error.message}`);
    }
    throw error;
  }
  const signal = await signalled;
  await router.shutdown(`received ${signal}`);
  return 0;
}

function fail(message: string, status: number): number {
  stderrSink(`kvstore router: ${message}`);
  return status;
}
