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
 * | 1 | the key was not found, where that is the answer's point (`get`) |
 * | 2 | usage error: unknown subcommand or flag, missing argument |
 * | 3 | the server could not be reached, or answered with an error |
 *
 * Results go to stdout: plain text by default, one JSON document with `--json`. Errors
 * are one line on stderr, prefixed `kvstore: `.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { UsageError } from "../config/usage_error.ts";
import { KvClient, KvClientError } from "./client.ts";
import { COMMANDS } from "./commands/mod.ts";
import {
  type ClientCommand,
  type CommandContext,
  type CommandFlag,
  EXIT_ERROR,
  EXIT_OK,
  EXIT_USAGE,
} from "./command.ts";

export * from "./command.ts";

export const DEFAULT_ENDPOINT = "127.0.0.1:50051";

/** Every subcommand, by name. */
export const CLIENT_COMMANDS: ReadonlyMap<string, ClientCommand> = new Map(
  COMMANDS.map((command) => [command.name, command]),
);

const COMMON_FLAGS: readonly CommandFlag[] = [
  {
    name: "endpoint",
    type: "string",
    valueName: "HOST:PORT",
    help: `Server to talk to (env KVSTORE_ENDPOINT; default ${DEFAULT_ENDPOINT})`,
  },
  { name: "json", type: "boolean", help: "Print results as JSON" },
  { name: "timeout-ms", type: "string", valueName: "MS", help: "Deadline of each call (default 5000)" },
  { name: "help", type: "boolean", help: "Print this command's help" },
];

const encoder = new TextEncoder();

function writeOut(text: string): void {
  const bytes = encoder.encode(text);
  let written = 0;
  while (written < bytes.length) written += Deno.stdout.writeSync(bytes.subarray(written));
}

function writeErr(text: string): void {
  const bytes = encoder.encode(text);
  let written = 0;
  while (written < bytes.length) written += Deno.stderr.writeSync(bytes.subarray(written));
}

/** Runs `kvstore <command> [args]`; resolves with the exit status. */
export async function runClientCommand(args: readonly string[]): Promise<number> {
  const [name, ...rest] = args;
  const command = CLIENT_COMMANDS.get(name);
  if (command === undefined) {
    writeErr(`kvstore: Unknown command ${JSON.stringify(name)} (see kvstore help)\n`);
    return EXIT_USAGE;
  }
  let context: ContextImpl;
  try {
    context = parseCommandArgs(command, rest);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    writeErr(`kvstore ${command.name}: ${error.message}\n`);
    return EXIT_USAGE;
  }
  if (context.flags.help === true) {
    writeOut(commandUsage(command) + "\n");
    return EXIT_OK;
  }
  try {
    return await command.run(context);
  } catch (error) {
    if (error instanceof UsageError) {
      writeErr(`kvstore ${command.name}: ${error.message}\n`);
      return EXIT_USAGE;
    }
    // The reader went away (`kvstore scan | head`): stop quietly, as Unix tools do.
    if (error instanceof Deno.errors.BrokenPipe) return EXIT_OK;
    writeErr(`kvstore ${command.name}: ${describeFailure(error, context.endpoint, context.timeoutMs)}\n`);
    return EXIT_ERROR;
  } finally {
    context.close();
  }
}

/** One line that says what went wrong talking to the server. */
export function describeFailure(error: unknown, endpoint: string, timeoutMs: number): string {
  if (error instanceof KvClientError) {
    // Our servers' own messages start with their subsystem ("router: Cannot reach shard
    // ..."); those are the server speaking, not a failure to reach it.
    const fromServer = /^[a-z]+: /.test(error.details);
    if (error.codeName === "UNAVAILABLE" && !fromServer) {
      return `Cannot reach ${endpoint}: ${error.details} (is the server running? set --endpoint or KVSTORE_ENDPOINT)`;
    }
    if (error.codeName === "DEADLINE_EXCEEDED") {
      return `No answer from ${endpoint} within ${timeoutMs} ms (raise --timeout-ms, or check the server)`;
    }
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
  #client: KvClient | undefined;

  constructor(
    positionals: string[],
    flags: Record<string, string | boolean | undefined>,
    endpoint: string,
    timeoutMs: number,
  ) {
    this.positionals = positionals;
    this.flags = flags;
    this.endpoint = endpoint;
    this.json = flags.json === true;
    this.timeoutMs = timeoutMs;
  }

  client(): KvClient {
    this.#client ??= new KvClient(this.endpoint, { deadlineMs: this.timeoutMs });
    return this.#client;
  }

  print(output: string | object): void {
    writeOut((typeof output === "string" ? output : JSON.stringify(output)) + "\n");
  }

  warn(line: string): void {
    writeErr(line + "\n");
  }

  close(): void {
    this.#client?.close();
  }
}

function parseCommandArgs(command: ClientCommand, args: readonly string[]): ContextImpl {
  const flags = [...COMMON_FLAGS, ...(command.flags ?? [])];
  const options: Record<string, { type: "string" | "boolean" }> = {};
  for (const flag of flags) options[flag.name] = { type: flag.type };
  let parsed;
  try {
    parsed = parseArgs({ args: [...args], options, strict: true, allowPositionals: true });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const flag = /'(-{1,2}[^' ]+)/.exec(message)?.[1] ?? "";
    const code = (error as { code?: string }).code;
    throw new UsageError(
      code === "ERR_PARSE_ARGS_UNKNOWN_OPTION"
        ? `Unknown flag ${flag} (see kvstore ${command.name} --help)`
        : `${message} (see kvstore ${command.name} --help)`,
    );
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  const positionals = parsed.positionals;
  if (values.help !== true) {
    const [least, most] = command.arity;
    if (positionals.length < least || positionals.length > most) {
      throw new UsageError(
        `Expected ${command.args || "no arguments"}; usage: kvstore ${command.name} ${command.args}`,
      );
    }
  }
  const endpoint = (values.endpoint as string | undefined) ?? Deno.env.get("KVSTORE_ENDPOINT") ?? DEFAULT_ENDPOINT;
  const timeoutText = values["timeout-ms"] as string | undefined;
  const timeoutMs = timeoutText === undefined ? 5000 : Number(timeoutText);
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs <= 0) {
    throw new UsageError(`Invalid --timeout-ms ${JSON.stringify(timeoutText)}: expected a positive whole number`);
  }
  return new ContextImpl(positionals, values, endpoint, timeoutMs);
}

/** The help text of one subcommand. */
export function commandUsage(command: ClientCommand): string {
  const flags = [...(command.flags ?? []), ...COMMON_FLAGS];
  const label = (flag: CommandFlag) => flag.type === "boolean" ? `--${flag.name}` : `--${flag.name} ${flag.valueName}`;
  const width = Math.max(...flags.map((flag) => label(flag).length));
  return [
    `Usage: kvstore ${command.name} ${command.args}`.trimEnd(),
    "",
    command.summary,
    "",
    "Flags:",
    ...flags.map((flag) => `  ${label(flag).padEnd(width)}  ${flag.help}`),
  ].join("\n");
}

/** The list of subcommands, for `kvstore help` and `kvstore --help`. */
export function commandsOverview(): string {
  const width = Math.max(...COMMANDS.map((command) => command.name.length));
  return COMMANDS.map((command) => `  ${command.name.padEnd(width)}  ${command.summary}`).join("\n");
}
