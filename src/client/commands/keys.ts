/**
 * Key commands: get, set, del, exists, expire, ttl. Plain output follows redis-cli's
 * raw mode (values as they are, integers as digits); --json prints one object.
 *
 * @module
 */

import { CLI_KEY_CALLS_IN_FLIGHT_MAX } from "../../config/limits.ts";
import { UsageError } from "../../config/usage_error.ts";
import { INT32_MAX, INT32_MIN } from "../client.ts";
import { type ClientCommand, type CommandContext, EXIT_NOT_FOUND, EXIT_OK } from "../command.ts";

export const get: ClientCommand = {
  name: "get",
  args: "KEY",
  summary: "Print the value of KEY; exit 1 if it does not exist.",
  arity: [1, 1],
  async run(context) {
    const [key] = context.positionals;
    const value = await context.client().get(key);
    if (context.json) context.print({ key, found: value !== undefined, value: value ?? null });
    else if (value !== undefined) context.print(value);
    else context.warn(`kvstore get: Key ${JSON.stringify(key)} not found`);
    return value === undefined ? EXIT_NOT_FOUND : EXIT_OK;
  },
};

export const set: ClientCommand = {
  name: "set",
  args: "KEY VALUE",
  summary: "Set KEY to VALUE (clearing any TTL), or with --ttl give it one.",
  arity: [2, 2],
  flags: [{ name: "ttl", type: "string", valueName: "SECONDS", help: "Expire the key after SECONDS" }],
  async run(context) {
    const [key, value] = context.positionals;
    const ttl = ttlFlag(context);
    // With a TTL the value and its deadline travel in one write (MSet), so no reader
    // ever sees the key without its deadline.
    await context.client().set(key, value, { ttlMs: ttl === undefined ? undefined : ttl * 1000 });
    context.print(context.json ? { key, ok: true, ttl: ttl ?? null } : "OK");
    return EXIT_OK;
  },
};

/** The seconds of `--ttl` (set, mset), or undefined when it is not given. */
export function ttlFlag(context: CommandContext): number | undefined {
  const text = context.flags.ttl as string | undefined;
  if (text === undefined) return undefined;
  const seconds = Number(text);
  if (!Number.isSafeInteger(seconds) || seconds <= 0) {
    throw new UsageError(`Invalid --ttl ${JSON.stringify(text)}: expected a positive whole number of seconds`);
  }
  return seconds;
}

export const del: ClientCommand = {
  name: "del",
  args: "KEY [KEY...]",
  summary: "Delete keys; print how many existed.",
  arity: [1, Infinity],
  async run(context) {
    const client = context.client();
    const found = await mapInFlight(context.positionals, CLI_KEY_CALLS_IN_FLIGHT_MAX, (key) => client.delete(key));
    const deleted = found.filter(Boolean).length;
    context.print(context.json ? { deleted } : String(deleted));
    return EXIT_OK;
  },
};

export const exists: ClientCommand = {
  name: "exists",
  args: "KEY [KEY...]",
  summary: "Print how many of the keys exist.",
  arity: [1, Infinity],
  async run(context) {
    const client = context.client();
    const found = await mapInFlight(context.positionals, CLI_KEY_CALLS_IN_FLIGHT_MAX, (key) => client.contains(key));
    const count = found.filter(Boolean).length;
    context.print(context.json ? { exists: count } : String(count));
    return EXIT_OK;
  },
};

export const expire: ClientCommand = {
  name: "expire",
  args: "KEY SECONDS",
  summary: "Give KEY a TTL (0 or less deletes it); print 1 if the key existed, else 0.",
  arity: [2, 2],
  async run(context) {
    const [key, secondsText] = context.positionals;
    const seconds = Number(secondsText);
    // Expire carries int32 seconds: a larger number would reach the server as another one.
    if (!/^-?[0-9]+$/.test(secondsText) || !(seconds >= INT32_MIN && seconds <= INT32_MAX)) {
      throw new UsageError(
        `Invalid SECONDS ${JSON.stringify(secondsText)}: expected a whole number from ${INT32_MIN} to ${INT32_MAX}`,
      );
    }
    const existed = await context.client().expire(key, seconds);
    context.print(context.json ? { key, success: existed } : existed ? "1" : "0");
    return EXIT_OK;
  },
};

export const ttl: ClientCommand = {
  name: "ttl",
  args: "KEY",
  summary: "Print the seconds KEY has left: -1 if it has no TTL, -2 if it does not exist.",
  arity: [1, 1],
  async run(context) {
    const [key] = context.positionals;
    const seconds = await context.client().ttl(key);
    context.print(context.json ? { key, ttl: seconds } : String(seconds));
    return EXIT_OK;
  },
};

/** `work` applied to every item with at most `inFlightMax` calls running at once; the
 * results in the items' order. The first failure rejects (calls already started go on). */
export async function mapInFlight<T, R>(
  items: readonly T[],
  inFlightMax: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlightMax, items.length) }, worker));
  return results;
}
