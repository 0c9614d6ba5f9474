import assert from "node:assert/strict";
import { ByteReader, ByteWriter, FormatError } from "./bytes.ts";
import {
  readEntry,
  readLogHeader,
  readLogRecord,
  readSnapshotEnd,
  readSnapshotHeader,
  writeCommand,
  writeEntry,
  writeHistory,
  writeLogHeader,
  writeSnapshotEnd,
  writeSnapshotHeader,
} from "./records.ts";

Deno.test("a DELETE record has the layout the format essay shows", () => {
  const out = new ByteWriter(16);
  writeCommand(out, 7, { kind: "delete", key: "k" });
  assert.deepEqual([...out.view()], [0x02, 7, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0x6b]);
});

Deno.test("every log record reads back as written", () => {
  const records = [
    { kind: "command", seq: 1, command: { kind: "set", key: "a", value: "1", expiresAtMs: null } },
    { kind: "command", seq: 2, command: { kind: "set", key: "ключ 🔑", value: "é€😀\u0000\n", expiresAtMs: 1e12 } },
    { kind: "command", seq: 3, command: { kind: "delete", key: "a" } },
    { kind: "command", seq: 2 ** 40, command: { kind: "expireAt", key: "b", expiresAtMs: 2 ** 52 } },
    { kind: "history", seq: 9, replid: "0123456789abcdef0123456789abcdef01234567" },
  ] as const;
  const out = new ByteWriter(8);
  for (const record of records) {
    if (record.kind === "history") writeHistory(out, record.seq, record.replid);
    else writeCommand(out, record.seq, record.command);
  }
  const input = new ByteReader(out.view());
  for (const record of records) assert.deepEqual(readLogRecord(input), record);
  assert.equal(input.remaining, 0);
});

Deno.test("headers, entries and the snapshot end read back as written", () => {
  const out = new ByteWriter(8);
  const logHeader = { logId: "a1", parentLogId: "", replid: "r", seq: 5, createdAtMs: 1_764_000_000_000 };
  const snapshotHeader = { logId: "a1", replid: "r", seq: 5, createdAtMs: 1_764_000_000_001 };
  writeLogHeader(out, logHeader);
  writeSnapshotHeader(out, snapshotHeader);
  writeEntry(out, "k", { value: "v".repeat(100_000), expiresAtMs: 42 });
  writeSnapshotEnd(out, { keys: 1, seqEnd: 6 });
  const input = new ByteReader(out.view());
  assert.deepEqual(readLogHeader(input), logHeader);
  assert.deepEqual(readSnapshotHeader(input), snapshotHeader);
  assert.deepEqual(readEntry(input), ["k", { value: "v".repeat(100_000), expiresAtMs: 42 }]);
  assert.deepEqual(readSnapshotEnd(input), { keys: 1, seqEnd: 6 });
});

Deno.test("a record cut short, an unknown type or bad UTF-8 is refused with its position", () => {
  const out = new ByteWriter(8);
  writeCommand(out, 1, { kind: "set", key: "key", value: "value", expiresAtMs: null });
  const bytes = out.view().slice();
  for (let length = 0; length < bytes.length; length++) {
    assert.throws(() => readLogRecord(new ByteReader(bytes.subarray(0, length))), FormatError, `length ${length}`);
  }
  assert.throws(() => readLogRecord(new ByteReader(Uint8Array.of(0x7f))), /record type 0x7f is not a log record/);
  const badUtf8 = bytes.slice();
  badUtf8[13] = 0xff; // the first byte of the key
  assert.throws(() => readLogRecord(new ByteReader(badUtf8)), /not valid UTF-8/);
  const badDeadline = bytes.slice();
  badDeadline[badDeadline.length - 1] = 2;
  assert.throws(() => readLogRecord(new ByteReader(badDeadline)), /deadline flag is 2/);
});

Deno.test("integers beyond 2^53 are refused on both sides", () => {
  assert.throws(() => new ByteWriter(8).u53(2 ** 53), RangeError);
  assert.throws(() => new ByteWriter(8).u53(-1), RangeError);
  const bytes = Uint8Array.of(0, 0, 0, 0, 0, 0, 0x20, 0);
  assert.throws(() => new ByteReader(bytes).u53(), /beyond 2\^53/);
  const out = new ByteWriter(8);
  out.u53(Number.MAX_SAFE_INTEGER);
  assert.equal(new ByteReader(out.view()).u53(), Number.MAX_SAFE_INTEGER);
});
