/**
 * Running kvstore with text on its standard input (the shell reading a script, import
 * from "-"), and under a pseudo-terminal through util-linux `script`, for what only
 * happens on a terminal (the shell's prompt and history).
 *
 * @module
 */

import { kvstoreCommand, PROCESS_EXIT_TIMEOUT_MS, type RunResult } from "./server_process.ts";

/** Runs kvstore with `input` on stdin and returns its output. */
export async function runKvstoreWithInput(
  args: readonly string[],
  input: string | Uint8Array,
  options: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<RunResult> {
  const { command, args: fullArgs } = kvstoreCommand(args);
  return await runWithInput(command, fullArgs, input, options);
}

/** Whether util-linux `script` is here to give a child a pseudo-terminal. */
export function hasScript(): boolean {
  try {
    return new Deno.Command("script", { args: ["--version"], stdout: "null", stderr: "null" }).outputSync().success;
  } catch {
    return false;
  }
}

/** Runs kvstore on a pseudo-terminal, typing `input`; stdout carries the terminal's
 * output (with the echo of what was typed). */
export async function runKvstoreOnTerminal(
  args: readonly string[],
  input: string,
  options: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<RunResult> {
  const { command, args: fullArgs } = kvstoreCommand(args);
  const line = [command, ...fullArgs].map((word) => `'${word.replaceAll("'", "'\\''")}'`).join(" ");
  return await runWithInput("script", ["--quiet", "--return", "--command", line, "/dev/null"], input, options, true);
}

async function runWithInput(
  command: string,
  args: string[],
  input: string | Uint8Array,
  options: { env?: Record<string, string>; timeoutMs?: number },
  slowly = false,
): Promise<RunResult> {
  const started = performance.now();
  const child = new Deno.Command(command, {
    args,
    env: { NO_COLOR: "1", ...options.env },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  }, options.timeoutMs ?? PROCESS_EXIT_TIMEOUT_MS);
  try {
    const writer = child.stdin.getWriter();
    const bytes = typeof input === "string" ? new TextEncoder().encode(input) : input;
    if (slowly) {
      // A terminal gets one typed line at a time; give the program a moment per line.
      for (const typed of new TextDecoder().decode(bytes).split(/(?<=\n)/)) {
        await new Promise((resolve) => setTimeout(resolve, 400));
        await writer.write(new TextEncoder().encode(typed));
      }
      await new Promise((resolve) => setTimeout(resolve, 400));
    } else {
      await writer.write(bytes);
    }
    await writer.close().catch(() => {});
    const output = await child.output();
    const decoder = new TextDecoder();
    return {
      code: output.code,
      stdout: decoder.decode(output.stdout),
      stderr: decoder.decode(output.stderr),
      elapsedMs: performance.now() - started,
    };
  } finally {
    clearTimeout(timer);
  }
}
