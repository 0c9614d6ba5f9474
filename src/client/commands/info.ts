/**
 * `kvstore info [SECTION...]`: what the node (or router) says about itself, in sections
 * for people or as JSON. The text shows the sections and fields relevant to the role
 * that answered (see info_format.ts); the JSON has every field. As with redis-cli's
 * `INFO replication`, naming sections keeps only those.
 *
 * @module
 */

import { UsageError } from "../../config/usage_error.ts";
import { int64SchemaOf } from "../../transport/proto.ts";
import { type ClientCommand, EXIT_OK } from "../command.ts";
import { formatInfo, INFO_SECTIONS, infoJson, infoSections } from "../info_format.ts";

export const info: ClientCommand = {
  name: "info",
  args: "[SECTION...]",
  summary: "Show the node's role, version, uptime, keys, memory, clients, persistence and replication state.",
  details: "Sizes, durations and times are shown raw and, in parentheses, for people; only what is relevant " +
    "to the node is shown (a router: its process, clients, the cluster's keys and its shards, as kvstore cluster " +
    "status prints them). --json prints every field as the Info rpc names it, 64-bit integers as numbers. " +
    `SECTION keeps only that section: ${INFO_SECTIONS.join(", ")}.`,
  arity: [0, Infinity],
  async run(context) {
    const sections = parseSections(context.positionals);
    const response = await context.client().info() as unknown as Record<string, unknown>;
    if (context.json) {
      const json = infoJson(response, int64SchemaOf("InfoResponse"));
      context.print(sections === undefined ? json : infoSections(json, sections));
      return EXIT_OK;
    }
    for (const line of formatInfo(response, Date.now(), sections)) context.print(line);
    for (const section of sections ?? []) {
      if (!formatInfo(response, 0, new Set([section])).length) {
        context.warn(`kvstore info: A ${response.role} has no ${section} section`);
      }
    }
    return EXIT_OK;
  },
};

/** The sections asked for, in lower case; undefined for all. */
function parseSections(names: readonly string[]): ReadonlySet<string> | undefined {
  if (names.length === 0) return undefined;
  const sections = new Set<string>();
  for (const name of names) {
    const section = name.toLowerCase();
    if (!INFO_SECTIONS.includes(section)) {
      throw new UsageError(`Unknown section ${JSON.stringify(name)}: expected ${INFO_SECTIONS.join(", ")}`);
    }
    sections.add(section);
  }
  return sections;
}
