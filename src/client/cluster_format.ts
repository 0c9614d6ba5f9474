/**
 * A router's cluster for people: the text of `kvstore cluster status`, also the Cluster
 * section of `kvstore info` against a router, so both read the same:
 *
 * ```
 * 3 shards, 512 vnodes per shard, epoch 1, stable
 * SHARD           MASTER          STATE    KEYS  RING   REPLICAS
 * 127.0.0.1:7101  127.0.0.1:7101  serving  1     31.3%  -
 * 127.0.0.1:7102  127.0.0.1:7102  serving  1     33.4%  -
 * 127.0.0.1:7103  127.0.0.1:7103  serving  down  35.2%  -
 * 127.0.0.1:7103: router: Cannot reach shard "127.0.0.1:7103" ...
 * ```
 *
 * A shard that did not answer shows `down` (or `loading`, when it answered that it is
 * loading its dataset) for its keys, then one line with the reason; a rebalancing under
 * way ends the text with its progress ({@linkcode describeProgress}).
 *
 * Pure: it formats decoded messages (int64 fields as decimal strings or numbers).
 *
 * @module
 */

import { isLoadingRefusal, plural } from "../errors.ts";
import type { ClusterStatusResponse, MigrationStatus } from "../transport/messages.ts";

/** The cluster's status as lines: a summary, a table of shards, why shards are down, and
 * the rebalancing under way. */
export function formatClusterStatus(status: ClusterStatusResponse): string[] {
  const lines = [
    `${plural(status.shards.length, "shard")}, ${plural(status.vnodes, "vnode")} per shard, epoch ${status.epoch}` +
    (status.migration === null ? ", stable" : ""),
  ];
  const rows = [["SHARD", "MASTER", "STATE", "KEYS", "RING", "REPLICAS"]];
  for (const shard of status.shards) {
    rows.push([
      shard.name,
      shard.master,
      shard.state,
      shard.reachable ? String(shard.keys) : isLoadingRefusal(shard.error) ? "loading" : "down",
      `${(shard.ring_share * 100).toFixed(1)}%`,
      shard.replicas.length === 0 ? "-" : shard.replicas.join(","),
    ]);
  }
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)));
  for (const row of rows) lines.push(row.map((cell, i) => cell.padEnd(widths[i])).join("  ").trimEnd());
  for (const shard of status.shards) {
    if (!shard.reachable) lines.push(`${shard.name}: ${shard.error}`);
  }
  if (status.migration !== null) lines.push(describeProgress(status.migration));
  return lines;
}

/** One line: what moves where and how far it has got. */
export function describeProgress(status: MigrationStatus): string {
  const moved = Number(status.keys_moved);
  const toMove = Number(status.keys_to_move);
  const percent = toMove > 0 ? ` (${Math.min(100, Math.round((100 * moved) / toMove))}%)` : "";
  const what = `${status.kind === "add" ? "adding" : "removing"} shard ${JSON.stringify(status.shard)}`;
  const counts = `${moved} of about ${plural(toMove, "key")} moved${percent}, ` +
    `${status.keys_scanned} of ${status.keys_to_scan} scanned`;
  if (status.state === "waiting") return `${what}: waiting (${status.error}); ${counts}`;
  if (status.state === "moving" && moved === 0 && Number(status.keys_to_scan) === 0) return `${what}: starting`;
  if (status.state === "done") return `${what}: done; ${plural(moved, "key")} moved`;
  return `${what}: ${counts}`;
}
