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
 * Fields are placed by name, so fields that other subsystems add to InfoResponse land
 * in a sensible section with no change here: a name with the word `snapshot`, `log`,
 * `aof`, `rdb` or `fsync` goes under Persistence; `replica`, `master`, `backlog`,
 * `sync`, `lag` or `seq` under Replication; `shard`, `cluster`, `ring`, `vnode` or `node`
 * under Cluster (words are separated by `_`); anything else under Other. A name ending `_bytes` is a
 * size, `_at_ms` a unix time, `_ms` a duration.
 *
 * Pure: it formats a decoded message.
 *
 * @module
 */

import type { Int64Schema } from "../transport/proto.ts";

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
  ["Cluster", []],
  ["Other", []],
];

/** Sections by a word of the field's name (words are separated by "_"). */
const WORD_SECTIONS: readonly (readonly [RegExp, string])[] = [
  [/(^|_)(snapshot|snapshots|log|aof|rdb|fsync|persistence|appendfsync)(_|$)/, "Persistence"],
  [/(^|_)(repl|replid|replica|replicas|replication|master|backlog|sync|lag|seq)(_|$)/, "Replication"],
  [/(^|_)(shard|shards|cluster|ring|vnode|vnodes|node|nodes|router)(_|$)/, "Cluster"],
];

/** The Info response as sections of aligned `field  value` lines. */
export function formatInfo(info: Readonly<Record<string, unknown>>, nowMs: number): string[] {
  const placed = new Map<string, string[]>(SECTIONS.map(([section]) => [section, []]));
  const known = new Map<string, string>();
  for (const [section, fields] of SECTIONS) for (const field of fields) known.set(field, section);
  for (const [section, fields] of SECTIONS) {
    for (const field of fields) if (field in info) placed.get(section)!.push(field);
  }
  for (const field of Object.keys(info)) {
    if (known.has(field)) continue;
    // A message field the node leaves unset (a plain node's `cluster`) decodes as null.
    if (info[field] === null || info[field] === undefined) continue;
    const section = WORD_SECTIONS.find(([pattern]) => pattern.test(field))?.[1] ?? "Other";
    placed.get(section)!.push(field);
  }
  const width = Math.max(...Object.keys(info).map((field) => field.length));
  const lines: string[] = [];
  for (const [section, fields] of placed) {
    if (fields.length === 0) continue;
    if (lines.length > 0) lines.push("");
    lines.push(`# ${section}`);
    for (const field of fields) {
      const value = info[field];
      if (value !== null && typeof value === "object") {
        lines.push(field, ...formatNested(value, "  "));
      } else {
        lines.push(`${field.padEnd(width)}  ${formatField(field, value, nowMs)}`);
      }
    }
  }
  return lines;
}

/** One value, with its human form in parentheses where that helps. */
export function formatField(field: string, value: unknown, nowMs: number): string {
  if (value === "" || value === undefined || value === null) return "-";
  const text = String(value);
  const number = typeof value === "number" ? value : /^-?[0-9]+$/.test(text) ? Number(text) : NaN;
  if (!Number.isFinite(number)) return text;
  if (field.endsWith("_at_ms")) {
    return number === 0
      ? "0 (never)"
      : `${text} (${new Date(number).toISOString()}, ${formatDuration(nowMs - number)} ago)`;
  }
  if (field.endsWith("_ms")) return `${text} (${formatDuration(number)})`;
  if (field.endsWith("_bytes")) return `${text} (${formatBytes(number)})`;
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
