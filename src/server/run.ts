/**
 * `kvstore [--master | --replica] [flags]`: parse the command line, start a node, and
 * run it until SIGINT or SIGTERM.
 *
 * Exit status: 0 after a graceful shutdown or --help, 1 when the node could not start
 * (the reason is one line on stderr) or could not close its files at shutdown (a stalled
 * disk; the log says which writes were given up), 2 on a command-line mistake, 4 when
 * --help cannot write its text (as a client command whose output fails).
 *
 * @module
 */

import { CONFIG_FILE_BYTES_MAX } from "../config/limits.ts";
import { parseServerArgs, serverUsage } from "../config/server_flags.ts";
import { UsageError } from "../config/usage_error.ts";
import { KvError } from "../errors.ts";
import { type LogFormat, Logger } from "../logging/logger.ts";
import { stderrSink } from "../logging/stderr.ts";
import { routeGrpcLogs } from "../transport/grpc.ts";
import { Node } from "./node.ts";

const encoder = new TextEncoder();

/** Runs the server command; resolves with the process exit status. */
export async function runServer(args: readonly string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseServerArgs(args, { env: Deno.env.toObject(), readFile: readConfigFileText });
  } catch (error) {
    if (error instanceof UsageError) return fail(error.message, 2);
    throw error;
  }
  if (parsed.help) return printText(serverUsage() + "\n", "kvstore");
  const { config } = parsed;
  const logger = new Logger({ level: config.logLevel, format: config.logFormat, sink: stderrSink });
  for (const warning of parsed.warnings) logger.child("config").warn(warning);
  routeGrpcLogs(logger.child("grpc"));

  // Signals are handled from before the node starts: a SIGTERM that arrives just after
  // "Listening on" (or during start-up) shuts it down gracefully rather than killing it.
  const signal = waitForSignal(() => logger.warn("Second signal: exiting without waiting"));
  // Once the log format is known, the line that says why the node cannot start is in it.
  const failStart = (message: string) =>
    reportStartFailure(message, { program: "kvstore", subsystem: "server", logger, format: config.logFormat });
  let node: Node;
  try {
    node = await Node.start(config, logger);
  } catch (error) {
    if (error instanceof KvError) return failStart(error.message);
    // The system's own errors (a full disk, an I/O error) stop the node with one line too,
    // not a stack trace; anything else is a bug, and its stack says where.
    if (isSystemError(error)) {
      return failStart(`server: Cannot start with data directory ${JSON.stringify(config.dataDir)}: ${error.message}`);
    }
    throw error;
  }

  return await node.shutdown(`received ${await signal}`) ? 0 : 1;
}

/** Resolves with the name of the first SIGINT or SIGTERM; a second signal exits at
 * once, for the operator whose shutdown is stuck. */
export function waitForSignal(onSecond: () => void): Promise<Deno.Signal> {
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

/** Reads a config file's text (--config), at most CONFIG_FILE_BYTES_MAX bytes: a path that
 * names something else (`/dev/zero`, a data file) is refused with its size rather than
 * read until memory runs out. Pipes work (`--config <(...)`). Throws with the reason. */
export function readConfigFileText(path: string): string {
  using file = Deno.openSync(path);
  const buffer = new Uint8Array(CONFIG_FILE_BYTES_MAX + 1);
  let length = 0;
  while (length < buffer.length) {
    const read = file.readSync(buffer.subarray(length));
    if (read === null) break;
    length += read;
  }
  if (length > CONFIG_FILE_BYTES_MAX) {
    throw new Error(`it is larger than ${CONFIG_FILE_BYTES_MAX} bytes, too large for a file of settings`);
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(buffer.subarray(0, length));
  } catch {
    throw new Error("it is not UTF-8 text");
  }
}

/** Whether `error` comes from the operating system (Deno gives those an errno name, such
 * as ENOSPC, as their code). */
export function isSystemError(error: unknown): error is Error & { code: string } {
  return error instanceof Error && "code" in error && typeof error.code === "string" && /^E[A-Z0-9]+$/.test(error.code);
}

/** The status EXIT_OUTPUT: standard output could not be written (see
 * src/client/command.ts, whose value it is). */
const EXIT_OUTPUT = 4;

/** Writes `text` (help, a version) to standard output and returns the exit status: 0,
 * or 4 with one line on stderr when it cannot be written (a full disk, /dev/full). A
 * reader that went away (`kvstore --help | head -1`) is no failure. */
export async function printText(text: string, program: string): Promise<number> {
  const bytes = encoder.encode(text);
  try {
    let written = 0;
    while (written < bytes.length) written += await Deno.stdout.write(bytes.subarray(written));
    return 0;
  } catch (error) {
    if (error instanceof Deno.errors.BrokenPipe) return 0;
    stderrSink(`${program}: Cannot write standard output: ${error instanceof Error ? error.message : String(error)}`);
    return EXIT_OUTPUT;
  }
}

function fail(message: string, status: number): number {
  stderrSink(`kvstore: ${message}`);
  return status;
}

/**
 * A start-up failure's message split for the line that reports it: `message` is a
 * KvError's, prefixed by the subsystem that failed (`server: Cannot listen on ...`).
 * Returns that subsystem (the process's own when the message names none), the message
 * without it, and the text of the line: said by the process whose own subsystem it is
 * (`server` for a node, `router` for a router), the prefix only repeats the program's
 * name, so it is dropped; another subsystem's stays, since it says which part failed
 * (`metrics: Cannot listen on ...`, `recovery: Cannot load ...`).
 */
export function startFailure(
  message: string,
  ownSubsystem: string,
): { component: string; detail: string; text: string } {
  const match = /^([a-z]+): ([\s\S]*)$/.exec(message);
  if (match === null) return { component: ownSubsystem, detail: message, text: message };
  return { component: match[1], detail: match[2], text: match[1] === ownSubsystem ? match[2] : message };
}

/**
 * Says why the process could not start, in one line on stderr, and returns exit status
 * 1. As text, the line is prefixed by the program, as a command-line mistake's is
 * (`kvstore: Cannot listen on 127.0.0.1:50051: ...`, `kvstore router: No cluster to
 * serve: ...`, `kvstore: metrics: Cannot listen on ...`). With --log-format json every
 * line on stderr is JSON, this one too: an error whose component is the subsystem that
 * failed (`"component":"server","msg":"Cannot listen on ..."`), as its other lines have.
 */
export function reportStartFailure(
  message: string,
  options: { program: string; subsystem: string; logger: Logger; format: LogFormat },
): number {
  const { component, detail, text } = startFailure(message, options.subsystem);
  if (options.format === "json") options.logger.child(component).error(detail);
  else stderrSink(`${options.program}: ${text}`);
  return 1;
}
