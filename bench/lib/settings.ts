/**
 * The flags every load benchmark shares: how long, how many rounds, how many clients
 * and calls in flight, how big the values, how many keys.
 *
 * @module
 */

import { parseArgs } from "node:util";

export interface LoadSettings {
  readonly durationMs: number;
  readonly rounds: number;
  readonly connections: number;
  readonly concurrency: number;
  readonly valueBytes: number;
  readonly keySpace: number;
}

const FLAG_NAMES = {
  durationMs: "duration-ms",
  rounds: "rounds",
  connections: "connections",
  concurrency: "concurrency",
  valueBytes: "value-bytes",
  keySpace: "key-space",
} as const;

/** Parses `args` for the shared flags (defaults as given) and any `extra` string flags,
 * whose values come back by name. */
export function parseLoadSettings<Extra extends string = never>(
  args: readonly string[],
  defaults: LoadSettings,
  extra: Readonly<Record<Extra, string>> = {} as Record<Extra, string>,
): { settings: LoadSettings; extra: Record<Extra, string> } {
  const options: Record<string, { type: "string"; default: string }> = {};
  for (const [field, flag] of Object.entries(FLAG_NAMES)) {
    options[flag] = { type: "string", default: String(defaults[field as keyof LoadSettings]) };
  }
  for (const [flag, fallback] of Object.entries(extra) as [string, string][]) {
    options[flag] = { type: "string", default: fallback };
  }
  const { values } = parseArgs({ args: [...args], options, strict: true });
  const number = (flag: string) => {
    const value = Number(values[flag]);
    if (!Number.isFinite(value) || value < 0) {
      throw new Error(`bench: Invalid --${flag} ${JSON.stringify(values[flag])}`);
    }
    return value;
  };
  const settings = Object.fromEntries(
    Object.entries(FLAG_NAMES).map(([field, flag]) => [field, number(flag)]),
  ) as unknown as LoadSettings;
  const extraValues = Object.fromEntries(Object.keys(extra).map((flag) => [flag, values[flag] as string]));
  return { settings, extra: extraValues as Record<Extra, string> };
}
