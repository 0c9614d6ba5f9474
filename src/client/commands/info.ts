/**
 * `kvstore info`: what the node (or router) says about itself, in sections for people or
 * as JSON. The text shows the sections and fields relevant to the role that answered
 * (see info_format.ts); the JSON has every field.
 *
 * @module
 */

import { int64SchemaOf } from "../../transport/proto.ts";
import { type ClientCommand, EXIT_OK } from "../command.ts";
import { formatInfo, infoJson } from "../info_format.ts";

export const info: ClientCommand = {
  name: "info",
  args: "",
  summary: "Show the node's role, version, uptime, keys, memory, clients, persistence and replication state.",
  details: "Sizes, durations and times are shown raw and, in parentheses, for people; only what is relevant\n" +
    "to the node is shown (a router: its process, clients, the cluster's keys and its shards, as\n" +
    "kvstore cluster status prints them). --json prints every field as the Info rpc names it, 64-bit\n" +
    "integers as numbers.",
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
