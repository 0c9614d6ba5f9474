import assert from "node:assert/strict";
import { BACKLOG_ENTRY_OVERHEAD_BYTES } from "../config/limits.ts";
import type { SequencedCommand } from "../store/command.ts";
import { Backlog, commandBytes } from "./backlog.ts";

const LIMITS = { itemsMax: 1000, bytesMax: 1_000_000 };

function sets(fromSeq: number, count: number, value = "v"): SequencedCommand[] {
  return Array.from({ length: count }, (_, i) => ({
    seq: fromSeq + i,
    command: { kind: "set", key: `k${String(fromSeq + i).padStart(6, "0")}`, value, expiresAtMs: null },
  }));
}

Deno.test("an empty backlog continues after the node's seq and covers exactly that seq", () => {
  const backlog = new Backlog({ bytesMax: 1000, lastSeq: 41 });
  assert.equal(backlog.firstSeq, 42);
  assert.equal(backlog.lastSeq, 41);
  assert.equal(backlog.covers(41), true);
  assert.equal(backlog.covers(40), false, "a reader missing seq 41 cannot be fed");
  assert.equal(backlog.covers(42), false, "a reader ahead of the master cannot be fed");
  assert.deepEqual(backlog.read(41, LIMITS), []);
  assert.equal(backlog.read(40, LIMITS), null);
});

Deno.test("read returns the commands after a seq, in order", () => {
  const backlog = new Backlog({ bytesMax: 1_000_000, lastSeq: 0 });
  backlog.append(sets(1, 3), 100);
  backlog.append(sets(4, 2), 200);
  assert.deepEqual(backlog.read(2, LIMITS)?.map((entry) => entry.seq), [3, 4, 5]);
  assert.deepEqual(backlog.read(0, LIMITS)?.map((entry) => entry.seq), [1, 2, 3, 4, 5]);
  assert.deepEqual(backlog.read(5, LIMITS), []);
  assert.equal(backlog.committedAtMs(3), 100);
  assert.equal(backlog.committedAtMs(5), 200);
  assert.equal(backlog.committedAtMs(6), undefined);
});

Deno.test("a batch that does not continue the backlog is a bug and is refused", () => {
  const backlog = new Backlog({ bytesMax: 1000, lastSeq: 10 });
  assert.throws(() => backlog.append(sets(12, 1), 0), /Cannot append seq 12: the next seq is 11/);
});

Deno.test("the oldest commands are evicted past the byte bound, and readers behind them need a fullSync", () => {
  const perEntry = commandBytes({ kind: "set", key: "k000001", value: "v", expiresAtMs: null });
  const backlog = new Backlog({ bytesMax: perEntry * 10, lastSeq: 0 });
  for (let seq = 1; seq <= 25; seq += 5) backlog.append(sets(seq, 5), 0);
  assert.equal(backlog.length, 10);
  assert.equal(backlog.firstSeq, 16);
  assert.ok(backlog.bytes <= backlog.bytesMax);
  assert.equal(backlog.read(14, LIMITS), null, "seq 15 was evicted");
  assert.deepEqual(backlog.read(15, LIMITS)?.map((entry) => entry.seq), [16, 17, 18, 19, 20, 21, 22, 23, 24, 25]);
});

Deno.test("a command larger than the whole bound is still kept until the next one arrives", () => {
  const backlog = new Backlog({ bytesMax: 100, lastSeq: 0 });
  backlog.append(sets(1, 1, "x".repeat(1000)), 0);
  assert.equal(backlog.length, 1);
  assert.equal(backlog.read(0, LIMITS)?.[0].seq, 1);
  backlog.append(sets(2, 1), 0);
  assert.equal(backlog.firstSeq, 2);
});

Deno.test("a batch larger than the whole bound is kept whole, so a reader that has every earlier command can read it", () => {
  const perEntry = commandBytes({ kind: "set", key: "k000001", value: "v", expiresAtMs: null });
  const backlog = new Backlog({ bytesMax: perEntry * 10, lastSeq: 0 });
  backlog.append(sets(1, 5), 0);
  backlog.append(sets(6, 30), 0);
  assert.equal(backlog.firstSeq, 6, "the older batch is evicted, the newest one kept");
  assert.deepEqual(backlog.read(5, LIMITS)?.map((entry) => entry.seq), Array.from({ length: 30 }, (_, i) => 6 + i));
  backlog.append(sets(36, 2), 0);
  assert.equal(backlog.firstSeq, 28, "once a newer batch arrives, the big one is evicted down to the bound");
  assert.ok(backlog.bytes <= backlog.bytesMax);
});

Deno.test("reads stop at the item and byte limits but always return at least one command", () => {
  const backlog = new Backlog({ bytesMax: 1_000_000, lastSeq: 0 });
  backlog.append(sets(1, 10, "x".repeat(100)), 0);
  assert.equal(backlog.read(0, { itemsMax: 3, bytesMax: 1_000_000 })?.length, 3);
  const oneEntry = 100 + 7 + BACKLOG_ENTRY_OVERHEAD_BYTES;
  assert.equal(backlog.read(0, { itemsMax: 100, bytesMax: oneEntry * 2 + 10 })?.length, 2);
  assert.equal(backlog.read(0, { itemsMax: 100, bytesMax: 1 })?.length, 1);
});

Deno.test("the backlog stays correct across compaction of evicted entries", () => {
  const perEntry = commandBytes({ kind: "set", key: "k000001", value: "v", expiresAtMs: null });
  const backlog = new Backlog({ bytesMax: perEntry * 100, lastSeq: 0 });
  let seq = 1;
  for (let round = 0; round < 100; round++) {
    backlog.append(sets(seq, 50), round);
    seq += 50;
  }
  assert.equal(backlog.lastSeq, 5000);
  const firstSeq = backlog.firstSeq;
  assert.ok(firstSeq > 4800 && firstSeq <= 4901, `firstSeq ${firstSeq}`);
  const all = backlog.read(firstSeq - 1, { itemsMax: 10_000, bytesMax: 10_000_000 })!;
  assert.deepEqual(all.map((entry) => entry.seq), Array.from({ length: 5001 - firstSeq }, (_, i) => firstSeq + i));
  assert.equal(backlog.oldestCommittedAtMs, backlog.committedAtMs(firstSeq));
});

Deno.test("reads end at a commit batch's end when a whole batch fits, and split a batch only when none does", () => {
  const backlog = new Backlog({ bytesMax: 1_000_000, lastSeq: 0 });
  backlog.append(sets(1, 3), 0);
  backlog.append(sets(4, 3), 0);
  backlog.append(sets(7, 10), 0);
  assert.deepEqual(backlog.read(0, { itemsMax: 5, bytesMax: 1_000_000 })?.map((e) => e.seq), [1, 2, 3]);
  assert.deepEqual(backlog.read(0, { itemsMax: 6, bytesMax: 1_000_000 })?.map((e) => e.seq), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(backlog.read(6, { itemsMax: 4, bytesMax: 1_000_000 })?.map((e) => e.seq), [7, 8, 9, 10]);
  assert.deepEqual(backlog.read(2, { itemsMax: 100, bytesMax: 1_000_000 })?.length, 14, "everything left");
  assert.deepEqual(backlog.read(4, { itemsMax: 1, bytesMax: 1_000_000 })?.map((e) => e.seq), [5]);
});
