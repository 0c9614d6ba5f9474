/**
 * Many keys at once: mget, mset and scan.
 *
 * @module
 */

import { SCAN_PAGE_KEYS_MAX } from "../../config/limits.ts";
import { UsageError } from "../../config/usage_error.ts";
import { type ClientCommand, EXIT_OK } from "../command.ts";
import { ttlFlag } from "./keys.ts";

export const mget: ClientCommand = {
  name: "mget",
  args: "KEY [KEY...]",
  summary: "Print the value of each key, one per line (an empty line where a key does not exist).",
  arity: [1, Infinity],
  async run(context) {
    const keys = context.positionals;
    const values = await context.client().mget(keys);
    if (context.json) {
      context.print(keys.map((key, i) => ({ key, found: values[i] !== undefined, value: values[i] ?? null })));
    } else {
      for (const value of values) context.print(value ?? "");
    }
    return EXIT_OK;
  },
};

export const mset: ClientCommand = {
  name: "mset",
  args: "KEY VALUE [KEY VALUE...]",
  summary: "Set several keys in one all-or-nothing write, optionally all with one TTL.",
  arity: [2, Infinity],
  flags: [{ name: "ttl", type: "string", valueName: "SECONDS", help: "Expire every key after SECONDS" }],
  async run(context) {
    const args = context.positionals;
    if (args.length % 2 !== 0) throw new UsageError(`Expected KEY VALUE pairs, got ${args.length} arguments`);
    const ttlSeconds = ttlFlag(context);
    const entries = [];
    for (let i = 0; i < args.length; i += 2) {
      entries.push({
        key: args[i],
        value: args[i + 1],
        ttlMs: ttlSeconds === undefined ? undefined : ttlSeconds * 1000,
      });
    }
    const count = await context.client().mset(entries);
    context.print(context.json ? { ok: true, count } : "OK");
    return EXIT_OK;
  },
};

export const scan: ClientCommand = {
  name: "scan",
  args: "",
  summary: "List keys (with --prefix, those starting with it), page by page. --json prints one object per line.",
  arity: [0, 0],
  flags: [
    { name: "prefix", type: "string", valueName: "PREFIX", help: "Only keys starting with PREFIX" },
    { name: "values", type: "boolean", help: "Print each key's value (and deadline, with --json) too" },
    {
      name: "page-size",
      type: "string",
      valueName: "N",
      help: `Keys per call (1-${SCAN_PAGE_KEYS_MAX}, default 1000)`,
    },
  ],
  async run(context) {
    const pageText = context.flags["page-size"] as string | undefined;
    const pageSize = pageText === undefined ? 1000 : Number(pageText);
    if (!Number.isSafeInteger(pageSize) || pageSize < 1 || pageSize > SCAN_PAGE_KEYS_MAX) {
      throw new UsageError(`Invalid --page-size ${JSON.stringify(pageText)}: expected 1 to ${SCAN_PAGE_KEYS_MAX}`);
    }
    const includeValues = context.flags.values === true;
    const prefix = (context.flags.prefix as string | undefined) ?? "";
    for await (const entry of context.client().scanAll({ prefix, pageSize, includeValues })) {
      if (context.json) {
        context.print(includeValues ? entry : { key: entry.key });
      } else {
        context.print(includeValues ? `${entry.key}\t${entry.value}` : entry.key);
      }
    }
    return EXIT_OK;
  },
};
