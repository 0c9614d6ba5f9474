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
/** The user interrupted the command (Ctrl-C in the shell), as shells report SIGINT. */
export const EXIT_INTERRUPTED = 130;

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
  /** The least and most positional arguments accepted (most: Infinity for any). */
  readonly arity: readonly [number, number];
  /** Runs the command; resolves with the exit status. */
  run(context: CommandContext): Promise<number>;
}
