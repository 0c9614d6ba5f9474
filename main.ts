/**
 * kvstore's entry point, for `deno run -A main.ts`, the compiled binary and the bundle.
 *
 * `kvstore` with flags (or nothing) runs a node, as the C++ store did; a first argument
 * that is a word rather than a flag names a client or operator subcommand.
 *
 * @module
 */

import { CLIENT_COMMANDS, commandsOverview, runClientCommand } from "./src/client/cli.ts";
import { runRouter } from "./src/cluster/run_router.ts";
import { serverUsage } from "./src/config/server_flags.ts";
import { printText, runServer } from "./src/server/run.ts";
import { VERSION } from "./src/version.ts";

const encoder = new TextEncoder();

const ROUTER_OVERVIEW = "Cluster:\n  router  Run a router in front of sharded masters (kvstore router --help)";

/** Runs kvstore with `args` and resolves with the exit status. */
export async function main(args: readonly string[]): Promise<number> {
  const first = args[0];
  if (first === "help" || (args.length === 1 && (first === "--help" || first === "-h"))) {
    return await printText(
      `${serverUsage()}\n\nSubcommands:\n${commandsOverview()}\n\n${ROUTER_OVERVIEW}\n`,
      "kvstore",
    );
  }
  if (first === "--version" || first === "version") {
    return await printText(`kvstore ${VERSION} (deno ${Deno.version.deno})\n`, "kvstore");
  }
  // A router is a server mode of its own: one address in front of a sharded cluster.
  if (first === "router") return await runRouter(args.slice(1));
  if (first !== undefined && !first.startsWith("-")) {
    if (!CLIENT_COMMANDS.has(first)) {
      await Deno.stderr.write(encoder.encode(`kvstore: Unknown command ${JSON.stringify(first)} (see kvstore help)\n`));
      return 2;
    }
    return await runClientCommand(args);
  }
  return await runServer(args);
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
