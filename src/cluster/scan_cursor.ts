/**
 * The cursor of a scan across shards, as the router (and the sharded client) hand it
 * out: which shard the scan is on, and that shard's own cursor.
 *
 *   c1.<epoch>.<index>.<shard cursor>        e.g.  c1.7.2.3f9a1c2e.41
 *
 * - `c1` names the format (version 1).
 * - `epoch` is the cluster membership's epoch when the cursor was handed out; the shard
 *   order `index` counts in is that membership's. If the membership has changed since,
 *   the router carries the position into the new order where no key can be missed (see
 *   carryScanPosition in topology.ts), and refuses the cursor otherwise.
 * - `index` is the position of the shard in the scan order (Topology.scanOrder).
 * - the rest, which may hold dots, is the shard's cursor; empty means the scan starts
 *   that shard from the beginning.
 *
 * Clients treat the cursor as opaque; "" starts a scan and "" back means it is complete.
 *
 * @module
 */

import { invalidArgument, quote } from "../errors.ts";

export interface ClusterCursor {
  readonly epoch: number;
  readonly index: number;
  readonly shardCursor: string;
}

const PATTERN = /^c1\.([0-9]{1,15})\.([0-9]{1,6})\.(.*)$/s;

export function encodeClusterCursor(cursor: ClusterCursor): string {
  return `c1.${cursor.epoch}.${cursor.index}.${cursor.shardCursor}`;
}

/** Reads a cursor; refuses text that is not one with INVALID_ARGUMENT. */
export function decodeClusterCursor(text: string): ClusterCursor {
  const match = PATTERN.exec(text);
  if (match === null) {
    throw invalidArgument(
      `scan: Cursor ${quote(text)} is not a cluster scan cursor; start again with an empty cursor`,
    );
  }
  return { epoch: Number(match[1]), index: Number(match[2]), shardCursor: match[3] };
}
