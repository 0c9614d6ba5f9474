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
