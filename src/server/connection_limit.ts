/**
 * How many client connections a node (or a router) keeps open at once: --max-connections,
 * lowered to fit the process's open-file limit.
 *
 * A node that runs out of file descriptors while accepting is worse than one that refuses
 * connections: on Deno 2.9.3, node:net's accept loop stops for good at the first EMFILE,
 * and the node stays up but never accepts another connection. So the connection limit is
 * kept FDS_RESERVED below the open-file limit (Deno raises the soft limit to the hard one
 * at start-up; a router keeps more, for its links to the shards), and grpc-js's listeners
 * close every connection past it at once.
 *
 * @module
 */

import { FDS_RESERVED } from "../config/limits.ts";

/** The connection limit to apply, and whether the open-file limit lowered it. */
export interface ConnectionsLimit {
  readonly connectionsMax: number;
  /** The open-file limit that lowered `connectionsMax` below what was asked; null when
   * nothing did. */
  readonly loweredBy: number | null;
}

/** The limit for `requested` connections with `openFiles` descriptors (null: unknown, as
 * on systems without /proc), `fdsReserved` of them kept for everything but client
 * connections. At least one connection is always allowed. */
export function connectionsLimit(
  requested: number,
  openFiles: number | null,
  fdsReserved = FDS_RESERVED,
): ConnectionsLimit {
  if (openFiles === null || requested <= openFiles - fdsReserved) {
    return { connectionsMax: requested, loweredBy: null };
  }
  return { connectionsMax: Math.max(1, openFiles - fdsReserved), loweredBy: openFiles };
}

/** The soft "Max open files" of a /proc/PID/limits text, or null when it has none or it
 * is unlimited. */
export function parseOpenFilesLimit(limitsText: string): number | null {
  const match = /^Max open files\s+(\d+|unlimited)\s/m.exec(limitsText);
  if (match === null || match[1] === "unlimited") return null;
  return Number(match[1]);
}

/** This process's open-file limit, from /proc (Linux); null where it cannot be read. */
export function openFilesLimit(): number | null {
  try {
    return parseOpenFilesLimit(Deno.readTextFileSync("/proc/self/limits"));
  } catch {
    return null;
  }
}
