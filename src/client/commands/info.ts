/**
 * `kvstore info`: what the node says about itself, as `field: value` lines or JSON.
 *
 * @module
 */

import { type ClientCommand, EXIT_OK } from "../command.ts";

export const info: ClientCommand = {
  name: "info",
  args: "",
  summary: "Show the node's role, version, uptime, keys, memory and replication state.",
  arity: [0, 0],
  async run(context) {
    const response = await context.client().info();
    if (context.json) {
      context.print(response);
      return EXIT_OK;
    }
    const width = Math.max(...Object.keys(response).map((field) => field.length));
    for (const [field, value] of Object.entries(response)) {
      // Message fields a node leaves unset (a router's `cluster`) decode as null.
      if (value === null || value === undefined) continue;
      context.print(`${field.padEnd(width)}  ${typeof value === "object" ? JSON.stringify(value) : value}`);
    }
    return EXIT_OK;
  },
};
