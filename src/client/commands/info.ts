/**
 * `kvstore info`: what the node says about itself, in sections for people or as JSON.
 *
 * @module
 */

import { int64SchemaOf } from "../../transport/proto.ts";
import { type ClientCommand, EXIT_OK } from "../command.ts";
import { formatInfo, infoJson } from "../info_format.ts";

export const info: ClientCommand = {
  name: "info",
  args: "",
  summary: "Show the node's role, version, uptime, keys, memory, clients and replication state.",
  details: "Sizes, durations and times are shown raw and, in parentheses, for people. --json prints the\n" +
    "fields as the Info rpc names them, 64-bit integers as numbers.",
  arity: [0, 0],
  async run(context) {
    const response = await context.client().info() as unknown as Record<string, unknown>;
    if (context.json) {
      context.print(infoJson(response, int64SchemaOf("InfoResponse")));
      return EXIT_OK;
    }
    for (const line of formatInfo(response, Date.now())) context.print(line);
    return EXIT_OK;
  },
};
