/**
 * Parsers for flag values: sizes, counts, durations and choices. Each refuses a bad
 * value with a message naming the flag, the value and what would be accepted.
 *
 * @module
 */

import { UsageError } from "./usage_error.ts";

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
};

/** Parses a byte size: a whole number with an optional unit (k, kb, kib, m, mb, mib, g,
 * gb, gib; all powers of 1024). */
export function parseByteSize(text: string, flag: string, min: number, max: number): number {
  const match = /^\s*([0-9]+)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = match ? SIZE_UNITS[match[2].toLowerCase()] : undefined;
  if (!match || unit === undefined) {
    throw new UsageError(`Invalid ${flag} ${JSON.stringify(text)}: expected a size such as 1048576, 512kb or 16mb`);
  }
  const bytes = Number(match[1]) * unit;
  if (!Number.isSafeInteger(bytes) || bytes < min || bytes > max) {
    const inUnits = min % 1024 === 0 || max % 1024 === 0 ? ` (${sizeText(min)} to ${sizeText(max)})` : "";
    throw new UsageError(`Invalid ${flag} ${JSON.stringify(text)}: must be from ${min} to ${max} bytes${inUnits}`);
  }
  return bytes;
}

/** A size as the flags take it, in the largest unit that holds it exactly: 16kb, 512mb,
 * 1 byte. */
export function sizeText(bytes: number): string {
  for (const [unit, size] of [["gb", 1024 ** 3], ["mb", 1024 ** 2], ["kb", 1024]] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return bytes === 1 ? "1 byte" : `${bytes} bytes`;
}

/** Parses a whole number within [min, max]. */
export function parseInteger(text: string, flag: string, min: number, max: number): number {
  if (!/^\s*-?[0-9]+\s*$/.test(text)) {
    throw new UsageError(`Invalid ${flag} ${JSON.stringify(text)}: expected a whole number`);
  }
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new UsageError(`Invalid ${flag} ${JSON.stringify(text)}: must be from ${min} to ${max}`);
  }
  return value;
}

/** Parses one of a fixed set of words. */
export function parseChoice<T extends string>(text: string, flag: string, choices: readonly T[]): T {
  if ((choices as readonly string[]).includes(text)) return text as T;
  throw new UsageError(`Invalid ${flag} ${JSON.stringify(text)}: expected one of ${choices.join(", ")}`);
}
