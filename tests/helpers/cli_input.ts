/**
 * Running kvstore under a pseudo-terminal through util-linux `script`, for what only
 * happens on a terminal (the shell's prompt and history). Text on a plain standard input
 * (the shell reading a script, import from "-") is `runKvstore(args, { input })`.
 *
 * @module
 */

import { kvstoreCommand, type RunOptions, runProcess, type RunResult } from "./server_process.ts";

/** How long the terminal runner waits before each typed line, in ms. */
const TYPED_LINE_PAUSE_MS = 400;

/** Whether util-linux `script` is here to give a child a pseudo-terminal. */
export function hasScript(): boolean {
  try {
    return new Deno.Command("script", { args: ["--version"], stdout: "null", stderr: "null" }).outputSync().success;
  } catch {
    return false;
  }
}

/** Runs kvstore on a pseudo-terminal, typing `input` a line at a time; stdout carries the
 * terminal's output (with the echo of what was typed). */
export function runKvstoreOnTerminal(
  args: readonly string[],
  input: string,
  options: Omit<RunOptions, "input" | "linePauseMs"> = {},
): Promise<RunResult> {
  const { command, args: fullArgs } = kvstoreCommand(args);
  const line = [command, ...fullArgs].map((word) => `'${word.replaceAll("'", "'\\''")}'`).join(" ");
  return runProcess("script", ["--quiet", "--return", "--command", line, "/dev/null"], {
    ...options,
    input,
    linePauseMs: TYPED_LINE_PAUSE_MS,
  });
}

/**
 * kvstore on a pseudo-terminal that a test types into as it reads the screen: for what
 * depends on when a key is pressed (Ctrl-C while a command runs). Every wait is bounded;
 * the process is killed on dispose.
 */
export class TerminalSession implements AsyncDisposable {
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #encoder = new TextEncoder();
  #output = "";
  readonly exited: Promise<Deno.CommandStatus>;

  constructor(args: readonly string[], options: { env?: Record<string, string> } = {}) {
    const { command, args: fullArgs } = kvstoreCommand(args);
    const line = [command, ...fullArgs].map((word) => `'${word.replaceAll("'", "'\\''")}'`).join(" ");
    const child = new Deno.Command("script", {
      args: ["--quiet", "--return", "--command", line, "/dev/null"],
      env: { NO_COLOR: "1", ...options.env },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#child = child;
    this.#writer = child.stdin.getWriter();
    this.exited = child.status;
    void (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of child.stdout) this.#output += decoder.decode(chunk, { stream: true });
    })();
    void child.stderr.cancel();
  }

  /** Everything the terminal showed so far. */
  get output(): string {
    return this.#output;
  }

  /** Types `text` (a line with its "\n", or a control key such as "\x03" for Ctrl-C). */
  async type(text: string): Promise<void> {
    await this.#writer.write(this.#encoder.encode(text));
  }

  /** Resolves once the screen shows `pattern` after `from` characters of output;
   * rejects after `timeoutMs` with what it showed. */
  async waitFor(pattern: RegExp, options: { from?: number; timeoutMs?: number } = {}): Promise<void> {
    const deadline = Date.now() + (options.timeoutMs ?? 20_000);
    while (!pattern.test(this.#output.slice(options.from ?? 0))) {
      if (Date.now() > deadline) throw new Error(`The terminal never showed ${pattern}; it showed:\n${this.#output}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      await this.#writer.close();
    } catch {
      // The process is gone.
    }
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
    await this.exited;
  }
}
