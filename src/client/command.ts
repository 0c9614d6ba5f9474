/**
 * The contract of a client subcommand: what it declares, what it receives, and the
 * exit statuses it returns. See cli.ts for how they are run.
 *
 * @module
 */

import type { KvClient } from "./client.ts";

export const EXIT_OK = 0;
export const EXIT_NOT_FOUND = 1;
export const EXIT_USAGE = 2;
export const EXIT_ERROR = 3;

/** A flag of one subcommand, declared for node:util parseArgs and the help text. */
export interface CommandFlag {
  readonly name: string;
  readonly type: "string" | "boolean";
  readonly valueName?: string;
  readonly help: string;
}

/** What a subcommand's `run` gets. */
export interface CommandContext {
  readonly positionals: readonly string[];
  readonly flags: Readonly<Record<string, string | boolean | undefined>>;
  readonly endpoint: string;
  readonly json: boolean;
  readonly timeoutMs: number;
  /** A client for `endpoint`, made on first use and closed when the command ends. */
  client(): KvClient;
  /** Writes a line (or, with --json, a JSON document) to stdout. */
  print(output: string | object): void;
  /** Writes one line to stderr. */
  warn(line: string): void;
}

export interface ClientCommand {
  readonly name: string;
  /** Positional arguments, for the usage line: `KEY VALUE`. */
  readonly args: string;
  readonly summary: string;
  readonly flags?: readonly CommandFlag[];
  /** The least and most positional arguments accepted (most: Infinity for any). */
  readonly arity: readonly [number, number];
  /** Runs the command; resolves with the exit status. */
  run(context: CommandContext): Promise<number>;
}
