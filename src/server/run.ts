/**
 * `kvstore [--master | --replica] [flags]`: parse the command line, start a node, and
 * run it until SIGINT or SIGTERM.
 *
 * Exit status: 0 after a graceful shutdown or --help, 1 when the node could not start
 * (the reason is one line on stderr), 2 on a command-line mistake.
 *
 * @module
 */

import { parseServerArgs, serverUsage } from "../config/server_flags.ts";
import { UsageError } from "../config/usage_error.ts";
import { KvError } from "../errors.ts";
import { Logger } from "../logging/logger.ts";
import { stderrSink } from "../logging/stderr.ts";
import { Node } from "./node.ts";

const encoder = new TextEncoder();

/** Runs the server command; resolves with the process exit status. */
export async function runServer(args: readonly string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseServerArgs(args);
  } catch (error) {
    if (error instanceof UsageError) return fail(error.message, 2);
    throw error;
  }
  if (parsed.help) {
    await Deno.stdout.write(encoder.encode(serverUsage() + "\n"));
    return 0;
  }
  const { config } = parsed;
  const logger = new Logger({ level: config.logLevel, format: config.logFormat, sink: stderrSink });
  // Listen for signals before starting: a signal that arrives while the node starts (or
  // right after it logs that it listens) then shuts it down gracefully once it is up,
  // rather than killing it with the signal's default action.
  const signal = waitForSignal(() => logger.warn("Second signal: exiting without waiting"));

  let node: Node;
  try {
    node = await Node.start(config, logger);
  } catch (error) {
    if (error instanceof KvError) return fail(error.message, 1);
    throw error;
  }

  await node.shutdown(`received ${await signal}`);
  return 0;
}

/** Resolves with the name of the first SIGINT or SIGTERM; a second signal exits at
 * once, for the operator whose shutdown is stuck. */
function waitForSignal(onSecond: () => void): Promise<Deno.Signal> {
  return new Promise((resolve) => {
    let received = false;
    const handle = (signal: Deno.Signal) => {
      if (received) {
        onSecond();
        Deno.exit(130);
      }
      received = true;
      resolve(signal);
    };
    Deno.addSignalListener("SIGINT", () => handle("SIGINT"));
    Deno.addSignalListener("SIGTERM", () => handle("SIGTERM"));
  });
}

function fail(message: string, status: number): number {
  stderrSink(`kvstore: ${message}`);
  return status;
}
