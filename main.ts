/**
 * kvstore's entry point, for `deno run -A main.ts`, the compiled binary and the bundle.
 *
 * `kvstore` with flags (or nothing) runs a node, as the C++ store did; a first argument
 * that is a word rather than a flag names a client or operator subcommand.
 *
 * @module
 */

import { runServer } from "./src/server/run.ts";

/** Runs kvstore with `args` and resolves with the exit status. */
export async function main(args: readonly string[]): Promise<number> {
  const first = args[0];
  if (first !== undefined && !first.startsWith("-")) {
    const message = `kvstore: Unknown command ${JSON.stringify(first)} (see kvstore --help)\n`;
    await Deno.stderr.write(new TextEncoder().encode(message));
    return 2;
  }
  return await runServer(args);
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
