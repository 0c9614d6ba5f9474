/**
 * Client and operator subcommands of the kvstore binary: `kvstore get k`, `kvstore info`,
 * in the style of redis-cli and etcdctl.
 *
 * Each subcommand is a {@linkcode ClientCommand} in its own file under commands/,
 * listed once in {@linkcode CLIENT_COMMANDS}. They share the connection flags
 * (`--endpoint`, env KVSTORE_ENDPOINT), `--json`, `--timeout-ms` and `--help`, and one
 * contract for exit status and output:
 *
 * | status | meaning |
 * | --- | --- |
 * | 0 | success |
 * | 1 | the answer is "no": the key does not exist (`get`), the node is not serving (`health`), too few replicas acknowledged (`wait`) |
 * | 2 | usage error: unknown subcommand or flag, bad argument, unreadable input file |
 * | 3 | the server could not be reached, or answered with an error |
 * | 4 | the output could not be written: standard output, or the file the command writes |
 *
 * Inside `kvstore shell`, a command interrupted with Ctrl-C ends with 130, as shells
 * report SIGINT; run on its own, Ctrl-C ends the process.
 *
 * Results go to stdout: plain text by default, JSON with `--json` (one document, or one
 * per line for commands that stream, such as `scan`). Errors are one line on stderr,
 * prefixed `kvstore COMMAND: `.
 *
 * The same runner serves `kvstore shell`, which parses each line it reads into
 * arguments and runs it here with a client shared for the whole session.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { parseAddress } from "../config/address.ts";
import { CLIENT_CALL_DEADLINE_MS_DEFAULT } from "../config/limits.ts";
import { UsageError } from "../config/usage_error.ts";
import { twoColumns, wrapText } from "../config/usage_text.ts";
import { connectionLoss, connectionProblem, isServerMessage } from "../transport/transport_failure.ts";
import { KvClient, KvClientError } from "./client.ts";
import { COMMANDS } from "./commands/mod.ts";
import {
  type ClientCommand,
  type CommandContext,
  type CommandFlag,
  type CommandIo,
  EXIT_ERROR,
  EXIT_INTERRUPTED,
  EXIT_OK,
  EXIT_OUTPUT,
  EXIT_USAGE,
  OutputError,
  outputError,
} from "./command.ts";

export * from "./command.ts";

export const DEFAULT_ENDPOINT = "127.0.0.1:50051";

/** Every subcommand, by name. */
export const CLIENT_COMMANDS: ReadonlyMap<string, ClientCommand> = new Map(
  COMMANDS.map((command) => [command.name, command]),
);

export const COMMON_FLAGS: readonly CommandFlag[] = [
  {
    name: "endpoint",
    type: "string",
    valueName: "HOST:PORT",
    help: `Server to talk to (env KVSTORE_ENDPOINT; default ${DEFAULT_ENDPOINT})`,
  },
  { name: "json", type: "boolean", help: "Print results as JSON" },
  {
    name: "timeout-ms",
    type: "string",
    valueName: "MS",
    help: `Deadline of each call (default ${CLIENT_CALL_DEADLINE_MS_DEFAULT})`,
  },
  { name: "help", type: "boolean", short: "h", help: "Print this command's help" },
];

const encoder = new TextEncoder();

function writeAll(file: { writeSync(bytes: Uint8Array): number }, text: string): void {
  const bytes = encoder.encode(text);
  let written = 0;
  while (written < bytes.length) written += file.writeSync(bytes.subarray(written));
}

/** The process's standard output and error, written synchronously so lines from a
 * command and from the shell's prompt never interleave out of order. Standard output
 * that cannot be written throws an OutputError (exit status EXIT_OUTPUT); standard
 * error is where that is said, so a failure there has nowhere to go and is dropped. */
export const PROCESS_IO: CommandIo = {
  stdout: (text) => {
    try {
      writeAll(Deno.stdout, text);
    } catch (error) {
      throw outputError("standard output", error);
    }
  },
  stderr: (text) => {
    try {
      writeAll(Deno.stderr, text);
    } catch {
      // Nowhere left to report it.
    }
  },
};

/** Clients by endpoint, shared by the commands of one shell session (or made for one
 * command), and closed together. */
export class ClientPool {
  #clients = new Map<string, KvClient>();

  /** A client for `endpoint` whose calls have `timeoutMs`. */
  get(endpoint: string, timeoutMs: number): KvClient {
    let client = this.#clients.get(endpoint);
    if (client === undefined) this.#clients.set(endpoint, client = new KvClient(endpoint));
    return client.withDeadline(timeoutMs);
  }

  close(): void {
    for (const client of this.#clients.values()) client.close();
    this.#clients.clear();
  }
}

/** How a command is run besides its arguments. */
export interface RunOptions {
  readonly io?: CommandIo;
  /** Clients to use (and not close); the shell passes its session's pool. */
  readonly clients?: ClientPool;
  /** The endpoint when --endpoint is not given (the shell's); else KVSTORE_ENDPOINT. */
  readonly endpoint?: string;
  /** The deadline when --timeout-ms is not given (the shell's). */
  readonly timeoutMs?: number;
  readonly inShell?: boolean;
  /** Interrupts the command when aborted (the shell's Ctrl-C); see CommandContext. */
  readonly signal?: AbortSignal;
}

/** A signal that is never aborted, for a command run on its own (Ctrl-C then ends the
 * process, as for any Unix tool). */
const NEVER_ABORTED = new AbortController().signal;

/** Runs `kvstore <command> [args]`; resolves with the exit status. */
export async function runClientCommand(args: readonly string[], options: RunOptions = {}): Promise<number> {
  const io = options.io ?? PROCESS_IO;
  const [name, ...rest] = args;
  const command = CLIENT_COMMANDS.get(name);
  if (command === undefined) {
    io.stderr(`kvstore: Unknown command ${JSON.stringify(name)} (see kvstore help)\n`);
    return EXIT_USAGE;
  }
  return await runCommand(command, rest, options);
}

/** Runs one subcommand with its arguments (the name already taken off). */
export async function runCommand(
  command: ClientCommand,
  args: readonly string[],
  options: RunOptions = {},
): Promise<number> {
  const signal = options.signal ?? NEVER_ABORTED;
  const rawIo = options.io ?? PROCESS_IO;
  const io = muteWhenAborted(rawIo, signal);
  const ownPool = options.clients === undefined;
  const clients = options.clients ?? new ClientPool();
  let context: ContextImpl;
  try {
    context = parseCommandArgs(command, args, { ...options, signal }, io, clients);
  } catch (error) {
    if (ownPool) clients.close();
    if (!(error instanceof UsageError)) throw error;
    io.stderr(`kvstore ${command.name}: ${error.message}\n`);
    return EXIT_USAGE;
  }
  if (context.flags.help === true) {
    if (ownPool) clients.close();
    try {
      io.stdout(commandUsage(command) + "\n");
    } catch (error) {
      return outputFailed(error, command.name, io);
    }
    return EXIT_OK;
  }
  try {
    const status = await untilInterrupted(command.run(context), signal);
    if (status === EXIT_INTERRUPTED && signal.aborted) rawIo.stderr(`kvstore ${command.name}: Interrupted\n`);
    return status;
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr(`kvstore ${command.name}: ${error.message}\n`);
      return EXIT_USAGE;
    }
    if (error instanceof OutputError || error instanceof Deno.errors.BrokenPipe) {
      return outputFailed(error, command.name, io);
    }
    io.stderr(`kvstore ${command.name}: ${describeFailure(error, context.endpoint, context.timeoutMs)}\n`);
    return EXIT_ERROR;
  } finally {
    if (ownPool) clients.close();
  }
}

/** The status of a command whose output failed: EXIT_OUTPUT with one line on stderr
 * saying what could not be written, or EXIT_OK, quietly, when the reader went away
 * (`kvstore scan | head`), as Unix tools do. */
function outputFailed(error: unknown, name: string, io: CommandIo): number {
  if (error instanceof Deno.errors.BrokenPipe) return EXIT_OK;
  if (!(error instanceof OutputError)) throw error;
  io.stderr(`kvstore ${name}: ${error.message}\n`);
  return EXIT_OUTPUT;
}

/** Output that stops when `signal` is aborted, so an interrupted command that is still
 * winding down behind the shell's prompt prints nothing more. */
function muteWhenAborted(io: CommandIo, signal: AbortSignal): CommandIo {
  if (signal === NEVER_ABORTED) return io;
  return {
    stdout: (text) => {
      if (!signal.aborted) io.stdout(text);
    },
    stderr: (text) => {
      if (!signal.aborted) io.stderr(text);
    },
  };
}

/** The command's exit status, or EXIT_INTERRUPTED as soon as `signal` is aborted. The
 * command's own promise is then left to settle on its own: its outcome (an error
 * included) no longer matters. */
async function untilInterrupted(run: Promise<number>, signal: AbortSignal): Promise<number> {
  if (signal === NEVER_ABORTED) return await run;
  run.catch(() => {/* Settles after the interruption was reported; nothing to add. */});
  let onAbort = () => {};
  const interrupted = new Promise<number>((resolve) => {
    onAbort = () => resolve(EXIT_INTERRUPTED);
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    return await Promise.race([run, interrupted]);
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

/** One line that says what went wrong talking to the server. */
export function describeFailure(error: unknown, endpoint: string, timeoutMs: number): string {
  if (error instanceof KvClientError) {
    // A write cut off (the connection, or the deadline) may have been applied all the same.
    const unknown = error.outcomeUnknown ? "; the write may or may not have been applied (read it back to know)" : "";
    if (error.transport === "unreached") {
      return `Cannot reach ${endpoint}: ${connectionProblem(error.transportDetails)} ` +
        "(is the server running? set --endpoint or KVSTORE_ENDPOINT)";
    }
    if (error.transport === "lost") {
      return `Connection to ${endpoint} lost during the call (${connectionLoss(error.transportDetails)})` +
        (unknown === "" ? "; the server may have stopped or restarted: retry" : unknown);
    }
    // Only the client's own deadline is a timeout to report as such: a router answers
    // DEADLINE_EXCEEDED itself, just before that deadline, naming the shard that hangs.
    if (error.codeName === "DEADLINE_EXCEEDED" && !isServerMessage(error.details)) {
      return `No answer from ${endpoint} within ${timeoutMs} ms (raise --timeout-ms, or check the server)${unknown}`;
    }
    // A server's own answer already says whether the write may have been applied (a
    // router's names the shard).
    return `${error.codeName}: ${error.details}`;
  }
  return error instanceof Error ? error.message : String(error);
}

class ContextImpl implements CommandContext {
  readonly positionals: readonly string[];
  readonly flags: Readonly<Record<string, string | boolean | undefined>>;
  readonly endpoint: string;
  readonly json: boolean;
  readonly timeoutMs: number;
  readonly io: CommandIo;
  readonly inShell: boolean;
  readonly signal: AbortSignal;
  #clients: ClientPool;

  constructor(
    parsed: { positionals: string[]; flags: Record<string, string | boolean | undefined> },
    settings: { endpoint: string; timeoutMs: number; inShell: boolean; signal: AbortSignal },
    io: CommandIo,
    clients: ClientPool,
  ) {
    this.positionals = parsed.positionals;
    this.flags = parsed.flags;
    this.endpoint = settings.endpoint;
    this.json = parsed.flags.json === true;
    this.timeoutMs = settings.timeoutMs;
    this.inShell = settings.inShell;
    this.signal = settings.signal;
    this.io = io;
    this.#clients = clients;
  }

  client(): KvClient {
    return this.#clients.get(this.endpoint, this.timeoutMs);
  }

  print(output: string | object): void {
    this.io.stdout((typeof output === "string" ? output : JSON.stringify(output)) + "\n");
  }

  warn(line: string): void {
    this.io.stderr(line + "\n");
  }
}

function parseCommandArgs(
  command: ClientCommand,
  args: readonly string[],
  options: RunOptions & { signal: AbortSignal },
  io: CommandIo,
  clients: ClientPool,
): ContextImpl {
  const flags = [...commonFlagsOf(command), ...(command.flags ?? [])];
  const parseOptions: Record<string, { type: "string" | "boolean"; short?: string }> = {};
  for (const flag of flags) {
    parseOptions[flag.name] = flag.short === undefined ? { type: flag.type } : { type: flag.type, short: flag.short };
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: args.map(shieldNegativeNumber),
      options: parseOptions,
      strict: true,
      allowPositionals: true,
    });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const flag = /'(-{1,2}[^' ]+)/.exec(message)?.[1] ?? "";
    const code = (error as { code?: string }).code;
    if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
      throw new UsageError(`Unknown flag ${flag} (see kvstore ${command.name} --help)`);
    }
    if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" && message.includes("ambiguous")) {
      throw new UsageError(`Flag ${flag} needs a value; write a value that starts with a dash as ${flag}=-VALUE`);
    }
    if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" && !message.includes("does not take an argument")) {
      throw new UsageError(`Flag ${flag} needs a value (see kvstore ${command.name} --help)`);
    }
    throw new UsageError(`${message} (see kvstore ${command.name} --help)`);
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  for (const [name, value] of Object.entries(values)) {
    if (typeof value === "string") values[name] = unshieldNegativeNumber(value);
  }
  const positionals = parsed.positionals.map(unshieldNegativeNumber);
  if (values.help !== true) {
    const [least, most] = command.arity;
    if (positionals.length < least || positionals.length > most) {
      throw new UsageError(
        `Expected ${command.args || "no arguments"}; usage: kvstore ${command.name} ${command.args}`.trimEnd(),
      );
    }
  }
  // A command that talks to no server does not read KVSTORE_ENDPOINT either.
  const endpoint = command.offline === true
    ? DEFAULT_ENDPOINT
    : resolveEndpoint(values.endpoint as string | undefined, options.endpoint);
  const timeoutText = values["timeout-ms"] as string | undefined;
  const timeoutMs = timeoutText === undefined
    ? options.timeoutMs ?? CLIENT_CALL_DEADLINE_MS_DEFAULT
    : parseTimeoutMs(timeoutText, "--timeout-ms");
  return new ContextImpl(
    { positionals, flags: values },
    { endpoint, timeoutMs, inShell: options.inShell === true, signal: options.signal },
    io,
    clients,
  );
}

/** Marks an argument that is a negative number, so parseArgs takes it as a value rather
 * than as the short flag `-5` (no flag is a digit): `kvstore expire k -1` and
 * `kvstore set temp -5` work as in redis-cli. Other values that start with a dash go
 * after `--`, or as `--flag=-value`. */
const NEGATIVE_NUMBER_MARK = "\u0000";
const NEGATIVE_NUMBER = /^-[0-9.]/;

function shieldNegativeNumber(arg: string): string {
  return NEGATIVE_NUMBER.test(arg) ? NEGATIVE_NUMBER_MARK + arg : arg;
}

function unshieldNegativeNumber(arg: string): string {
  return arg.startsWith(NEGATIVE_NUMBER_MARK) && NEGATIVE_NUMBER.test(arg.slice(1)) ? arg.slice(1) : arg;
}

/** The endpoint to use: --endpoint, else the caller's (the shell's), else
 * KVSTORE_ENDPOINT, else the default; validated as host:port. */
export function resolveEndpoint(flag: string | undefined, fallback: string | undefined): string {
  if (flag !== undefined) return checkedEndpoint(flag, "--endpoint");
  if (fallback !== undefined) return fallback;
  const env = Deno.env.get("KVSTORE_ENDPOINT");
  if (env !== undefined && env !== "") return checkedEndpoint(env, "KVSTORE_ENDPOINT");
  return DEFAULT_ENDPOINT;
}

function checkedEndpoint(text: string, source: string): string {
  parseAddress(text, source);
  return text.trim();
}

/** Parses a positive deadline in ms. */
export function parseTimeoutMs(text: string, flag: string): number {
  const timeoutMs = Number(text);
  if (!/^[0-9]+$/.test(text.trim()) || !Number.isSafeInteger(timeoutMs) || timeoutMs <= 0) {
    throw new UsageError(`Invalid ${flag} ${JSON.stringify(text)}: expected a positive whole number of ms`);
  }
  return timeoutMs;
}

/** The help text of one subcommand, wrapped for a terminal. */
export function commandUsage(command: ClientCommand): string {
  const flags = [...(command.flags ?? []), ...commonFlagsOf(command)];
  const label = (flag: CommandFlag) => {
    const name = flag.type === "boolean" ? `--${flag.name}` : `--${flag.name} ${flag.valueName}`;
    return flag.short === undefined ? name : `-${flag.short}, ${name}`;
  };
  return [
    `Usage: kvstore ${command.name} ${command.args}`.trimEnd(),
    "",
    ...wrapText(command.summary),
    ...(command.details === undefined ? [] : ["", ...wrapText(command.details)]),
    "",
    "Flags:",
    ...twoColumns(flags.map((flag) => [label(flag), flag.help])),
  ].join("\n");
}

/** The list of subcommands, for `kvstore help` and `kvstore --help`. */
export function commandsOverview(): string {
  return twoColumns(COMMANDS.map((command) => [command.name, command.summary])).join("\n");
}

/** The shared flags a command takes: all of COMMON_FLAGS, or for a command that talks
 * to no server (repair) only --json and --help. */
function commonFlagsOf(command: ClientCommand): readonly CommandFlag[] {
  return command.offline === true ? COMMON_FLAGS.filter((flag) => !SERVER_FLAG_NAMES.has(flag.name)) : COMMON_FLAGS;
}

/** The shared flags that say how to reach the server. */
const SERVER_FLAG_NAMES: ReadonlySet<string> = new Set(["endpoint", "timeout-ms"]);
