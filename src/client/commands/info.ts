/**
 * `kvstore info`: what the node says about itself, as `field  value` lines or JSON.
 *
 * Lists of records (a master's replicas) follow the plain fields, one line per record
 * with its fields as `name=value`, so a person can read them and `grep` can find them.
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
    for (const line of formatInfo(response as unknown as Record<string, unknown>)) context.print(line);
    return EXIT_OK;
  },
};

/** The lines `kvstore info` prints: plain fields first, in the server's order, then each
 * list, its records one per line. */
export function formatInfo(response: Record<string, unknown>): string[] {
  const fields = Object.entries(response);
  const plain = fields.filter(([, value]) => !Array.isArray(value));
  const lists = fields.filter(([, value]) => Array.isArray(value)) as [string, unknown[]][];
  const labels = [
    ...plain.map(([field]) => field),
    ...lists.flatMap(([field, items]) => [field, ...items.map((_, i) => `${field}[${i}]`)]),
  ];
  const width = Math.max(0, ...labels.map((label) => label.length));
  const lines = plain.map(([field, value]) => `${field.padEnd(width)}  ${formatValue(value)}`);
  for (const [field, items] of lists) {
    lines.push(`${field.padEnd(width)}  ${items.length === 0 ? "(none)" : items.length}`);
    items.forEach((item, i) => lines.push(`${`${field}[${i}]`.padEnd(width)}  ${formatValue(item)}`));
  }
  return lines;
}

function formatValue(value: unknown): string {
  if (value === null || typeof value !== "object") return String(value);
  return Object.entries(value as Record<string, unknown>)
    .map(([key, inner]) => `${key}=${typeof inner === "object" && inner !== null ? JSON.stringify(inner) : inner}`)
    .join(" ");
}
