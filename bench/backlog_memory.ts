// deno-lint-ignore-file no-console -- a measurement reports on the terminal
/**
 * What the replication backlog's entries really cost in V8's heap, next to what the
 * backlog charges them against --backlog-bytes (commandBytes): for each kind of command
 * (SET with a 100-byte and a 3-byte value, SET with a deadline, EXPIRE-AT, DELETE), 100k
 * entries appended, the heap measured after full collections before and after.
 *
 *   deno run --v8-flags=--expose-gc bench/backlog_memory.ts [--json]
 *
 * tests/backlog_memory_test.ts runs it and checks that no kind costs more than it is
 * charged, so that a backlog bounded at --backlog-bytes takes no more than that.
 *
 * @module
 */

import { Backlog } from "../src/replication/backlog.ts";
import type { WriteCommand } from "../src/store/command.ts";

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) {
  console.error("backlog_memory: Run with --v8-flags=--expose-gc (the heap is measured after full collections)");
  Deno.exit(2);
}
const collect = gc;

const ENTRIES = 100_000;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A string as a request decoder makes it: flat, with its own storage. */
function decoded(text: string): string {
  return decoder.decode(encoder.encode(text));
}

function key(i: number): string {
  return decoded(`key:${String(i).padStart(12, "0")}`);
}

const KINDS: Record<string, (i: number, nowMs: number) => WriteCommand> = {
  "set, 100-byte value": (i) => ({
    kind: "set",
    key: key(i),
    value: decoded(`${"v".repeat(94)}${i % 1_000_000}`.padEnd(100)),
    expiresAtMs: null,
  }),
  "set, 3-byte value": (i) => ({
    kind: "set",
    key: key(i),
    value: decoded(`v${i % 100}`.padEnd(3)),
    expiresAtMs: null,
  }),
  "set with a deadline": (i, nowMs) => ({
    kind: "set",
    key: key(i),
    value: decoded("abc"),
    expiresAtMs: nowMs + 60_000 + i,
  }),
  "expireAt": (i, nowMs) => ({ kind: "expireAt", key: key(i), expiresAtMs: nowMs + 60_000 + i }),
  "delete": (i) => ({ kind: "delete", key: key(i) }),
};

export interface KindCost {
  readonly kind: string;
  /** Heap bytes per entry, measured. */
  readonly realBytes: number;
  /** Bytes per entry charged against the bound. */
  readonly chargedBytes: number;
}

function measure(kind: string, make: (i: number, nowMs: number) => WriteCommand): KindCost {
  const nowMs = Date.now();
  // Commands are made before the first measurement only in part: what the backlog holds
  // is the command and its strings (garbage otherwise), and its own entry.
  collect();
  const before = Deno.memoryUsage().heapUsed;
  const backlog = new Backlog({ bytesMax: Number.MAX_SAFE_INTEGER, lastSeq: 0 });
  for (let i = 0; i < ENTRIES; i++) backlog.append([{ seq: i + 1, command: make(i, nowMs) }], nowMs + i);
  collect();
  const after = Deno.memoryUsage().heapUsed;
  const cost = {
    kind,
    realBytes: Math.round((after - before) / ENTRIES),
    chargedBytes: Math.round(backlog.bytes / ENTRIES),
  };
  // Keep the backlog alive until measured.
  if (backlog.length !== ENTRIES) throw new Error("backlog_memory: entries were evicted");
  return cost;
}

const costs = Object.entries(KINDS).map(([kind, make]) => measure(kind, make));
if (Deno.args.includes("--json")) {
  console.log(JSON.stringify(costs));
} else {
  for (const { kind, realBytes, chargedBytes } of costs) {
    console.log(`${kind.padEnd(22)} real ${String(realBytes).padStart(4)} B/entry, charged ${chargedBytes} B/entry`);
  }
}
