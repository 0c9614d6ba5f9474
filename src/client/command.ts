/**
 * The contract of a client subcommand: what it declares, what it receives, and the
 * exit statuses it returns. See cli.ts for how they are run.
 *
 * @module
 */

import type { KvClient } from "./client.ts";

/** Success. */
export const EXIT_OK = 0;
/** The answer is "no": the key does not exist (get), the node is not serving (health),
 * fewer replicas acknowledged than asked (wait). */
export const EXIT_NOT_FOUND = 1;
/** A usage mistake: unknown subcommand or flag, a bad argument, an input file that
 * cannot be read or parsed. */
export const EXIT_USAGE = 2;
/** The server could not be reached, or answered with an error. */
export const EXIT_ERROR = 3;
/** The command's output could not be written: standard output (a full disk, /dev/full,
 * a terminal that went away) or a file it writes (export's FILE, bench's --histogram).
 * The failure is the local machine's, not the server's, so it is not EXIT_ERROR. (A reader
 * that went away, `kvstore scan | head`, is not a failure: the command ends with 0.) */
export const EXIT_OUTPUT = 4;
/** The user interrupted the command (Ctrl-C in the shell), as shells report SIGINT. */
export const EXIT_INTERRUPTED = 130;

/** Thrown when the command's output cannot be written (see EXIT_OUTPUT); its message
 * says what could not be written and why. */
export class OutputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "OutputError";
  }
}

/** An OutputError for `what` ("standard output", a file's path) from the error writing
 * it threw; a BrokenPipe (the reader went away) passes through as it is. */
export function outputError(what: string, error: unknown): Error {
  if (error instanceof OutputError || error instanceof Deno.errors.BrokenPipe) return error;
  const detail = error instanceof Deno.errors.NotFound
    ? "no such file or directory"
    : error instanceof Deno.errors.PermissionDenied
    ? "permission denied"
    : error instanceof Error
    ? error.message
    : String(error);
  return new OutputError(`Cannot write ${what}: ${detail}`);
}

/** A flag of one subcommand, declared for node:util parseArgs and the help text. */
export interface CommandFlag {
  readonly name: string;
  readonly type: "string" | "boolean";
  readonly valueName?: string;
  readonly help: string;
  /** A one-letter alias (`-n`). */
  readonly short?: string;
}

/** Where a command's output goes: the process's stdout and stderr, or a test's buffers. */
export interface CommandIo {
  /** Writes `text` as is to standard output. */
  stdout(text: string): void;
  /** Writes `text` as is to standard error. */
  stderr(text: string): void;
}

/** What a subcommand's `run` gets. */
export interface CommandContext {
  readonly positionals: readonly string[];
  readonly flags: Readonly<Record<string, string | boolean | undefined>>;
  /** host:port of the server, validated. */
  readonly endpoint: string;
  readonly json: boolean;
  /** The deadline of each call, in ms. */
  readonly timeoutMs: number;
  readonly io: CommandIo;
  /** True inside `kvstore shell`. */
  readonly inShell: boolean;
  /** Aborted when the user interrupts the command (Ctrl-C in the shell). The shell gets
   * its prompt back at once and output stops; a command that runs until stopped
   * (`health --watch`, `bench`, `import`, `export`, `wait`) must also stop its work when
   * it sees this, so nothing goes on behind the prompt. */
  readonly signal: AbortSignal;
  /** A client for `endpoint`, made on first use and closed when the command (or the
   * shell) ends. */
  client(): KvClient;
  /** Writes a line (or, with an object, a JSON document on one line) to stdout. */
  print(output: string | object): void;
  /** Writes one line to stderr. */
  warn(line: string): void;
}

export interface ClientCommand {
  readonly name: string;
  /** Positional arguments, for the usage line: `KEY VALUE`. */
  readonly args: string;
  readonly summary: string;
  /** More help, printed by `kvstore NAME --help` after the summary. */
  readonly details?: string;
  readonly flags?: readonly CommandFlag[];
  /** True for a command that talks to no server (repair): it takes no --endpoint or
   * --timeout-ms, and its help does not offer them. */
  readonly offline?: boolean;
  /** The least and most positional arguments accepted (most: Infinity for any). */
  readonly arity: readonly [number, number];
  /** Runs the command; resolves with the exit status. */
  run(context: CommandContext): Promise<number>;
}
