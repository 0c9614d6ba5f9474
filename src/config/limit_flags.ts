/**
 * The flags that bound what a client may send (--max-key-bytes, --max-value-bytes,
 * --max-ttl-seconds) and how many connections are kept (--max-connections), shared by a
 * node and a router: a router checks requests against the same limits as its shards, so
 * the two must parse them alike.
 *
 * @module
 */

import type { DataLimits } from "../store/validation.ts";
import {
  CONNECTIONS_MAX_DEFAULT,
  KEY_BYTES_MAX_DEFAULT,
  TTL_SECONDS_MAX_DEFAULT,
  VALUE_BYTES_MAX_CEILING,
  VALUE_BYTES_MAX_DEFAULT,
} from "./limits.ts";
import type { FlagSpec } from "./server_flags.ts";
import { parseByteSize, parseInteger } from "./values.ts";

/** The data limits' flags; `helpNote` follows each description (a router's asks that
 * they match the shards'). */
export function dataLimitFlags(helpNote = ""): FlagSpec[] {
  const note = helpNote === "" ? "" : ` ${helpNote}`;
  return [
    {
      name: "max-key-bytes",
      type: "string",
      valueName: "BYTES",
      help: `Largest key accepted.${note}`,
      defaultText: "64kb",
    },
    {
      name: "max-value-bytes",
      type: "string",
      valueName: "BYTES",
      help: `Largest value accepted.${note}`,
      defaultText: "16mb",
    },
    {
      name: "max-ttl-seconds",
      type: "string",
      valueName: "SECONDS",
      help: `Longest TTL an EXPIRE, or a SET with a TTL (MSet), may set.${note}`,
      defaultText: `${TTL_SECONDS_MAX_DEFAULT} (10 years)`,
    },
  ];
}

export const MAX_CONNECTIONS_FLAG: FlagSpec = {
  name: "max-connections",
  type: "string",
  valueName: "N",
  help: "Client connections open at once; more are closed at once (lowered to fit the open-file limit).",
  defaultText: String(CONNECTIONS_MAX_DEFAULT),
};

/** The data limits from their settings (`text` gives a setting's value, if set). */
export function parseDataLimits(text: (name: string) => string | undefined): DataLimits {
  return {
    keyBytesMax: parseByteSize(text("max-key-bytes") ?? String(KEY_BYTES_MAX_DEFAULT), "--max-key-bytes", 1, 1024 ** 2),
    valueBytesMax: parseByteSize(
      text("max-value-bytes") ?? String(VALUE_BYTES_MAX_DEFAULT),
      "--max-value-bytes",
      // 1, not 0: a limit of 0 bytes would refuse every value but the empty one.
      1,
      VALUE_BYTES_MAX_CEILING,
    ),
    ttlSecondsMax: parseInteger(
      text("max-ttl-seconds") ?? String(TTL_SECONDS_MAX_DEFAULT),
      "--max-ttl-seconds",
      1,
      2 ** 31 - 1,
    ),
  };
}

/** --max-connections from its setting. */
export function parseConnectionsMax(text: string | undefined): number {
  return parseInteger(text ?? String(CONNECTIONS_MAX_DEFAULT), "--max-connections", 1, 1_000_000);
}
