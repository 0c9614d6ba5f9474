/**
 * `kvstore info` for people: the Info response in sections, like redis-cli's INFO, each
 * field under its wire name (so it maps one to one onto `--json`), with sizes, durations
 * and times also written the way a person reads them:
 *
 * ```
 * # Server
 * role             master
 * uptime_ms        65012 (1m 05s)
 * # Memory
 * dataset_bytes    1234567 (1.2 MiB)
 * ```
 *
 * As redis-cli's INFO does, the text shows what is relevant to the node that answered;
 * `--json` keeps every field, so scripts see one shape whatever the role:
 *
 * - A master leaves out the fields of a replica's link to its master, and a replica the
 *   list of replicas only a master serves.
 * - A router (role "router") keeps no data files and no history: it has no Persistence
 *   and no Replication section. Its keyspace figures are the sums over its shards (and
 *   say so when a shard did not answer), and its Cluster section is the text of
 *   `kvstore cluster status` ({@linkcode formatClusterStatus}).
 * - Figures that describe nothing leave with what they would describe: the previous
 *   history's seq when there is none, a snapshot's size and seq when none was written,
 *   how long the link has been down while it is up.
 *
 * Fields are placed by name, so fields that other subsystems add to InfoResponse land
 * in a sensible section with no change here: a name with the word `snapshot`, `log`,
 * `aof`, `rdb` or `fsync` goes under Persistence; `replica`, `master`, `backlog`,
 * `sync`, `lag` or `seq` under Replication; `shard`, `cluster`, `ring`, `vnode` or `node`
 * under Cluster (words are separated by `_`); anything else under Other. A name ending `_bytes`
 * or `_bytes_max` is a size, `_at_ms` a unix time, `_ms` a duration.
 *
 * Pure: it formats a decoded message.
 *
 * @module
 */

import { plural } from "../errors.ts";
import type { ClusterStatusResponse } from "../transport/messages.ts";
import type { Int64Schema } from "../transport/proto.ts";
import { formatClusterStatus } from "./cluster_format.ts";

/** Where known fields go, in order. */
const SECTIONS: readonly (readonly [string, readonly string[]])[] = [
  ["Server", [
    "role",
    "version",
    "runtime",
    "address",
    "pid",
    "uptime_ms",
    "started_at_ms",
    "health",
    "config_file",
    "metrics_address",
  ]],
  ["Clients", ["connections", "calls_total"]],
  ["Keyspace", ["keys", "expiring_keys", "expired_keys"]],
  ["Memory", ["dataset_bytes", "rss_bytes", "heap_used_bytes"]],
  ["Persistence", [
    "data_dir",
    "appendfsync",
    "log_bytes",
    "log_base_seq",
    "log_error",
    "load_duration_ms",
    "snapshot_interval_seconds",
    "snapshot_in_progress",
    "changes_since_snapshot",
    "last_snapshot_at_ms",
    "last_snapshot_status",
    "last_snapshot_duration_ms",
    "last_snapshot_keys",
    "last_snapshot_bytes",
    "last_snapshot_seq",
  ]],
  ["Replication", [
    "replid",
    "last_seq",
    "master_address",
    "link_state",
    "first_sync_done",
    "master_last_seq",
    "link_down_ms",
    "link_error",
    "replicas",
    "backlog_bytes",
    "backlog_bytes_max",
    "backlog_first_seq",
    "previous_replid",
    "previous_replid_last_seq",
  ]],
  ["Cluster", ["cluster"]],
  ["Other", []],
];

/** Sections by a word of the field's name (words are separated by "_"). */
const WORD_SECTIONS: readonly (readonly [RegExp, string])[] = [
  [/(^|_)(snapshot|snapshots|log|aof|rdb|fsync|persistence|appendfsync)(_|$)/, "Persistence"],
  [/(^|_)(repl|replid|replica|replicas|replication|master|backlog|sync|lag|seq)(_|$)/, "Replication"],
  [/(^|_)(shard|shards|cluster|ring|vnode|vnodes|node|nodes|router)(_|$)/, "Cluster"],
];

/** The state of a replica's link to its master: a master has no such link, and answers
 * zeros and "" for them. */
const REPLICA_FIELDS: ReadonlySet<string> = new Set([
  "master_address",
  "link_state",
  "first_sync_done",
  "master_last_seq",
  "link_down_ms",
  "link_error",
]);

/** What only a master serves: a replica has no replicas of its own (it serves no Sync). */
const MASTER_FIELDS: ReadonlySet<string> = new Set(["replicas"]);

/** A node's own data files and history; a router keeps neither (its shards do). */
const NODE_SECTIONS: ReadonlySet<string> = new Set(["Persistence", "Replication"]);

/** Where a router's fields go when not where a node's do: its dataset figure is the sum
 * of its shards' datasets, not memory the router holds; its data directory holds the
 * cluster's state file, not a dataset. */
const ROUTER_SECTIONS: ReadonlyMap<string, string> = new Map([
  ["dataset_bytes", "Keyspace"],
  ["data_dir", "Server"],
]);

/** A router's figures that are sums over its shards, which fall short while a shard
 * does not answer. */
const ROUTER_SUMMED_FIELDS: ReadonlySet<string> = new Set(["keys", "expiring_keys", "expired_keys", "dataset_bytes"]);

/** The names of the sections, in lower case, as `kvstore info SECTION` takes them. */
export const INFO_SECTIONS: readonly string[] = SECTIONS.map(([section]) => section.toLowerCase());

/** The Info response as sections of aligned `field  value` lines; a router's cluster as
 * the table `kvstore cluster status` prints. With `sections` (lower-case names from
 * {@linkcode INFO_SECTIONS}), only those. */
export function formatInfo(
  info: Readonly<Record<string, unknown>>,
  nowMs: number,
  sections?: ReadonlySet<string>,
): string[] {
  const role = String(info.role ?? "");
  const placed = placeFields(info, role);
  if (sections !== undefined) {
    for (const section of placed.keys()) if (!sections.has(section.toLowerCase())) placed.delete(section);
  }
  const cluster = role === "router" ? clusterOf(info) : null;
  const scalars = [...placed.values()].flat().filter((field) => !isNested(info[field]));
  const width = Math.max(0, ...scalars.map((field) => field.length));
  const lines: string[] = [];
  for (const [section, fields] of placed) {
    if (fields.length === 0) continue;
    if (lines.length > 0) lines.push("");
    lines.push(`# ${section}`);
    for (const field of fields) {
      const value = info[field];
      if (field === "cluster" && cluster !== null) {
        lines.push(...formatClusterStatus(cluster));
      } else if (isNested(value)) {
        lines.push(field, ...formatNested(value as object, "  "));
      } else {
        let text = formatField(field, value, nowMs);
        if (cluster !== null && ROUTER_SUMMED_FIELDS.has(field)) text = withShardsAnswered(text, cluster);
        if (field === "last_snapshot_at_ms" && lastSnapshotFailed(info)) text = withNote(text, "the last good one");
        lines.push(`${field.padEnd(width)}  ${text}`);
      }
    }
  }
  return lines;
}

/** The fields to print, by section in order: known fields where {@linkcode SECTIONS}
 * puts them, others by a word of their name, less what means nothing for `role`. */
function placeFields(info: Readonly<Record<string, unknown>>, role: string): Map<string, string[]> {
  const placed = new Map<string, string[]>(SECTIONS.map(([section]) => [section, []]));
  // Known fields in their order, then the others; a field moved for a router comes after
  // its new section's own, since every section it moves to comes first in SECTIONS.
  const ordered = [...KNOWN_SECTIONS.keys()].filter((field) => field in info);
  for (const field of Object.keys(info)) if (!KNOWN_SECTIONS.has(field)) ordered.push(field);
  for (const field of ordered) {
    // A message field the node leaves unset (a plain node's `cluster`) decodes as null.
    if (info[field] === null || info[field] === undefined) continue;
    const section = sectionOf(field, role);
    if (role === "router" && NODE_SECTIONS.has(section)) continue;
    if (!isRelevant(field, info, role)) continue;
    placed.get(section)!.push(field);
  }
  return placed;
}

/** The section of each known field. */
const KNOWN_SECTIONS: ReadonlyMap<string, string> = new Map(
  SECTIONS.flatMap(([section, fields]) => fields.map((field) => [field, section] as const)),
);

/** The section `field` belongs to on a node of `role`. */
function sectionOf(field: string, role: string): string {
  return (role === "router" ? ROUTER_SECTIONS.get(field) : undefined) ?? KNOWN_SECTIONS.get(field) ??
    WORD_SECTIONS.find(([pattern]) => pattern.test(field))?.[1] ?? "Other";
}

/** The fields of `info` in `sections` (lower-case names), for `kvstore info SECTION
 * --json`: every field of those sections, as the JSON of the whole response has them,
 * whether or not the text would show it for this role. */
export function infoSections(
  info: Readonly<Record<string, unknown>>,
  sections: ReadonlySet<string>,
): Record<string, unknown> {
  const role = String(info.role ?? "");
  return Object.fromEntries(
    Object.entries(info).filter(([field]) => sections.has(sectionOf(field, role).toLowerCase())),
  );
}

/** Whether `field` says something for a node of `role` in the state `info` describes. */
function isRelevant(field: string, info: Readonly<Record<string, unknown>>, role: string): boolean {
  if (role === "master" && REPLICA_FIELDS.has(field)) return false;
  if (role === "replica" && MASTER_FIELDS.has(field)) return false;
  switch (field) {
    case "previous_replid":
    case "previous_replid_last_seq":
      // "" and 0 until a promotion or a restart continues another history.
      return String(info.previous_replid ?? "") !== "";
    case "last_snapshot_duration_ms":
    case "last_snapshot_keys":
    case "last_snapshot_bytes":
    case "last_snapshot_seq":
      // Zeros until a snapshot is written or loaded; last_snapshot_at_ms says "never".
      return Number(info.last_snapshot_at_ms ?? 0) !== 0;
    case "link_down_ms":
      // 0 while the link is up; link_state says so.
      return Number(info.link_down_ms ?? 0) !== 0;
    default:
      return true;
  }
}

/** A router's `cluster`, when it has the shape of a ClusterStatusResponse. */
function clusterOf(info: Readonly<Record<string, unknown>>): ClusterStatusResponse | null {
  const cluster = info.cluster as ClusterStatusResponse | null | undefined;
  return cluster !== null && typeof cluster === "object" && Array.isArray(cluster.shards) ? cluster : null;
}

/** A shard-summed figure, saying how many shards it counts when some did not answer. */
function withShardsAnswered(text: string, cluster: ClusterStatusResponse): string {
  const answered = cluster.shards.filter((shard) => shard.reachable).length;
  if (answered === cluster.shards.length) return text;
  return withNote(text, `${answered} of ${plural(cluster.shards.length, "shard")} answered`);
}

/** Whether the last snapshot attempt failed (or was abandoned) after a good one, which
 * the last_snapshot_* figures then still describe: said on the line of its time, so the
 * failed status under it is not read as that snapshot's. */
function lastSnapshotFailed(info: Readonly<Record<string, unknown>>): boolean {
  const status = String(info.last_snapshot_status ?? "");
  return Number(info.last_snapshot_at_ms ?? 0) !== 0 && status !== "ok" && status !== "none" && status !== "";
}

/** `text` with `note` added to its parentheses, or in new ones. */
function withNote(text: string, note: string): string {
  return text.endsWith(")") ? `${text.slice(0, -1)}; ${note})` : `${text} (${note})`;
}

function isNested(value: unknown): boolean {
  return value !== null && typeof value === "object";
}

/** One value, with its human form in parentheses where that helps. */
export function formatField(field: string, value: unknown, nowMs: number): string {
  if (value === "" || value === undefined || value === null) return "-";
  const text = String(value);
  const number = typeof value === "number" ? value : /^-?[0-9]+$/.test(text) ? Number(text) : NaN;
  if (!Number.isFinite(number)) return text;
  if (field.endsWith("_at_ms")) {
    if (number === 0) return "0 (never)";
    // The node's clock may be ahead of this machine's: its times are then in the future.
    const agoMs = nowMs - number;
    const when = agoMs >= 0 ? `${formatDuration(agoMs)} ago` : `in ${formatDuration(-agoMs)}`;
    return `${text} (${new Date(number).toISOString()}, ${when})`;
  }
  if (field.endsWith("_ms")) return `${text} (${formatDuration(number)})`;
  if (field.endsWith("_bytes") || field.endsWith("_bytes_max")) return `${text} (${formatBytes(number)})`;
  return text;
}

function formatNested(value: object, indent: string): string[] {
  if (Array.isArray(value)) {
    if (value.length === 0) return [`${indent}(none)`];
    return value.flatMap((item, i) =>
      item !== null && typeof item === "object"
        ? [`${indent}[${i}] ${inline(item)}`]
        : [`${indent}[${i}] ${String(item)}`]
    );
  }
  return Object.entries(value).flatMap(([key, item]) => {
    // An unset message field (a router's `migration` while none runs) says nothing.
    if (item === null || item === undefined) return [];
    if (Array.isArray(item)) return [`${indent}${key}`, ...formatNested(item, indent + "  ")];
    return [`${indent}${key}  ${typeof item === "object" ? inline(item) : String(item)}`];
  });
}

function inline(value: object): string {
  return Object.entries(value)
    .filter(([, item]) => item !== null && item !== undefined)
    .map(([key, item]) => `${key}=${typeof item === "object" ? JSON.stringify(item) : String(item)}`)
    .join(" ");
}

/** 65012 -> "1m 05s"; 950 -> "950 ms"; 93784000 -> "1d 02h 03m". */
export function formatDuration(ms: number): string {
  if (ms < 0) return `-${formatDuration(-ms)}`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const seconds = Math.floor(ms / 1000);
  const [d, h, m, s] = [
    Math.floor(seconds / 86400),
    Math.floor(seconds / 3600) % 24,
    Math.floor(seconds / 60) % 60,
    seconds % 60,
  ];
  const two = (n: number) => String(n).padStart(2, "0");
  if (d > 0) return `${d}d ${two(h)}h ${two(m)}m`;
  if (h > 0) return `${h}h ${two(m)}m ${two(s)}s`;
  if (m > 0) return `${m}m ${two(s)}s`;
  return `${(ms / 1000).toFixed(1)} s`;
}

/** 1234567 -> "1.2 MiB" (powers of 1024, as the size flags take them). */
export function formatBytes(bytes: number): string {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}

/** The Info response for `--json`: int64 fields (decimal strings on the wire) become
 * numbers where a JavaScript number holds them exactly, so scripts can compare them; in
 * nested messages too (each replica's acked_seq and lag, a router's shards). */
export function infoJson(info: Readonly<Record<string, unknown>>, schema: Int64Schema): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(info)) {
    const nested = schema.messages.get(field);
    if (nested !== undefined && value !== null && typeof value === "object") {
      result[field] = Array.isArray(value)
        ? value.map((item) => item !== null && typeof item === "object" ? infoJson(item, nested) : item)
        : infoJson(value as Record<string, unknown>, nested);
      continue;
    }
    const number = typeof value === "string" && schema.int64.has(field) ? Number(value) : NaN;
    result[field] = Number.isSafeInteger(number) ? number : value;
  }
  return result;
}
