/**
 * `kvstore shell`: an interactive prompt, like redis-cli without arguments. Each line is
 * a subcommand typed as on the command line (`set greeting "hello world" --ttl 60`),
 * run against one connection kept for the session.
 *
 * On a terminal: a prompt naming the endpoint, line editing, history with the arrow keys
 * kept between sessions in `~/.kvstore_history` (or `$KVSTORE_HISTFILE`; at most
 * SHELL_HISTORY_LINES_MAX lines), Ctrl-C to interrupt a command or clear the line, Ctrl-D or
 * `quit` to leave.
 * Built-ins: `help`, `help COMMAND`, `connect HOST:PORT`, `quit`/`exit`.
 *
 * When standard input is not a terminal (`kvstore shell < commands.txt`, a pipe), it runs
 * each line in order with no prompt and no history, and exits 0 if every command
 * succeeded, else with the status of the last one that failed, so a script can check.
 *
 * @module
 */

import * as readline from "node:readline";
import process from "node:process";
import { parseAddress } from "../../config/address.ts";
import { SHELL_HISTORY_LINES_MAX, SHELL_LINE_CHARS_MAX } from "../../config/limits.ts";
import { UsageError } from "../../config/usage_error.ts";
import { CLIENT_COMMANDS, ClientPool, commandsOverview, commandUsage, runCommand } from "../cli.ts";
import { type ClientCommand, type CommandContext, EXIT_OK, EXIT_USAGE } from "../command.ts";
import { writeFileAtomic } from "../files.ts";
import { LineTooLongError, readLines } from "../lines.ts";
import { ShellHistory } from "../shell_history.ts";
import { ShellSyntaxError, splitWords } from "../shell_words.ts";

export const shell: ClientCommand = {
  name: "shell",
  args: "",
  summary: "Open an interactive prompt: type commands as on the command line, with history.",
  details: "Lines are split as redis-cli splits them: quote values with spaces (\"hello world\" or 'it\\'s'). " +
    "Built-ins: help [COMMAND], connect HOST:PORT, quit. History is kept in ~/.kvstore_history " +
    "($KVSTORE_HISTFILE). With standard input from a file or pipe, runs each line in order.",
  arity: [0, 0],
  async run(context) {
    if (context.inShell) throw new UsageError("Already in a shell");
    const session = new ShellSession(context);
    try {
      return Deno.stdin.isTerminal() ? await session.interactive() : await session.script();
    } finally {
      session.close();
    }
  },
};

/** One shell session: its endpoint, its connections, and what it does with a line. */
class ShellSession {
  #context: CommandContext;
  #endpoint: string;
  #clients = new ClientPool();
  #lastFailure = EXIT_OK;
  /** Interrupts the command running at the prompt, if one is. */
  #running: AbortController | null = null;

  constructor(context: CommandContext) {
    this.#context = context;
    this.#endpoint = context.endpoint;
  }

  /** Standard input is a pipe or a file: run each line, no prompt. */
  async script(): Promise<number> {
    try {
      for await (const line of readLines(Deno.stdin.readable, SHELL_LINE_CHARS_MAX)) {
        const status = await this.execute(line);
        if (status === "quit") break;
      }
    } catch (error) {
      // Input the shell cannot read is a usage error (exit 2), as for import.
      if (error instanceof LineTooLongError) throw new UsageError(`Cannot read standard input: ${error.message}`);
      throw error;
    }
    return this.#lastFailure;
  }

  /** Standard input is a terminal: prompt, edit, remember. */
  async interactive(): Promise<number> {
    const historyPath = historyFile();
    const history = await loadHistory(historyPath);
    const io = this.#context.io;
    io.stdout(`kvstore shell: connected to ${this.#endpoint}. Type help for commands, quit to leave.\n`);
    await this.#checkReachable();
    const rl = readline.createInterface({
      input: process.stdin,
      output: process.stdout,
      terminal: true,
      // readline wants the newest entry first.
      history: [...history.entries].reverse(),
      historySize: SHELL_HISTORY_LINES_MAX,
      removeHistoryDuplicates: false,
      prompt: this.#prompt(),
    });
    rl.on("SIGINT", () => {
      // Ctrl-C interrupts the command running (health --watch, bench, a slow call) and
      // gives the prompt back; with none running it clears the line, as in redis-cli and
      // bash. Ctrl-D leaves.
      io.stdout("^C\n");
      if (this.#running !== null) {
        this.#running.abort();
        return;
      }
      rl.write("", { ctrl: true, name: "u" });
      rl.prompt();
    });
    const lines = rl[Symbol.asyncIterator]();
    try {
      rl.prompt();
      for (;;) {
        const next = await lines.next();
        if (next.done) break;
        const line = next.value as string;
        if (history.add(line) && historyPath !== null) {
          await writeFileAtomic(historyPath, history.toText()).catch(() => {/* History is a convenience. */});
        }
        this.#running = new AbortController();
        let status: number | "quit";
        try {
          status = await this.execute(line, this.#running.signal);
        } finally {
          this.#running = null;
        }
        if (status === "quit") break;
        rl.setPrompt(this.#prompt());
        rl.prompt();
      }
    } finally {
      rl.close();
    }
    return EXIT_OK;
  }

  /** Runs one line; "quit" when the line asks to leave. `signal` interrupts it. */
  async execute(line: string, signal?: AbortSignal): Promise<number | "quit"> {
    const io = this.#context.io;
    let words: string[];
    try {
      words = splitWords(line);
    } catch (error) {
      if (!(error instanceof ShellSyntaxError)) throw error;
      io.stderr(`kvstore shell: ${error.message}\n`);
      return this.#record(EXIT_USAGE);
    }
    if (words.length === 0) return EXIT_OK;
    const [name, ...args] = words;
    const word = name.toLowerCase();
    if (word === "quit" || word === "exit") return "quit";
    if (word === "help" || word === "?") return this.#record(this.#help(args));
    if (word === "connect") return this.#record(await this.#connect(args));
    const command = CLIENT_COMMANDS.get(word);
    if (command === undefined) {
      io.stderr(`kvstore shell: Unknown command ${JSON.stringify(name)} (type help)\n`);
      return this.#record(EXIT_USAGE);
    }
    const status = await runCommand(command, args, {
      io,
      clients: this.#clients,
      endpoint: this.#endpoint,
      timeoutMs: this.#context.timeoutMs,
      inShell: true,
      signal,
    });
    return this.#record(status);
  }

  close(): void {
    this.#clients.close();
  }

  #record(status: number): number {
    if (status !== EXIT_OK) this.#lastFailure = status;
    return status;
  }

  #prompt(): string {
    return `${this.#endpoint}> `;
  }

  #help(args: string[]): number {
    const io = this.#context.io;
    if (args.length === 0) {
      io.stdout(
        `Commands (type them as on the command line, without "kvstore"):\n${commandsOverview()}\n\n` +
          "Shell built-ins:\n  help [COMMAND]     this list, or one command's flags\n" +
          "  connect HOST:PORT  talk to another node\n  quit               leave (or Ctrl-D)\n",
      );
      return EXIT_OK;
    }
    const command = CLIENT_COMMANDS.get(args[0].toLowerCase());
    if (command === undefined) {
      io.stderr(`kvstore shell: Unknown command ${JSON.stringify(args[0])} (type help)\n`);
      return EXIT_USAGE;
    }
    io.stdout(commandUsage(command) + "\n");
    return EXIT_OK;
  }

  async #connect(args: string[]): Promise<number> {
    const io = this.#context.io;
    if (args.length !== 1) {
      io.stderr("kvstore shell: Expected HOST:PORT; usage: connect HOST:PORT\n");
      return EXIT_USAGE;
    }
    try {
      parseAddress(args[0], "HOST:PORT");
    } catch (error) {
      io.stderr(`kvstore shell: ${(error as Error).message}\n`);
      return EXIT_USAGE;
    }
    this.#endpoint = args[0];
    io.stdout(`Connected to ${this.#endpoint}\n`);
    // As at start: say at once when the new endpoint does not answer.
    await this.#checkReachable();
    return EXIT_OK;
  }

  /** Says so at once when the endpoint does not answer, rather than on the first command. */
  async #checkReachable(): Promise<void> {
    try {
      await this.#clients.get(this.#endpoint, Math.min(this.#context.timeoutMs, 2000)).info();
    } catch {
      this.#context.io.stderr(
        `kvstore shell: Cannot reach ${this.#endpoint} yet; commands will fail until it answers (connect HOST:PORT to change)\n`,
      );
    }
  }
}

/** The history file: $KVSTORE_HISTFILE, else ~/.kvstore_history; null when there is no
 * home directory (or KVSTORE_HISTFILE is empty, which turns history off). */
export function historyFile(): string | null {
  const configured = Deno.env.get("KVSTORE_HISTFILE");
  if (configured !== undefined) return configured === "" ? null : configured;
  const home = Deno.env.get("HOME") ?? Deno.env.get("USERPROFILE");
  return home === undefined || home === "" ? null : `${home}/.kvstore_history`;
}

async function loadHistory(path: string | null): Promise<ShellHistory> {
  if (path === null) return new ShellHistory([], SHELL_HISTORY_LINES_MAX);
  try {
    return ShellHistory.parse(await Deno.readTextFile(path), SHELL_HISTORY_LINES_MAX);
  } catch {
    return new ShellHistory([], SHELL_HISTORY_LINES_MAX);
  }
}
